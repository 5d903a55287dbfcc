"""The masking core of the Z-Error Loss: group statistics -> z-scores -> mask.

This is the one place where the masking rule is written. The losses, the
estimators' ledger and the audit functions (:func:`~sk_zerror.find_outliers`,
:func:`~sk_zerror.find_label_outliers`) all call :func:`masked_zscores` (or
its public face, :func:`zscore_mask`).

Everything here is pure torch, vectorised over groups, computed without
gradient in float64, and free of host-device synchronisation, except for the
value checks that ``check_input=True`` asks for and the optional exchange of
the statistics between data-parallel processes (``sync``).

Policy for degenerate groups
----------------------------
A group (one class, or the whole batch) has *usable* statistics when its
finite members weigh at least 2 in total (two rows at unit weight) and their
spread exceeds the rounding level of their centre. A median absolute
deviation of zero (more than half of a group tied, as with probabilities
rounded to 1) falls back to the standard deviation about the same centre, so
that a tied group still flags its tails. The finite members of a group without
usable statistics are all inliers with z-score 0; non-finite values are always
outliers and keep their own value as z-score.
"""

import math
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
    """Per-group, per-column location and spread, each of shape (n_groups, d).

    ``count`` is the total weight of the finite members (their number at unit
    weight).
    """

    center: torch.Tensor
    scale: torch.Tensor
    count: torch.Tensor


class ZScores(NamedTuple):
    """What :func:`masked_zscores` returns, each value of shape (n, d).

    Attributes
    ----------
    mask : BoolTensor
        True for inliers.
    scores : Tensor
        Signed z-scores (float64).
    statistics : GroupStatistics
        The statistics the values were scored against.
    """

    mask: torch.Tensor
    scores: torch.Tensor
    statistics: GroupStatistics


