import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from sk_zerror import zscore_mask
from sk_zerror._zscore import MAD_TO_STD, _from_moments, _moments


def naive_mask(values, groups, sigma, center="mean", scale="std", tail="both"):
    """Per-group loop in numpy: the reference the vectorised code must match."""
    values = np.asarray(values, dtype=np.float64)
    values2d = values if values.ndim == 2 else values[:, None]
    z = np.zeros_like(values2d)
    mask = np.zeros(values2d.shape, dtype=bool)
    sigmas = np.broadcast_to(
        np.asarray(sigma, dtype=float), (max(groups, default=0) + 1,)
    )
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        for col in range(values2d.shape[1]):
            v = values2d[rows, col]
            finite = np.isfinite(v)
            f = v[finite]
            if center == "mean":
                c = f.mean() if len(f) else 0.0
            else:
                c = np.median(f) if len(f) else 0.0
            s = np.sqrt(((f - c) ** 2).sum() / max(len(f) - 1, 1))
            if scale == "mad" and len(f):
                # A zero MAD falls back to the standard deviation.
                mad = np.median(np.abs(f - c)) * MAD_TO_STD
                s = mad if mad > 0 else s
            degenerate = len(f) < 2 or not s > 4 * np.finfo(np.float64).eps * abs(c)
            zz = np.zeros(len(v)) if degenerate else (v - c) / s
            zz = np.where(finite, zz, v)
            z[rows, col] = zz
            limit = sigmas[g]
            if tail == "both":
                inside = np.abs(zz) <= limit
            elif tail == "lower":
                inside = zz >= -limit
            else:
                inside = zz <= limit
            mask[rows, col] = inside & finite
    return mask.reshape(values.shape), z.reshape(values.shape)


def away_from_boundary(z, sigma, groups, tol=1e-6):
    limit = np.broadcast_to(np.asarray(sigma, dtype=float), (groups.max() + 1,))[groups]
    limit = limit.reshape(-1, *([1] * (z.ndim - 1)))
    return np.abs(np.abs(z) - limit) > tol


# Multiples of 1/8 are exact in float64, so the sums are exact and the
# vectorised and looped statistics agree to the last bit.
eighths = st.integers(-800, 800).map(lambda k: k / 8)


@st.composite
def grouped_batches(draw):
    n = draw(st.integers(0, 40))
    n_groups = draw(st.integers(1, 4))
    n_outputs = draw(st.sampled_from([None, 1, 3]))
    shape = (n,) if n_outputs is None else (n, n_outputs)
    size = n if n_outputs is None else n * n_outputs
    values = np.array(draw(st.lists(eighths, min_size=size, max_size=size)))
    values = values.reshape(shape)
    groups = np.array(
        draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n))
    )
    return values, groups.astype(np.int64), n_groups


options = st.fixed_dictionaries(
    {
        "center": st.sampled_from(["mean", "median"]),
        "scale": st.sampled_from(["std", "mad"]),
        "tail": st.sampled_from(["both", "lower", "upper"]),
        "sigma": st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]),
    }
)


@settings(max_examples=150, deadline=None)
@given(batch=grouped_batches(), opts=options)
def test_vectorised_mask_equals_per_group_loop(batch, opts):
    values, groups, n_groups = batch
    mask, z = zscore_mask(
        torch.from_numpy(values),
        torch.from_numpy(groups),
        n_groups=n_groups,
        return_scores=True,
        **opts,
    )
    expected_mask, expected_z = naive_mask(values, groups, **opts)
    assert mask.shape == values.shape
    assert_allclose(z.numpy(), expected_z, rtol=1e-9, atol=1e-9)
    if len(groups):
        keep = away_from_boundary(expected_z, opts["sigma"], groups)
        assert_array_equal(mask.numpy()[keep], expected_mask[keep])


