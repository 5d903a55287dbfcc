"""Group-wise z-score masking, the core of the Z-Error Loss.

Everything here is pure torch, vectorised over groups and free of host-device
synchronisation unless ``check_input=True`` asks for value checks. The
statistics are always computed without gradient.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = ["zscore_mask"]

CENTERS = ("mean", "median")
SCALES = ("std", "mad")
TAILS = ("both", "lower", "upper")

# 1 / Phi^{-1}(3/4): makes the median absolute deviation estimate the standard
# deviation of a normal distribution.
MAD_TO_STD = 1.482602218505602


class GroupStatistics(NamedTuple):
    """Per-group, per-column location and spread, each of shape (n_groups, d)."""

    center: torch.Tensor
    scale: torch.Tensor
    count: torch.Tensor


def _check_option(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")


def _values_2d(values):
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}.")
    if not values.is_floating_point():
        raise TypeError(f"values must have a floating dtype, got {values.dtype}.")
    if values.ndim == 1:
        return values.unsqueeze(1)
    if values.ndim == 2:
        return values
    raise ValueError(
        f"values must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), "
        f"got shape {tuple(values.shape)}."
    )


def _check_groups(groups, n_samples, n_groups, device, check_input):
    """Return int64 group indices of shape (n_samples,) and the number of groups."""
    if groups is None:
        if n_groups not in (None, 1):
            raise ValueError(f"n_groups={n_groups} needs groups; got groups=None.")
        return torch.zeros(n_samples, dtype=torch.long, device=device), 1
    if not isinstance(groups, torch.Tensor):
        raise TypeError(f"groups must be a torch.Tensor, got {type(groups).__name__}.")
    if groups.is_floating_point() or groups.is_complex():
        raise TypeError(
            f"groups must hold integer class indices, got dtype {groups.dtype}."
        )
    if groups.ndim == 2 and groups.shape[1] == 1:
        groups = groups.squeeze(1)
    if groups.shape != (n_samples,):
        raise ValueError(
            f"groups must have shape ({n_samples},) to match values, "
            f"got {tuple(groups.shape)}."
        )
    groups = groups.to(device=device, dtype=torch.long)
    if n_groups is None:
        # Inferring the number of groups reads a value: one host sync.
        n_groups = int(groups.max()) + 1 if n_samples else 1
    elif n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}.")
    if check_input and n_samples:
        # One reduction and one host sync, however many groups.
        low, high = torch.stack(torch.aminmax(groups)).tolist()
        if low < 0 or high >= n_groups:
            bad = groups[(groups < 0) | (groups >= n_groups)].unique()[:5].tolist()
            raise ValueError(
                f"groups (labels) must lie in [0, {n_groups - 1}]; found {bad}."
            )
    return groups, n_groups


def sigma_tensor(sigma, n_groups, *, device=None, dtype=torch.float64):
    """Validate ``sigma`` and return it as a 0-d or (n_groups,) tensor.

    ``inf`` is allowed and means "mask nothing but non-finite values".
    ``n_groups=None`` accepts a sequence of any length.
    """
    if isinstance(sigma, bool):
        raise TypeError("sigma must be a positive number or a sequence of them.")
    # Always a copy: the losses change their sigma buffer in place, which must
    # never write through to the caller's array or tensor.
    if isinstance(sigma, torch.Tensor):
        tensor = sigma.detach().to(device=device, dtype=dtype, copy=True)
    elif isinstance(sigma, int | float):
        tensor = torch.tensor(float(sigma), device=device, dtype=dtype)
    elif isinstance(sigma, Sequence) or hasattr(sigma, "__array__"):
        try:
            tensor = torch.tensor(sigma, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"sigma must be a positive number or a sequence of them; {exc}"
            ) from None
    else:
        raise TypeError(
            "sigma must be a positive number or a sequence of them, "
            f"got {type(sigma).__name__}."
        )
    wrong_length = (
        tensor.ndim == 1 and n_groups is not None and tensor.shape[0] != n_groups
    )
    if tensor.ndim > 1 or wrong_length:
        raise ValueError(
            f"sigma must be a scalar or hold one value per group ({n_groups}), "
            f"got shape {tuple(tensor.shape)}."
        )
    if bool(torch.isnan(tensor).any()) or bool((tensor <= 0).any()):
        raise ValueError(f"sigma must be > 0 (inf allowed), got {tensor.tolist()}.")
    return tensor


def group_sums(values, groups, n_groups):
    """Per-group count, sum and sum of squares of the finite values.

    These three sums are all the mean/std statistics need, so they can be
    all-reduced across data-parallel processes before
    :func:`statistics_from_sums` turns them into a centre and a scale.

    Parameters
    ----------
    values : Tensor of shape (n, d), float64
    groups : Tensor of shape (n,), int64 in ``[0, n_groups)``
    n_groups : int

    Returns
    -------
    sums : Tensor of shape (n_groups, 3, d)
        ``sums[:, 0]`` counts, ``sums[:, 1]`` sums, ``sums[:, 2]`` sums of squares.
    """
    return _sums(*_finite_and_clean(values), groups, n_groups)


def _finite_and_clean(values):
    """The finite mask of ``values`` and ``values`` with 0 for the non-finite ones.

    Two kernels, where ``isfinite`` (four) and ``where`` take five: a value is
    finite exactly when replacing its NaN and infinities by 0 leaves it as is.
    """
    clean = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return values == clean, clean


def _sums(finite, clean, groups, n_groups):
    """:func:`group_sums` from the output of :func:`_finite_and_clean`."""
    # stack promotes the boolean mask to the float dtype as it copies.
    stacked = torch.stack([finite, clean, clean * clean], dim=1)
    out = clean.new_zeros((n_groups, 3, clean.shape[1]))
    return out.index_add_(0, groups, stacked)


def degenerate_groups(stats, eps):
    """True where a group and column has no usable statistics.

    That is fewer than two finite members, or a spread at the rounding level
    of the centre (``eps`` relative), which is no spread at all.
    """
    return ~usable_groups(stats, eps)


def usable_groups(stats, eps):
    """The complement of :func:`degenerate_groups`, one kernel fewer."""
    return (stats.count >= 2) & (stats.scale > eps * stats.center.abs())


def statistics_from_sums(sums):
    """Mean and unbiased standard deviation from :func:`group_sums` output."""
    count, total, total_sq = sums.unbind(1)
    mean = total / count.clamp(min=1)
    var = (total_sq - total * mean) / (count - 1).clamp(min=1)
    return GroupStatistics(mean, var.clamp(min=0).sqrt(), count)


def _group_median(values, groups, n_groups, finite=None):
    """Median of the finite values of each group and column, NaN for none."""
    n, d = values.shape
    if finite is None:
        finite = torch.isfinite(values)
    key = torch.where(finite, values, torch.inf)
    # Sort by value, then stably by group: each group becomes a contiguous,
    # ascending run with its non-finite members (now +inf) at the end.
    by_value = torch.argsort(key, dim=0, stable=True)
    by_group = torch.argsort(groups[by_value], dim=0, stable=True)
    ordered = torch.gather(key, 0, torch.gather(by_value, 0, by_group))

    ones = values.new_ones(n)
    size = values.new_zeros(n_groups).index_add_(0, groups, ones).long()
    start = (torch.cumsum(size, 0) - size).unsqueeze(1)
    count = values.new_zeros((n_groups, d)).index_add_(
        0, groups, finite.to(values.dtype)
    )
    count = count.long()
    last = max(n - 1, 0)
    low = (start + (count - 1).clamp(min=0) // 2).clamp(max=last)
    high = (start + count // 2).clamp(max=last)
    if n == 0:
        return values.new_full((n_groups, d), torch.nan), count
    median = 0.5 * (torch.gather(ordered, 0, low) + torch.gather(ordered, 0, high))
    return torch.where(count > 0, median, torch.nan), count.to(values.dtype)


def group_statistics(values, groups, n_groups, *, center="mean", scale="std"):
    """Centre and scale of each group's finite values, per column.

    Parameters
    ----------
    values : Tensor of shape (n, d), float64
    groups : Tensor of shape (n,), int64 in ``[0, n_groups)``
    n_groups : int
    center : {"mean", "median"}
    scale : {"std", "mad"}
        ``"std"`` is the root of the unbiased mean squared deviation from the
        centre; ``"mad"`` is the median absolute deviation from the centre times
        1.4826, which estimates the standard deviation of normal data.

    Returns
    -------
    GroupStatistics
        ``center``, ``scale`` and ``count`` (finite members), each (n_groups, d).
    """
    with torch.no_grad():
        finite, clean = _finite_and_clean(values)
    return _group_statistics(values, finite, clean, groups, n_groups, center, scale)


def _group_statistics(values, finite, clean, groups, n_groups, center, scale):
    """:func:`group_statistics` reusing :func:`_finite_and_clean`'s output."""
    with torch.no_grad():
        if center == "mean" and scale == "std":
            return statistics_from_sums(_sums(finite, clean, groups, n_groups))
        if center == "mean":
            sums = _sums(finite, clean, groups, n_groups)
            location, count = sums[:, 1] / sums[:, 0].clamp(min=1), sums[:, 0]
        else:
            location, count = _group_median(values, groups, n_groups, finite)
        location = torch.nan_to_num(location, nan=0.0)
        deviation = values - location[groups]
        if scale == "mad":
            spread = _group_median(deviation.abs(), groups, n_groups)[0] * MAD_TO_STD
        else:
            sq = group_sums(deviation, groups, n_groups)[:, 2]
            spread = (sq / (count - 1).clamp(min=1)).sqrt()
        return GroupStatistics(location, torch.nan_to_num(spread, nan=0.0), count)