def check_option(name, value, options):
    """Raise a ValueError naming ``name`` unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")


def check_groups(groups, n_samples, n_groups, device, check_input):
    """Int64 group indices of shape (n_samples,) and the number of groups.

    ``groups=None`` means a single group and returns ``(None, 1)``.
    """
    if groups is None:
        if n_groups not in (None, 1):
            raise ValueError(f"n_groups={n_groups} needs groups; got groups=None.")
        return None, 1
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


def sigma_tensor(sigma, n_groups=None, *, device=None):
    """Validate ``sigma`` and return a float64 copy, 0-d or of shape (n_groups,).

    ``inf`` is allowed and means "mask nothing but non-finite values".
    ``n_groups=None`` accepts a sequence of any length. The copy matters: the
    losses change their sigma buffer in place, which must never write through
    to the caller's array or tensor.
    """
    if isinstance(sigma, bool):
        raise TypeError("sigma must be a positive number or a sequence of them.")
    if isinstance(sigma, torch.Tensor):
        tensor = sigma.detach().to(device=device, dtype=torch.float64, copy=True)
    elif isinstance(sigma, int | float):
        tensor = torch.tensor(float(sigma), device=device, dtype=torch.float64)
    elif isinstance(sigma, Sequence) or hasattr(sigma, "__array__"):
        try:
            tensor = torch.tensor(sigma, dtype=torch.float64, device=device)
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


def rounding_eps(dtype):
    """Relative spread below which a group counts as having no spread."""
    return 4 * torch.finfo(dtype).eps


def zero_non_finite(values):
    """``values`` with 0 in place of NaN and infinities."""
    return values.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def known_finite(*tensors):
    """True when every tensor is known, cheaply, to hold only finite values.

    Only on the CPU, where reading a value costs no device synchronisation:
    one sum per tensor is finite exactly when its values are (or, rarely, a
    sum overflows, which only sends the caller down the general path). On
    other devices the answer is always False, so the callers take the path
    that handles non-finite values without reading anything.
    """
    return all(
        t.device.type == "cpu" and math.isfinite(t.sum().item()) for t in tensors
    )


# -- statistics ---------------------------------------------------------------


def _gather(stat, groups):
    """Per-row values of a per-group statistic (n_groups, d)."""
    return stat if groups is None else stat[groups]


def _sums(weighted, groups, n_groups):
    """Per-group sums of the rows of ``weighted`` (n, k, d) -> (n_groups, k, d)."""
    if groups is None:
        return weighted.sum(dim=0, keepdim=True)
    out = weighted.new_zeros((n_groups, *weighted.shape[1:]))
    return out.index_add_(0, groups, weighted)


def _moments(values, weight, groups, n_groups):
    """Per-group (weight, weighted sum, weighted sum of squares), (n_groups, 3, d).

    ``weight`` is None for unit weights of all-finite values.
    """
    if weight is None:
        stacked = torch.stack([torch.ones_like(values), values, values * values], 1)
    else:
        weighted = weight * values
        stacked = torch.stack([weight, weighted, weighted * values], 1)
    return _sums(stacked, groups, n_groups)


def _from_moments(moments):
    """Mean and unbiased (frequency-weighted) standard deviation."""
    count, total, total_sq = moments.unbind(1)
    mean = total / count.clamp(min=1)
    var = torch.addcmul(total_sq, total, mean, value=-1) / (count - 1).clamp(min=1)
    return GroupStatistics(mean, var.clamp_(min=0).sqrt_(), count)


def _weighted_median(values, weight, groups, n_groups):
    """Weighted median of each group and column; NaN where a group weighs 0.

    A row of weight ``w`` counts as ``w`` rows: with integer weights this is
    exactly the median of the data with every row repeated ``w`` times (the
    mean of the two middle values for an even total weight). Rows of weight
    0 (non-finite values among them) take no part.
    """
    n, d = values.shape
    if groups is None:
        groups = torch.zeros(n, dtype=torch.long, device=values.device)
    if n == 0:
        return values.new_full((n_groups, d), torch.nan)
    key = torch.where(weight > 0, values, torch.inf)
    # Sort by value, then stably by group: each group becomes a contiguous,
    # ascending run with its weightless members (now +inf) at the end.
    by_value = torch.argsort(key, dim=0, stable=True)
    order = torch.gather(
        by_value, 0, torch.argsort(groups[by_value], dim=0, stable=True)
    )
    ordered = torch.gather(key, 0, order)
    cumulative = torch.cumsum(torch.gather(weight, 0, order), dim=0)
    total = _sums(weight, groups, n_groups)
    before = torch.cumsum(total, dim=0) - total
    # The middle row(s) of a group of total weight W are the first whose
    # cumulative weight within the group exceeds floor((W-1)/2), resp.
    # floor(W/2): positions (W-1)//2 and W//2 of the repeated rows.
    low = before + torch.floor((total - 1) / 2).clamp(min=0)
    high = before + torch.floor(total / 2)
    positions = torch.cat([low, high], 0).T.contiguous()
    index = torch.searchsorted(cumulative.T.contiguous(), positions, right=True)
    index = index.clamp(max=n - 1).T
    middle = torch.gather(ordered, 0, index)
    median = 0.5 * (middle[:n_groups] + middle[n_groups:])
    return torch.where(total > 0, median, torch.nan)


def _finite_weight(values, weights):
    """Per-value weight: the sample weight where the value is finite, else 0."""
    finite = torch.isfinite(values).to(values.dtype)
    return finite if weights is None else finite * weights.unsqueeze(1)


def group_statistics(
    values,
    groups,
    n_groups,
    *,
    center="mean",
    scale="std",
    weights=None,
    all_finite=False,
    sync=None,
):
    """Centre and scale of each group's finite values, per column.

    Parameters
    ----------
    values : Tensor of shape (n, d), float64
    groups : Tensor of shape (n,), int64 in ``[0, n_groups)``, or None
        None puts every row in one group.
    n_groups : int
    center : {"mean", "median"}
    scale : {"std", "mad"}
        ``"std"`` is the root of the unbiased (frequency-weighted) mean squared
        deviation from the centre; ``"mad"`` is the median absolute deviation
        from the centre times 1.4826, which estimates the standard deviation
        of normal data; a zero MAD falls back to ``"std"``.
    weights : Tensor of shape (n,), float64, default=None
        Frequency weights (>= 0): a row of weight 2 counts as two rows.
    all_finite : bool, default=False
        The caller knows every value is finite (skips the finiteness mask).
    sync : Synchronizer, default=None
        Data-parallel processes to compute the statistics of the global batch
        with (:mod:`sk_zerror._distributed`).

    Returns
    -------
    GroupStatistics
    """
    fast = all_finite and weights is None
    weight = None if fast else _finite_weight(values, weights)
    if center == "mean" and scale == "std":
        clean = values if fast else zero_non_finite(values)
        moments = _moments(clean, weight, groups, n_groups)
        if sync is not None:
            moments = sync.all_reduce(moments)
        return _from_moments(moments)
    if weight is None:
        weight = torch.ones_like(values)
    if sync is not None:
        values, weight, groups = sync.all_gather_rows(values, weight, groups)
    return _robust_statistics(values, weight, groups, n_groups, center, scale)


def _robust_statistics(values, weight, groups, n_groups, center, scale):
    """The statistics with a median centre or a MAD scale (or both)."""
    clean = zero_non_finite(values)
    if center == "mean":
        count, total, _ = _moments(clean, weight, groups, n_groups).unbind(1)
        location = total / count.clamp(min=1)
    else:
        location = _weighted_median(values, weight, groups, n_groups)
        count = _sums(weight, groups, n_groups)
    location = zero_non_finite(location)
    deviation = (clean - _gather(location, groups)).abs()
    squares = _sums(weight * deviation * deviation, groups, n_groups)
    std = (squares / (count - 1).clamp(min=1)).sqrt()
    if scale == "mad":
        mad = _weighted_median(deviation, weight, groups, n_groups) * MAD_TO_STD
        std = torch.where(mad > 0, mad, std)
    return GroupStatistics(location, zero_non_finite(std), count)


def usable_groups(stats, eps):
    """True where a group and column has usable statistics (module policy)."""
    return (stats.count >= 2) & (stats.scale > eps * stats.center.abs())


def zscores(values, groups, stats, usable, all_finite=False):
    """Signed z-scores of ``values`` (n, d) against their group's statistics.

    Members of groups without usable statistics score 0; non-finite values
    keep their own value (+-inf or NaN).
    """
    # An infinite scale scores every finite member of an unusable group 0.
    scale = _gather(torch.where(usable, stats.scale, torch.inf), groups)
    z = (values - _gather(stats.center, groups)) / scale
    return z if all_finite else torch.where(torch.isfinite(values), z, values)


def inlier_mask(z, groups, sigma, tail, all_finite=False):
    """Inliers: finite z-scores within ``sigma`` on the tested tail(s)."""
    # An infinite sigma becomes the largest finite number: the comparison then
    # also rejects infinite z-scores, and NaN fails every comparison, so the
    # two-tailed test needs no separate finiteness check. Finite z-scores need
    # no such care.
    limit = sigma if all_finite else sigma.clamp(max=torch.finfo(sigma.dtype).max)
    if limit.ndim == 1:
        limit = _gather(limit, groups)
        limit = limit.unsqueeze(1) if groups is not None else limit
    if tail == "both":
        return z.abs() <= limit
    if tail == "lower":
        inside = z >= -limit
        return inside if all_finite else inside & (z < torch.inf)
    inside = z <= limit
    return inside if all_finite else inside & (z > -torch.inf)


def masked_zscores(
    values,
    groups,
    n_groups,
    sigma,
    *,
    center="mean",
    scale="std",
    tail="both",
    weights=None,
    eps=None,
    all_finite=False,
    sync=None,
    running=None,
):
    """The whole rule: statistics -> z-scores -> inlier mask.

    Parameters
    ----------
    values : Tensor of shape (n, d)
        Values to score; detached and taken to float64 here.
    groups : Tensor of shape (n,), int64, or None
        Group of each row, already checked; None is one group.
    n_groups : int
    sigma : Tensor, float64, 0-d or (n_groups,)
        Already validated threshold.
    center, scale, tail
        As in :func:`zscore_mask`.
    weights : Tensor of shape (n,), default=None
        Frequency weights of the rows.
    eps : float, default=None
        Relative spread below which a group has no spread; by default the
        rounding level of ``values``' dtype.
    all_finite : bool, default=False
        The caller knows every value is finite: the path with the fewest
        operations, with results identical to the general one.
    sync : Synchronizer, default=None
        Statistics of the global batch across data-parallel processes.
    running : callable, default=None
        ``running(stats, eps) -> stats``: replaces the batch statistics (the
        losses' exponential running statistics).

    Returns
    -------
    ZScores
    """
    if eps is None:
        eps = rounding_eps(values.dtype)
    # Every input is detached: the statistics carry no gradient.
    work = values.detach().to(torch.float64)
    stats = group_statistics(
        work,
        groups,
        n_groups,
        center=center,
        scale=scale,
        weights=None if weights is None else weights.detach().to(torch.float64),
        all_finite=all_finite,
        sync=sync,
    )
    if running is not None:
        stats = running(stats, eps)
    usable = usable_groups(stats, eps)
    z = zscores(work, groups, stats, usable, all_finite)
    mask = inlier_mask(z, groups, sigma, tail, all_finite)
    return ZScores(mask, z, stats)


def zscore_mask(
    values,
    groups=None,
    *,
    sigma=2.0,
    center="mean",
    scale="std",
    tail="both",
    n_groups=None,
    weights=None,
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
        deviation for normal data and robust to up to 50% outliers; where it
        is zero, the standard deviation about the same centre).
    tail : {"both", "lower", "upper"}, default="both"
        Which side is tested: ``"both"`` flags ``|z| > sigma``, ``"lower"``
        flags ``z < -sigma`` only, ``"upper"`` flags ``z > sigma`` only.
    n_groups : int, default=None
        Number of groups. ``None`` infers ``groups.max() + 1``, which reads a
        value from the device (one host sync); pass it to avoid that.
    weights : Tensor of shape (n_samples,), default=None
        Frequency weights (>= 0) of the samples in the statistics: a sample
        of weight 2 counts as two samples in the mean, standard deviation,
        median and MAD, exactly as it counts twice in a weighted loss.
    return_scores : bool, default=False
        Also return the signed z-scores.
    check_input : bool, default=True
        Check values that need a host sync (group indices in range, sigma > 0,
        weights >= 0). Shapes and dtypes are always checked.

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
    values only. Non-finite values are always outliers. A group whose finite
    members weigh less than 2 in total, or with no spread (all values equal
    up to rounding), has no usable statistics: its finite members are all
    inliers (the note's listing sets the standard deviation to 1.0 there,
    which for a zero-spread group comes to the same thing). The mean/std
    path only needs per-group weights, sums and sums of squares, so it can be
    all-reduced across data-parallel processes.

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
    check_option("center", center, CENTERS)
    check_option("scale", scale, SCALES)
    check_option("tail", tail, TAILS)
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}.")
    if not values.is_floating_point():
        raise TypeError(f"values must have a floating dtype, got {values.dtype}.")
    if values.ndim not in (1, 2):
        raise ValueError(
            f"values must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), "
            f"got shape {tuple(values.shape)}."
        )
    values2d = values if values.ndim == 2 else values.unsqueeze(1)
    n = values2d.shape[0]
    groups, n_groups = check_groups(groups, n, n_groups, values.device, check_input)
    if check_input or not isinstance(sigma, torch.Tensor):
        sigma = sigma_tensor(sigma, n_groups, device=values.device)
    if weights is not None:
        weights = check_weights(weights, n, values.device, check_input)
    result = masked_zscores(
        values2d,
        groups,
        n_groups,
        sigma.to(torch.float64),
        center=center,
        scale=scale,
        tail=tail,
        weights=weights,
        all_finite=known_finite(values2d),
    )
    mask = result.mask.reshape(values.shape)
    if return_scores:
        return mask, result.scores.to(values.dtype).reshape(values.shape)
    return mask


def check_weights(weights, n_samples, device, check_input):
    """Sample weights as a float tensor of shape (n_samples,)."""
    if not isinstance(weights, torch.Tensor):
        raise TypeError(
            f"weights must be a torch.Tensor, got {type(weights).__name__}."
        )
    weights = weights.reshape(-1) if weights.ndim == 2 else weights
    if weights.shape != (n_samples,):
        raise ValueError(
            f"weights must have shape ({n_samples},), got {tuple(weights.shape)}."
        )
    if check_input and bool((~(weights >= 0) | ~torch.isfinite(weights)).any()):
        raise ValueError("weights must be finite and >= 0.")
    return weights.to(device)