@settings(max_examples=100, deadline=None)
@given(batch=grouped_batches(), opts=options, data=st.data())
def test_mask_is_permutation_equivariant(batch, opts, data):
    values, groups, n_groups = batch
    perm = np.array(data.draw(st.permutations(range(len(groups)))), dtype=np.int64)
    kwargs = dict(n_groups=n_groups, return_scores=True, **opts)
    mask, z = zscore_mask(torch.from_numpy(values), torch.from_numpy(groups), **kwargs)
    mask_p, z_p = zscore_mask(
        torch.from_numpy(values[perm]), torch.from_numpy(groups[perm]), **kwargs
    )
    assert_array_equal(mask_p.numpy(), mask.numpy()[perm])
    assert_allclose(z_p.numpy(), z.numpy()[perm], rtol=1e-12, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    batch=grouped_batches(),
    opts=options,
    a=st.floats(0.01, 100.0),
    b=st.floats(-100.0, 100.0),
)
def test_mask_is_invariant_to_positive_affine_maps(batch, opts, a, b):
    values, groups, n_groups = batch
    kwargs = dict(n_groups=n_groups, return_scores=True, **opts)
    mask, z = zscore_mask(torch.from_numpy(values), torch.from_numpy(groups), **kwargs)
    mask_t, z_t = zscore_mask(
        torch.from_numpy(a * values + b), torch.from_numpy(groups), **kwargs
    )
    if len(groups):
        keep = away_from_boundary(z.numpy(), opts["sigma"], groups, tol=1e-6)
        assert_array_equal(mask_t.numpy()[keep], mask.numpy()[keep])
        assert_allclose(z_t.numpy(), z.numpy(), atol=1e-6)


special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e30, -1e30, 1e-30])


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.one_of(st.floats(-1e150, 1e150), special), max_size=30),
    opts=options,
)
def test_mask_is_never_nan_and_non_finite_values_are_outliers(values, opts):
    tensor = torch.tensor(values, dtype=torch.float64)
    mask, z = zscore_mask(tensor, return_scores=True, **opts)
    assert mask.dtype == torch.bool
    finite = torch.isfinite(tensor)
    assert not mask[~finite].any()
    # A finite value may overflow to an infinite z-score (and then be an
    # outlier), but never to NaN.
    assert not torch.isnan(z[finite]).any()
    assert not mask[torch.isinf(z)].any()


def test_scalar_example_flags_the_gross_error():
    values = torch.tensor([0.1, -0.2, 0.0, 0.2, 9.0, -0.1])
    mask, z = zscore_mask(values, sigma=1.5, return_scores=True)
    assert_array_equal(mask.numpy(), [True, True, True, True, False, True])
    mean, std = values.mean(), values.std()
    assert_allclose(z.numpy(), ((values - mean) / std).numpy(), rtol=1e-6)


def test_per_group_sigma_applies_to_its_group():
    values = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0, 0.0, 1.0, 2.0, 3.0, 10.0])
    groups = torch.tensor([0] * 5 + [1] * 5)
    mask, z = zscore_mask(values, groups, sigma=[1.5, 3.0], return_scores=True)
    assert z[4] > 1.5 and z[4] < 3.0
    assert not mask[4] and mask[9]


def test_tails_flag_only_their_side():
    values = torch.tensor([-10.0, 0.0, 0.1, -0.1, 0.2, -0.2, 0.0, 10.0])
    both = zscore_mask(values, sigma=1.5)
    lower = zscore_mask(values, sigma=1.5, tail="lower")
    upper = zscore_mask(values, sigma=1.5, tail="upper")
    assert_array_equal(both.numpy(), [False] + [True] * 6 + [False])
    assert_array_equal(lower.numpy(), [False] + [True] * 7)
    assert_array_equal(upper.numpy(), [True] * 7 + [False])


def test_median_mad_resist_a_third_of_gross_outliers():
    # 30% of the values are gross errors: they inflate the std enough to hide
    # themselves, but not the MAD.
    gen = torch.Generator().manual_seed(0)
    clean = torch.randn(70, generator=gen, dtype=torch.float64)
    values = torch.cat([clean, torch.full((30,), 8.0, dtype=torch.float64)])
    classic = zscore_mask(values, sigma=2.0)
    robust = zscore_mask(values, sigma=2.0, center="median", scale="mad")
    assert classic[70:].all()
    assert not robust[70:].any()
    assert robust[:70].float().mean() > 0.9


def test_mad_estimates_the_normal_std():
    gen = torch.Generator().manual_seed(1)
    values = 3.0 * torch.randn(200_000, generator=gen, dtype=torch.float64)
    _, z = zscore_mask(values, center="median", scale="mad", return_scores=True)
    # z = v / (MAD * 1.4826): close to v / 3 for N(0, 3^2).
    assert_allclose((values / z)[values.abs() > 1].median().item(), 3.0, rtol=0.01)