def zscores_from_statistics(values, groups, stats, degenerate):
    """Signed z-scores of ``values`` (n, d) against their group's statistics.

    Members of ``degenerate`` groups (see :func:`degenerate_groups`) get a
    z-score of 0; non-finite values keep their own value (+-inf or NaN).
    """
    return _zscores(values, torch.isfinite(values), groups, stats, ~degenerate)


def _zscores(values, finite, groups, stats, usable):
    """:func:`zscores_from_statistics` given the finite mask and usable groups."""
    # The safe scale is chosen per group, before the gather to the samples.
    scale = torch.where(usable, stats.scale, 1.0)[groups]
    z = (values - stats.center[groups]) / scale
    z = torch.where(usable[groups], z, 0.0)
    return torch.where(finite, z, values)


def inlier_mask_from_zscores(z, groups, sigma, tail):
    """Inliers: finite z-scores within ``sigma`` on the tested tail(s)."""
    # An infinite sigma becomes the largest finite number: the comparison then
    # also rejects infinite z-scores, and NaN fails every comparison, so the
    # two-tailed test needs no separate finiteness check.
    limit = sigma.clamp(max=torch.finfo(sigma.dtype).max)
    limit = limit[groups].unsqueeze(1) if limit.ndim == 1 else limit
    if tail == "both":
        return z.abs() <= limit
    if tail == "lower":
        return (z >= -limit) & (z < torch.inf)
    return (z <= limit) & (z > -torch.inf)


