import math
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from sk_zerror import ZErrorBCEWithLogitsLoss, ZErrorCrossEntropyLoss, ZErrorMSELoss
from sk_zerror import _losses as losses_module

NOTE_LOGITS = [2.5, 0.2, -1.1, 1.3, -2.0, 3.0]
NOTE_LABELS = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def note_listing_target_mse(predictions, targets, threshold):
    """The note's regression listing (it z-scores the targets), as printed."""
    mean = torch.mean(targets)
    std = torch.std(targets, unbiased=True)
    z_scores = (targets - mean) / (std + 1e-8)
    mask = (z_scores.abs() <= threshold).float()
    mse = F.mse_loss(predictions, targets, reduction="none")
    return (mse * mask).sum() / (mask.sum() + 1e-8)


def looped_class_mask(scores, labels, sigma, n_classes):
    """Per-class loop, as in the note's classification listing."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    for cls in range(n_classes):
        idx = (labels == cls).nonzero(as_tuple=True)[0]
        if len(idx) == 0:
            continue
        class_scores = scores[idx].double()
        std = class_scores.std(unbiased=True) if len(idx) > 1 else torch.tensor(0.0)
        if not std > 4 * torch.finfo(scores.dtype).eps * class_scores.mean().abs():
            std = torch.tensor(math.inf)
        z = ((class_scores - class_scores.mean()) / std).abs()
        mask[idx] = z <= sigma
    return mask


@pytest.mark.parametrize("sigma, expected", [(1.1, 0.15655), (1.3, 0.23015)])
def test_note_toy_batch(sigma, expected):
    loss = ZErrorBCEWithLogitsLoss(sigma=sigma)
    value = loss(torch.tensor(NOTE_LOGITS), torch.tensor(NOTE_LABELS))
    assert_allclose(value.item(), expected, atol=1e-4)
    assert loss.last_mask.tolist() == [True, sigma > 1.234, True, True, True, True]


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(5))
def test_target_statistic_reproduces_the_note_listing(threshold, seed):
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randn(64, 1, generator=gen) * 3 + 1
    predictions = torch.randn(64, 1, generator=gen)
    expected = note_listing_target_mse(predictions, targets, threshold)
    actual = ZErrorMSELoss(sigma=threshold, zscore_of="target")(predictions, targets)
    assert_allclose(actual.item(), expected.item(), rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 80),
    n_classes=st.integers(2, 7),
    sigma=st.sampled_from([0.8, 1.0, 1.5, 2.0]),
    space=st.sampled_from(["logit", "log_probability"]),
    seed=st.integers(0, 10_000),
)
def test_cross_entropy_mask_equals_per_class_loop(n, n_classes, sigma, space, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, n_classes, generator=gen) * 3
    labels = torch.randint(0, n_classes, (n,), generator=gen)
    loss = ZErrorCrossEntropyLoss(sigma=sigma, space=space)
    loss(logits, labels)
    scores = logits if space == "logit" else torch.log_softmax(logits, dim=1)
    given_class = scores.gather(1, labels[:, None]).squeeze(1)
    expected = looped_class_mask(given_class, labels, sigma, n_classes)
    assert_array_equal(loss.last_mask.reshape(-1).numpy(), expected.numpy())


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 80),
    sigma=st.sampled_from([0.8, 1.0, 1.5, 2.0]),
    space=st.sampled_from(["logit", "probability"]),
    seed=st.integers(0, 10_000),
)
def test_binary_mask_equals_per_class_loop(n, sigma, space, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 1, generator=gen) * 2
    labels = torch.randint(0, 2, (n, 1), generator=gen).float()
    loss = ZErrorBCEWithLogitsLoss(sigma=sigma, space=space)
    loss(logits, labels)
    given = torch.where(labels == 1, logits, -logits)
    scores = given if space == "logit" else torch.sigmoid(given)
    expected = looped_class_mask(scores.squeeze(1), labels.squeeze(1).long(), sigma, 2)
    assert_array_equal(loss.last_mask.reshape(-1).numpy(), expected.numpy())


def make_loss(kind, **kwargs):
    gen = torch.Generator().manual_seed(3)
    if kind == "mse":
        target = torch.randn(32, 2, generator=gen)
        return ZErrorMSELoss(**kwargs), torch.randn(32, 2, generator=gen), target
    if kind == "bce":
        target = torch.randint(0, 2, (32,), generator=gen).float()
        return ZErrorBCEWithLogitsLoss(**kwargs), torch.randn(32, generator=gen), target
    target = torch.randint(0, 4, (32,), generator=gen)
    return ZErrorCrossEntropyLoss(**kwargs), torch.randn(32, 4, generator=gen), target


@pytest.mark.parametrize("kind", ["mse", "bce", "ce"])
@pytest.mark.parametrize("window", ["batch", "running"])
def test_masked_samples_get_exactly_zero_gradient(kind, window):
    loss, input, target = make_loss(kind, sigma=1.0, window=window)
    input.requires_grad_(True)
    loss(input, target).backward()
    assert loss.last_mask.shape == (input.shape if kind != "ce" else target.shape)
    outliers = ~loss.last_mask.reshape(input.shape[0], -1)
    assert outliers.any() and not outliers.all()
    grad = input.grad.reshape(input.shape[0], -1)
    if kind == "mse":
        assert (grad[outliers] == 0).all()
        assert (grad[~outliers] != 0).all()
    else:
        rows = outliers.squeeze(1)
        assert (grad[rows] == 0).all()
        assert (grad[~rows].abs().sum(1) > 0).all()


@pytest.mark.parametrize("kind", ["mse", "bce", "ce"])
def test_masked_mean_divides_by_the_number_of_inliers(kind):
    loss, input, target = make_loss(kind, sigma=1.0)
    none = type(loss)(sigma=1.0, reduction="none")
    elementwise = none(input, target)
    mask = none.last_mask.reshape(elementwise.shape)
    assert (elementwise[~mask] == 0).all()
    assert_allclose(
        loss(input, target).item(), (elementwise.sum() / mask.sum()).item(), rtol=1e-6
    )
    total = type(loss)(sigma=1.0, reduction="sum")(input, target)
    assert_allclose(total.item(), elementwise.sum().item(), rtol=1e-6)


def test_inlier_losses_are_the_plain_torch_losses():
    loss, input, target = make_loss("ce", sigma=1.0, reduction="none")
    masked = loss(input, target)
    plain = F.cross_entropy(input, target, reduction="none")
    mask = loss.last_mask
    assert_allclose(masked[mask].numpy(), plain[mask].numpy(), rtol=1e-6)


finite_or_not = st.one_of(
    st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, -math.inf])
)


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["mse", "bce", "ce"]),
    raw=st.lists(finite_or_not, min_size=3, max_size=30),
    reduction=st.sampled_from(["mean", "sum"]),
    center=st.sampled_from(["mean", "median"]),
)
def test_loss_and_gradient_are_never_nan(kind, raw, reduction, center):
    n = len(raw) // 3 * 3
    values = torch.tensor(raw[:n], dtype=torch.float32)
    if kind == "mse":
        input, target = values.reshape(-1, 3), torch.zeros(n // 3, 3)
        loss = ZErrorMSELoss(reduction=reduction, center=center)
    elif kind == "bce":
        input, target = values, (torch.arange(n) % 2).float()
        loss = ZErrorBCEWithLogitsLoss(reduction=reduction, center=center)
    else:
        input, target = values.reshape(-1, 3), torch.arange(n // 3) % 3
        loss = ZErrorCrossEntropyLoss(reduction=reduction, center=center)
    input = input.clone().requires_grad_(True)
    value = loss(input, target)
    value.backward()
    assert not torch.isnan(value)
    assert not torch.isnan(input.grad).any()


@pytest.mark.parametrize("kind", ["mse", "bce", "ce"])
def test_all_masked_batch_gives_zero_loss_and_zero_gradient(kind):
    loss, input, target = make_loss(kind)
    input = torch.full_like(input, math.nan).requires_grad_(True)
    value = loss(input, target)
    value.backward()
    assert value.item() == 0.0
    assert (input.grad == 0).all()


def test_binary_lower_tail_flags_only_doubtful_labels():
    # Label 0 rows: a confident one (-6) and a doubtful one (+3); label 1
    # rows: a confident one (+6) and a doubtful one (-3).
    logits = torch.tensor(
        [-1.0, -1.2, -0.8, -1.1, -6.0, 3.0] + [1.0, 1.2, 0.8, 1.1, 6.0, -3.0]
    )
    labels = torch.tensor([0.0] * 6 + [1.0] * 6)
    loss = ZErrorBCEWithLogitsLoss(sigma=1.0, tail="lower")
    loss(logits, labels)
    flagged = (~loss.last_mask).nonzero().squeeze(1).tolist()
    assert flagged == [5, 11]
    assert loss.last_scores[5] < -1 and loss.last_scores[4] > 1


def test_mse_multi_output_has_per_output_statistics():
    target = torch.zeros(6, 2)
    prediction = torch.tensor(
        [[0.1, 0.0], [-0.1, 0.1], [0.0, -0.1], [0.2, 0.0], [9.0, 0.1], [-0.2, -9.0]]
    )
    loss = ZErrorMSELoss(sigma=1.5)
    loss(prediction, target)
    assert_array_equal(
        loss.last_mask.numpy(),
        [
            [True, True],
            [True, True],
            [True, True],
            [True, True],
            [False, True],
            [True, False],
        ],
    )


@pytest.mark.parametrize("zscore_of", ["residual", "loss", "target"])
def test_mse_zscore_of_chooses_what_is_zscored(zscore_of):
    target = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 10.0])
    prediction = torch.tensor([0.1, -0.1, 0.2, -0.2, 0.0, 10.0])
    loss = ZErrorMSELoss(sigma=1.5, zscore_of=zscore_of)
    loss(prediction, target)
    expected = {
        # the last row is predicted exactly: a residual inlier but a target outlier
        "residual": [True] * 6,
        "loss": [True] * 6,
        "target": [True] * 5 + [False],
    }[zscore_of]
    assert loss.last_mask.tolist() == expected


def test_class_weights_weight_the_masked_mean():
    loss, input, target = make_loss("ce", sigma=1.0)
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0])
    weighted = ZErrorCrossEntropyLoss(sigma=1.0, weight=weight)
    value = weighted(input, target)
    mask = weighted.last_mask
    expected = F.cross_entropy(input[mask], target[mask], weight=weight)
    assert_allclose(value.item(), expected.item(), rtol=1e-6)


def test_per_class_sigma_for_cross_entropy():
    loss, input, target = make_loss("ce", sigma=[0.5, 100.0, 100.0, 100.0])
    loss(input, target)
    mask = loss.last_mask
    assert mask[target != 0].all()
    assert not mask[target == 0].all()


def test_set_sigma_changes_the_buffer_in_place():
    loss, input, target = make_loss("mse", sigma=100.0)
    buffer = loss.sigma
    loss(input, target)
    assert loss.last_mask.all()
    loss.set_sigma(0.5)
    assert loss.sigma is buffer and loss.sigma.item() == 0.5
    loss(input, target)
    assert not loss.last_mask.all()
    assert "sigma" in loss.state_dict()
    with pytest.raises(ValueError, match=r"sigma must keep its shape \(\)"):
        loss.set_sigma([1.0, 2.0])
    with pytest.raises(ValueError, match="sigma must be > 0"):
        loss.set_sigma(-1.0)


@pytest.mark.parametrize("as_type", [np.array, torch.tensor])
def test_set_sigma_never_writes_through_to_the_callers_sigma(as_type):
    sigma = as_type([1.0, 2.0])
    loss = ZErrorCrossEntropyLoss(sigma=sigma)
    loss.set_sigma([5.0, 6.0])
    assert list(map(float, sigma)) == [1.0, 2.0]


def test_infinite_sigma_masks_only_non_finite_values():
    loss = ZErrorMSELoss(sigma=math.inf)
    loss(torch.tensor([0.0, 1.0, 1e6, math.nan]), torch.zeros(4))
    assert loss.last_mask.tolist() == [True, True, True, False]


def test_running_statistics_are_exponential_averages():
    loss = ZErrorMSELoss(window="running", momentum=0.25, zscore_of="target")
    first, second = torch.tensor([0.0, 2.0, 4.0]), torch.tensor([10.0, 12.0, 14.0])
    loss(first, first)
    assert_allclose(loss.running_center.item(), 2.0)
    assert_allclose(loss.running_scale.item(), 2.0)
    loss(second, second)
    assert_allclose(loss.running_center.item(), 0.75 * 2.0 + 0.25 * 12.0)
    # The second batch sits 2.5+ running std away: masked with sigma 2.
    assert not loss.last_mask.any()
    loss.eval()
    loss(second, second)
    assert_allclose(loss.running_center.item(), 4.5)
    loss.reset_running_stats()
    assert loss.running_center is None


def test_running_statistics_keep_absent_classes():
    loss = ZErrorCrossEntropyLoss(window="running", momentum=0.5)
    logits = torch.tensor([[2.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    loss(logits, torch.tensor([0, 0, 1, 1]))
    before = loss.running_center.clone()
    loss(torch.tensor([[1.0, 0.0], [5.0, 0.0]]), torch.tensor([0, 0]))
    assert_allclose(loss.running_center[1].numpy(), before[1].numpy())
    assert_allclose(loss.running_center[0].item(), 0.5 * 2.5 + 0.5 * 3.0)


def test_momentum_one_running_statistics_equal_batch_statistics():
    loss_b, input, target = make_loss("ce", sigma=1.0)
    loss_r = ZErrorCrossEntropyLoss(sigma=1.0, window="running", momentum=1.0)
    assert_allclose(loss_r(input, target).item(), loss_b(input, target).item())


def test_skorch_infers_the_prediction_nonlinearity():
    skorch_utils = pytest.importorskip("skorch.utils")

    class Net:
        _criteria = ["criterion"]

    for loss, expected in [
        (ZErrorCrossEntropyLoss(), torch.softmax(torch.tensor([[1.0, 2.0]]), dim=-1)),
        (ZErrorBCEWithLogitsLoss(), None),
    ]:
        net = Net()
        net.criterion_ = loss
        nonlin = skorch_utils._infer_predict_nonlinearity(net)
        out = nonlin(
            torch.tensor([[1.0, 2.0]]) if expected is not None else torch.tensor([0.0])
        )
        if expected is not None:
            assert_allclose(out.numpy(), expected.numpy())
        else:
            assert_allclose(out.numpy(), [[0.5, 0.5]])


def test_losses_survive_pickling():
    import pickle

    loss = ZErrorCrossEntropyLoss(sigma=[1.0, 2.0], window="running")
    loss(torch.randn(8, 2), torch.tensor([0, 1] * 4))
    clone = pickle.loads(pickle.dumps(loss))
    assert torch.equal(clone.sigma, loss.sigma)
    assert torch.equal(clone.running_center, loss.running_center)


@pytest.mark.parametrize(
    "factory, input, target, error, match",
    [
        (
            ZErrorMSELoss,
            torch.zeros(4),
            torch.zeros(5),
            ValueError,
            r"input shape \(4,\) and target shape \(5,\)",
        ),
        (
            ZErrorMSELoss,
            torch.zeros(4, 2),
            torch.zeros(4, 3),
            ValueError,
            "do not match",
        ),
        (
            ZErrorMSELoss,
            torch.zeros(4, dtype=torch.long),
            torch.zeros(4),
            TypeError,
            "input must have a floating dtype",
        ),
        (
            ZErrorMSELoss,
            torch.zeros(4),
            [0.0] * 4,
            TypeError,
            "target must be a torch.Tensor",
        ),
        (
            ZErrorBCEWithLogitsLoss,
            torch.zeros(4),
            torch.tensor([0.0, 1.0, 2.0, 1.0]),
            ValueError,
            "binary labels 0 and 1",
        ),
        (
            ZErrorBCEWithLogitsLoss,
            torch.zeros(4, 2),
            torch.zeros(4),
            ValueError,
            "one logit per sample",
        ),
        (
            ZErrorCrossEntropyLoss,
            torch.zeros(4, 3),
            torch.tensor([0, 1, 3, 2]),
            ValueError,
            r"must lie in \[0, 2\]; found \[3\]",
        ),
        (
            ZErrorCrossEntropyLoss,
            torch.zeros(4, 3),
            torch.zeros(4),
            TypeError,
            "integer class indices",
        ),
        (
            ZErrorCrossEntropyLoss,
            torch.zeros(4, 3),
            torch.zeros(5, dtype=torch.long),
            ValueError,
            "do not match",
        ),
    ],
)
def test_bad_forward_input_raises_a_clear_error(factory, input, target, error, match):
    with pytest.raises(error, match=match):
        factory()(input, target)


@pytest.mark.parametrize(
    "factory, kwargs, error, match",
    [
        (ZErrorMSELoss, dict(sigma=0.0), ValueError, "sigma must be > 0"),
        (ZErrorMSELoss, dict(sigma=-2.0), ValueError, "sigma must be > 0"),
        (
            ZErrorMSELoss,
            dict(zscore_of="error"),
            ValueError,
            "zscore_of must be one of",
        ),
        (
            ZErrorMSELoss,
            dict(window="global"),
            ValueError,
            "window must be one of",
        ),
        (ZErrorMSELoss, dict(reduction="avg"), ValueError, "reduction must be one of"),
        (
            ZErrorMSELoss,
            dict(momentum=0.0),
            ValueError,
            r"momentum must be in \(0, 1\]",
        ),
        (
            ZErrorBCEWithLogitsLoss,
            dict(space="odds"),
            ValueError,
            "space must be one of",
        ),
        (
            ZErrorCrossEntropyLoss,
            dict(space="probability"),
            ValueError,
            "space must be one of",
        ),
    ],
)
def test_bad_parameters_raise_a_clear_error(factory, kwargs, error, match):
    with pytest.raises(error, match=match):
        factory(**kwargs)


def test_per_class_sigma_of_the_wrong_length_is_refused():
    loss = ZErrorCrossEntropyLoss(sigma=[1.0, 2.0])
    with pytest.raises(
        ValueError, match="sigma holds 2 values but there are 3 classes"
    ):
        loss(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))


def test_unchecked_input_skips_the_label_check():
    loss = ZErrorBCEWithLogitsLoss(check_input=False)
    # 0.5 is not a binary label; unchecked, it is treated as class 0.
    value = loss(torch.zeros(4), torch.tensor([0.0, 1.0, 0.5, 1.0]))
    assert torch.isfinite(value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_losses_accept_every_floating_dtype(dtype):
    for kind in ["mse", "bce", "ce"]:
        loss, input, target = make_loss(kind, sigma=1.0)
        reference = loss(input, target)
        reference_mask = loss.last_mask.clone()
        value = loss(input.to(dtype), target.to(dtype) if kind != "ce" else target)
        assert value.dtype == dtype
        agree = (loss.last_mask == reference_mask).float().mean()
        assert agree > 0.9
        assert_allclose(value.double().item(), reference.item(), rtol=0.05)


# -- the fast path (finite input on the CPU) against the general path ---------

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# Multiples of 1/8 below 64 are exact in every floating dtype above.
exact = st.integers(-400, 400).map(lambda k: k / 8)


def evaluate(loss, input, target, weight, general):
    """Loss, input gradient and evaluation, on the fast or the general path."""
    input = input.detach().clone().requires_grad_(True)
    if general:
        with mock.patch.object(losses_module, "known_finite", lambda *t: False):
            output = loss.evaluate(input, target, sample_weight=weight)
    else:
        output = loss.evaluate(input, target, sample_weight=weight)
    reduced = loss.reduce(output)
    if reduced.ndim:
        reduced = reduced.sum()
    reduced.backward()
    return reduced.detach(), input.grad, output


@st.composite
def loss_cases(draw):
    kind = draw(st.sampled_from(["mse", "bce", "ce"]))
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, 24))
    n_classes = {"mse": 1, "bce": 2, "ce": draw(st.integers(2, 4))}[kind]
    width = n_classes if kind == "ce" else 1
    values = draw(st.lists(exact, min_size=n * width, max_size=n * width))
    input = torch.tensor(values, dtype=torch.float64).reshape(n, width).to(dtype)
    labels = torch.tensor(
        draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    )
    per_class = kind != "mse" and draw(st.booleans())
    sigmas = st.sampled_from([0.5, 1.0, 1.5, 2.0, math.inf])
    sigma = (
        draw(st.lists(sigmas, min_size=n_classes, max_size=n_classes))
        if per_class
        else draw(sigmas)
    )
    options = dict(
        sigma=sigma,
        center=draw(st.sampled_from(["mean", "median"])),
        scale=draw(st.sampled_from(["std", "mad"])),
        tail=draw(st.sampled_from(["both", "lower", "upper"])),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
    )
    if kind == "mse":
        loss = ZErrorMSELoss(
            zscore_of=draw(st.sampled_from(["residual", "loss", "target"])), **options
        )
        target = torch.tensor(
            draw(st.lists(exact, min_size=n, max_size=n)), dtype=dtype
        ).reshape(n, 1)
    elif kind == "bce":
        loss = ZErrorBCEWithLogitsLoss(
            space=draw(st.sampled_from(["logit", "probability"])), **options
        )
        target = labels.to(dtype)
        input = input[:, 0]
    else:
        loss = ZErrorCrossEntropyLoss(
            space=draw(st.sampled_from(["logit", "log_probability"])),
            label_smoothing=draw(st.sampled_from([0.0, 0.1])),
            **options,
        )
        target = labels
    weight = None
    if draw(st.booleans()):
        weight = torch.tensor(
            draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=dtype
        )
    return loss, input, target, weight


def tolerance(dtype):
    """1e-6, or the rounding level of the half-precision dtypes."""
    limit = 1e-6 if dtype in (torch.float32, torch.float64) else 1e-2
    return {"rtol": limit, "atol": limit}


@settings(max_examples=150, deadline=None)
@given(loss_cases())
def test_the_fast_path_equals_the_general_path(case):
    loss, input, target, weight = case
    fast = evaluate(loss, input, target, weight, general=False)
    general = evaluate(loss, input, target, weight, general=True)
    assert_array_equal(fast[2].mask.numpy(), general[2].mask.numpy())
    assert_allclose(fast[2].scores.numpy(), general[2].scores.numpy(), atol=1e-6)
    tol = tolerance(input.dtype)
    assert_allclose(fast[0].double().numpy(), general[0].double().numpy(), **tol)
    assert_allclose(fast[1].double().numpy(), general[1].double().numpy(), **tol)


@settings(max_examples=100, deadline=None)
@given(loss_cases(), st.data())
def test_non_finite_rows_are_outliers_that_change_nothing_else(case, data):
    loss, input, target, weight = case
    n = input.shape[0]
    bad = torch.tensor(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    poisoned = input.detach().clone()
    value = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    poisoned[bad] = value
    _, grad, output = evaluate(loss, poisoned, target, weight, general=True)
    keep = ~bad
    clean_weight = None if weight is None else weight[keep]
    reduced, clean_grad, clean = evaluate(
        loss, input[keep], target[keep], clean_weight, general=False
    )
    mask = output.mask.reshape(n, -1)
    assert not mask[bad].any()
    assert_array_equal(mask[keep].numpy(), clean.mask.reshape(-1, mask.shape[1]))
    assert torch.isfinite(grad).all()
    assert (grad[bad] == 0).all()
    tol = tolerance(input.dtype)
    assert_allclose(grad[keep].double().numpy(), clean_grad.double().numpy(), **tol)
    if loss.reduction != "none":
        total = loss.reduce(output).detach()
        assert_allclose(total.double().item(), reduced.double().item(), **tol)


def test_unmasked_loss_is_the_plain_torch_loss_of_every_row():
    rng = np.random.default_rng(3)
    logits = torch.as_tensor(rng.normal(size=(50, 4)) * 3)
    labels = torch.as_tensor(rng.integers(0, 4, 50))
    # An outlier by any sigma still counts: nothing is masked.
    logits[0] = torch.tensor([40.0, -40.0, 0.0, 0.0])
    labels[0] = 1
    ce = ZErrorCrossEntropyLoss(sigma=1.0, label_smoothing=0.1)
    assert ce(logits, labels) < ce.unmasked_loss(logits, labels)
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    assert_allclose(ce.unmasked_loss(logits, labels), expected)
    one = logits[:, :1]
    binary = (labels[:, None] % 2).double()
    bce = ZErrorBCEWithLogitsLoss(sigma=1.0, pos_weight=torch.tensor([2.0]))
    assert_allclose(
        bce.unmasked_loss(one, binary),
        F.binary_cross_entropy_with_logits(one, binary, pos_weight=torch.tensor([2.0])),
    )
    pred, target = logits[:, 0], logits[:, 1] + 100.0 * (labels == 0)
    mse = ZErrorMSELoss(sigma=1.0)
    assert mse(pred, target) < mse.unmasked_loss(pred, target)
    assert_allclose(mse.unmasked_loss(pred, target), F.mse_loss(pred, target))
    # One output per row in either shape.
    assert_allclose(mse.unmasked_loss(pred[:, None], target), F.mse_loss(pred, target))