def test_degenerate_groups_are_all_inliers_with_zero_scores():
    values = torch.tensor([5.0, 1.0, 1.0, 1.0, 7.0, 9.0])
    groups = torch.tensor([0, 1, 1, 1, 2, 2])
    mask, z = zscore_mask(values, groups, sigma=0.1, return_scores=True)
    # group 0 has one member, group 1 no spread: both all inliers, z = 0.
    assert mask[:4].all()
    assert_array_equal(z[:4].numpy(), [0.0] * 4)
    # group 2 is an ordinary group: +-0.707 > 0.1.
    assert not mask[4:].any()


def test_non_finite_values_are_excluded_from_the_statistics():
    values = torch.tensor([1.0, 2.0, 3.0, math.nan, math.inf, -math.inf])
    mask, z = zscore_mask(values, return_scores=True)
    assert_array_equal(mask.numpy(), [True, True, True, False, False, False])
    assert_allclose(z[:3].numpy(), [-1.0, 0.0, 1.0])
    assert math.isnan(z[3]) and z[4] == math.inf and z[5] == -math.inf


def test_multi_output_columns_have_their_own_statistics():
    values = torch.stack(
        [
            torch.tensor([0.0, 0.1, -0.1, 0.0, 5.0]),
            torch.tensor([5.0, 0.0, 0.1, -0.1, 0.0]),
        ],
        dim=1,
    )
    mask = zscore_mask(values, sigma=1.5)
    assert mask.shape == (5, 2)
    assert_array_equal(mask[:, 0].numpy(), [True, True, True, True, False])
    assert_array_equal(mask[:, 1].numpy(), [False, True, True, True, True])


def test_group_moments_reduce_to_the_mean_and_std():
    values = torch.randn(50, 2, dtype=torch.float64)
    groups = torch.randint(0, 3, (50,))
    # Sums of two halves add up: what an all-reduce across processes does.
    sums = _moments(values[:20], None, groups[:20], 3) + _moments(
        values[20:], None, groups[20:], 3
    )
    stats = _from_moments(sums)
    for g in range(3):
        rows = values[groups == g]
        assert_allclose(stats.center[g].numpy(), rows.mean(0).numpy(), rtol=1e-10)
        assert_allclose(stats.scale[g].numpy(), rows.std(0).numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64]
)
def test_all_floating_dtypes_give_the_float64_mask(dtype):
    gen = torch.Generator().manual_seed(2)
    values = torch.randn(64, generator=gen, dtype=torch.float64)
    values[:4] = torch.tensor([6.0, -6.0, 7.0, -7.0], dtype=torch.float64)
    groups = torch.randint(0, 2, (64,), generator=gen)
    reference, z = zscore_mask(values, groups, return_scores=True)
    mask, z_low = zscore_mask(values.to(dtype), groups, return_scores=True)
    assert z_low.dtype == dtype
    clear = (z.abs() - 2.0).abs() > 0.05
    assert_array_equal(mask[clear].numpy(), reference[clear].numpy())
    assert not mask[:4].any()


def test_statistics_carry_no_gradient():
    values = torch.randn(10, requires_grad=True)
    mask, z = zscore_mask(values, return_scores=True)
    assert not mask.requires_grad and not z.requires_grad


def test_empty_input_gives_empty_mask():
    mask = zscore_mask(torch.empty(0), torch.empty(0, dtype=torch.long), n_groups=3)
    assert mask.shape == (0,)