def rounding_eps(dtype):
    """Relative spread below which a group counts as having no spread."""
    return 4 * torch.finfo(dtype).eps


def zscore_mask(
    values,
    groups=None,
    *,
    sigma=2.0,
    center="mean",
    scale="std",
    tail="both",
    n_groups=None,
    return_scores=False,
    check_input=True,
):
    """Mask the values that lie within ``sigma`` z-scores of their group's centre.

    This is the masking step of the Z-Error Loss (technical note, "Z-error loss
    for Regression", steps 2-3, and "Z-error loss for Classification"): each
    value is z-scored against the statistics of its own group (one group per
    class, or a single group), and values further than ``sigma`` from the
    centre are outliers.

    Parameters
    ----------
    values : Tensor of shape (n_samples,) or (n_samples, n_outputs)
        Floating values to test (residuals, losses, logits...). Each column is
        z-scored on its own statistics.
    groups : Tensor of shape (n_samples,), default=None
        Integer group index of each sample, in ``[0, n_groups)``. ``None`` puts
        every sample in one group.
    sigma : float or sequence of float, default=2.0
        Inlier threshold in standard deviations, either one value or one per
        group (the note's "independent sigma" per class). Must be > 0;
        ``float("inf")`` masks only non-finite values.
    center : {"mean", "median"}, default="mean"
        Location of each group. ``"mean"`` is the note's method; ``"median"``
        is not pulled by the outliers it should detect.
    scale : {"std", "mad"}, default="std"
        Spread about ``center``: the unbiased standard deviation, or the
        median absolute deviation times 1.4826 (consistent with the standard
        deviation for normal data and robust to up to 50% outliers).
    tail : {"both", "lower", "upper"}, default="both"
        Which side is tested: ``"both"`` flags ``|z| > sigma``, ``"lower"``
        flags ``z < -sigma`` only, ``"upper"`` flags ``z > sigma`` only.
    n_groups : int, default=None
        Number of groups. ``None`` infers ``groups.max() + 1``, which reads a
        value from the device (one host sync); pass it to avoid that.
    return_scores : bool, default=False
        Also return the signed z-scores.
    check_input : bool, default=True
        Check values that need a host sync (group indices in range, sigma > 0).
        Shapes and dtypes are always checked.

    Returns
    -------
    mask : BoolTensor of the shape of ``values``
        True for inliers.
    scores : Tensor of the shape of ``values``
        Signed z-scores, only when ``return_scores=True``. Members of
        degenerate groups score 0; non-finite values keep their own value.

    Notes
    -----
    The statistics are computed without gradient, in float64, from the finite
    values only. Non-finite values are always outliers. A group with fewer
    than two finite members, or with no spread (all values equal up to
    rounding), has no usable statistics: its finite members are all inliers
    (the note's listing sets the standard deviation to 1.0 there, which for a
    zero-spread group comes to the same thing). The mean/std path only needs
    per-group counts, sums and sums of squares, so it can be all-reduced
    across data-parallel processes.

    Examples
    --------
    >>> import torch
    >>> from sk_zerror import zscore_mask
    >>> values = torch.tensor([0.1, -0.2, 0.0, 0.2, 9.0, -0.1])
    >>> zscore_mask(values, sigma=1.5)
    tensor([ True,  True,  True,  True, False,  True])
    >>> logits = torch.tensor([2.5, 0.2, -1.1, 1.3, -2.0, 3.0])
    >>> labels = torch.tensor([1, 1, 0, 1, 0, 1])
    >>> mask, z = zscore_mask(logits, labels, sigma=1.1, return_scores=True)
    >>> mask
    tensor([ True, False,  True,  True,  True,  True])
    >>> z.round(decimals=2)
    tensor([ 0.6000, -1.2300,  0.7100, -0.3600, -0.7100,  1.0000])
    """
    _check_option("center", center, CENTERS)
    _check_option("scale", scale, SCALES)
    _check_option("tail", tail, TAILS)
    values2d = _values_2d(values)
    groups, n_groups = _check_groups(
        groups, values2d.shape[0], n_groups, values2d.device, check_input
    )
    if check_input or not isinstance(sigma, torch.Tensor):
        sigma = sigma_tensor(sigma, n_groups, device=values2d.device)
    with torch.no_grad():
        work = values2d.detach().to(torch.float64)
        finite, clean = _finite_and_clean(work)
        stats = _group_statistics(work, finite, clean, groups, n_groups, center, scale)
        usable = usable_groups(stats, rounding_eps(values.dtype))
        z = _zscores(work, finite, groups, stats, usable)
        mask = inlier_mask_from_zscores(z, groups, sigma.to(torch.float64), tail)
    mask = mask.reshape(values.shape)
    if return_scores:
        return mask, z.to(values.dtype).reshape(values.shape)
    return mask