def test_the_input_is_not_modified():
    values = torch.tensor([1.0, math.nan, 3.0, 100.0])
    copy = values.clone()
    zscore_mask(values, center="median", scale="mad")
    assert torch.equal(values.nan_to_num(-1), copy.nan_to_num(-1))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(values=[1.0, 2.0]), TypeError, "values must be a torch.Tensor"),
        (dict(values=torch.tensor([1, 2])), TypeError, "floating dtype"),
        (dict(values=torch.zeros(2, 2, 2)), ValueError, "1-D .* or 2-D"),
        (dict(sigma=0.0), ValueError, "sigma must be > 0"),
        (dict(sigma=-1.0), ValueError, "sigma must be > 0"),
        (dict(sigma=math.nan), ValueError, "sigma must be > 0"),
        (dict(sigma="2"), TypeError, "sigma must be a positive number"),
        (
            dict(sigma=[1.0, 2.0, 3.0], groups=torch.tensor([0, 1, 0, 1])),
            ValueError,
            "one value per group",
        ),
        (
            dict(groups=torch.tensor([0, 1, 0])),
            ValueError,
            r"groups must have shape \(4,\)",
        ),
        (
            dict(groups=torch.tensor([0.0, 1.0, 0.0, 1.0])),
            TypeError,
            "integer class indices",
        ),
        (
            dict(groups=torch.tensor([0, 1, 2, 1]), n_groups=2),
            ValueError,
            r"must lie in \[0, 1\]; found \[2\]",
        ),
        (
            dict(groups=torch.tensor([0, -1, 0, 1]), n_groups=2),
            ValueError,
            r"found \[-1\]",
        ),
        (dict(center="mode"), ValueError, "center must be one of"),
        (dict(scale="iqr"), ValueError, "scale must be one of"),
        (dict(tail="left"), ValueError, "tail must be one of"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs, error, match):
    kwargs.setdefault("values", torch.tensor([1.0, 2.0, 3.0, 4.0]))
    values = kwargs.pop("values")
    with pytest.raises(error, match=match):
        zscore_mask(values, **kwargs)


@st.composite
def weighted_batches(draw):
    values, groups, n_groups = draw(grouped_batches())
    weights = np.array(
        draw(st.lists(st.integers(0, 3), min_size=len(groups), max_size=len(groups))),
        dtype=np.int64,
    )
    return values, groups, n_groups, weights


@settings(max_examples=60, deadline=None)
@given(weighted_batches(), options)
def test_a_row_of_weight_k_counts_as_k_rows(batch, opts):
    values, groups, n_groups, weights = batch
    weighted, z = zscore_mask(
        torch.from_numpy(values),
        torch.from_numpy(groups),
        n_groups=n_groups,
        weights=torch.from_numpy(weights).double(),
        return_scores=True,
        **opts,
    )
    repeat = torch.from_numpy(np.repeat(np.arange(len(groups)), weights))
    duplicated, z_dup = zscore_mask(
        torch.from_numpy(values)[repeat],
        torch.from_numpy(groups)[repeat],
        n_groups=n_groups,
        return_scores=True,
        **opts,
    )
    # Every repeated row is masked and scored as the weighted row it repeats.
    assert_array_equal(weighted[repeat].numpy(), duplicated.numpy())
    assert_allclose(z[repeat].numpy(), z_dup.numpy(), rtol=1e-12, atol=1e-12)


def test_weight_two_equals_the_row_duplicated():
    values = torch.tensor([0.1, -0.3, 0.2, 0.0, 2.6, -0.1, 0.25])
    weights = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    duplicated = torch.cat([values, values[4:5]])
    for center, scale in [("mean", "std"), ("median", "mad")]:
        mask_w, z_w = zscore_mask(
            values,
            sigma=1.5,
            center=center,
            scale=scale,
            weights=weights,
            return_scores=True,
        )
        mask_d, z_d = zscore_mask(
            duplicated, sigma=1.5, center=center, scale=scale, return_scores=True
        )
        assert_array_equal(mask_w.numpy(), mask_d[:7].numpy())
        assert_allclose(z_w.numpy(), z_d[:7].numpy(), rtol=1e-6)
    # Unweighted, the same row is an inlier of the mean/std batch at 1.5 sigma
    # only when its duplicate inflates the spread: the weight matters.
    assert not torch.equal(
        zscore_mask(values, sigma=1.5, return_scores=True)[1],
        zscore_mask(values, sigma=1.5, weights=weights, return_scores=True)[1],
    )


def test_zero_mad_falls_back_to_the_standard_deviation():
    # More than half tied: the MAD is 0, the spread is the std about the median.
    values = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 0.8, 9.0])
    mask, z = zscore_mask(
        values, center="median", scale="mad", sigma=2.0, return_scores=True
    )
    std = math.sqrt(((values - 1.0) ** 2).sum().item() / 7)
    assert_allclose(z.numpy(), ((values - 1.0) / std).numpy(), rtol=1e-6)
    assert_array_equal(mask.numpy(), [True] * 7 + [False])


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        zscore_mask(torch.zeros(3), weights=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\)"):
        zscore_mask(torch.zeros(3), weights=torch.ones(4))
