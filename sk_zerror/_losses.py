"""Z-Error losses: torch losses that leave batch outliers out of the mean."""

import torch
import torch.nn.functional as F
from torch import nn

from ._zscore import (
    CENTERS,
    SCALES,
    TAILS,
    GroupStatistics,
    _check_groups,
    _check_option,
    _finite_and_clean,
    _group_statistics,
    _zscores,
    degenerate_groups,
    inlier_mask_from_zscores,
    rounding_eps,
    sigma_tensor,
    usable_groups,
)

__all__ = ["ZErrorMSELoss", "ZErrorBCEWithLogitsLoss", "ZErrorCrossEntropyLoss"]

REDUCTIONS = ("mean", "sum", "none")
# Label of the outliers in the cross-entropy; the real labels are checked to
# lie in [0, n_classes) (or index the logits), so it never meets one of them.
IGNORED = -100
STATISTICS = ("batch", "running")


class _ZErrorMixin:
    """What the three Z-Error losses share.

    The inlier threshold lives in the ``sigma`` buffer, so a schedule can change
    it in place (:meth:`set_sigma`) without rebuilding the criterion or the
    optimizer. With ``statistics="running"`` the per-group centre and scale are
    exponential moving averages across training batches (buffers
    ``running_center``, ``running_scale``, ``running_seen``), updated only in
    training mode, like :class:`torch.nn.BatchNorm1d`.
    """

    def _init_zerror(self, sigma, center, scale, tail, statistics, momentum, check):
        _check_option("center", center, CENTERS)
        _check_option("scale", scale, SCALES)
        _check_option("tail", tail, TAILS)
        _check_option("statistics", statistics, STATISTICS)
        _check_option("reduction", self.reduction, REDUCTIONS)
        if isinstance(momentum, bool) or not 0.0 < float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}.")
        self.center = center
        self.scale = scale
        self.tail = tail
        self.statistics = statistics
        self.momentum = float(momentum)
        self.check_input = bool(check)
        self.register_buffer("sigma", sigma_tensor(sigma, None))
        self.register_buffer("running_center", None)
        self.register_buffer("running_scale", None)
        self.register_buffer("running_seen", None)
        self.last_mask = None
        self.last_scores = None

    def set_sigma(self, sigma):
        """Set the inlier threshold in place, keeping the buffer's shape.

        Parameters
        ----------
        sigma : float or sequence of float
            New threshold (> 0, ``inf`` allowed), of the shape given at
            construction (a scalar, or one value per group).
        """
        new = sigma_tensor(sigma, None, device=self.sigma.device)
        if new.shape != self.sigma.shape:
            raise ValueError(
                f"sigma must keep its shape {tuple(self.sigma.shape)}, "
                f"got {tuple(new.shape)}."
            )
        with torch.no_grad():
            self.sigma.copy_(new)

    def reset_running_stats(self):
        """Forget the running statistics."""
        self.running_center = None
        self.running_scale = None
        self.running_seen = None

    def _sigma_for(self, n_groups):
        if self.sigma.ndim == 1 and self.sigma.shape[0] != n_groups:
            raise ValueError(
                f"sigma holds {self.sigma.shape[0]} values but there are "
                f"{n_groups} classes."
            )
        return self.sigma.to(torch.float64)

    def _running_statistics(self, batch, eps):
        """Fold this batch's statistics into the running ones and return those."""
        usable = ~degenerate_groups(batch, eps)
        if self.running_center is None or self.running_center.shape != usable.shape:
            self.running_center = torch.zeros_like(batch.center)
            self.running_scale = torch.zeros_like(batch.scale)
            self.running_seen = torch.zeros_like(usable)
        if self.training:
            m = self.momentum
            seen = self.running_seen
            for name, new in (
                ("running_center", batch.center),
                ("running_scale", batch.scale),
            ):
                old = getattr(self, name).to(new.dtype)
                blended = torch.where(seen, (1 - m) * old + m * new, new)
                getattr(self, name).copy_(torch.where(usable, blended, old))
            self.running_seen |= usable
        seen = self.running_seen
        count = torch.where(seen, 2.0, 0.0).to(batch.count.dtype)
        return GroupStatistics(
            self.running_center.to(batch.center.dtype),
            self.running_scale.to(batch.scale.dtype),
            count,
        )

    def _inlier_mask(self, values, groups, n_groups):
        """Inlier mask and z-scores of ``values`` (n, d).

        The callers have already checked the label values.
        """
        groups, n_groups = _check_groups(
            groups, values.shape[0], n_groups, values.device, check_input=False
        )
        sigma = self._sigma_for(n_groups)
        eps = rounding_eps(values.dtype)
        with torch.no_grad():
            work = values.detach().to(torch.float64)
            finite, clean = _finite_and_clean(work)
            stats = _group_statistics(
                work, finite, clean, groups, n_groups, self.center, self.scale
            )
            if self.statistics == "running":
                stats = self._running_statistics(stats, eps)
            z = _zscores(work, finite, groups, stats, usable_groups(stats, eps))
            mask = inlier_mask_from_zscores(z, groups, sigma, self.tail)
        return mask, z.to(values.dtype)

    def _remember(self, mask, scores, shape):
        """Keep this batch's mask and z-scores, shaped like the per-sample loss."""
        self.last_mask = mask.reshape(shape)
        self.last_scores = scores.reshape(shape)

    def _reduce(self, elementwise, mask, weights=None):
        """Masked mean (or sum, or none) of an elementwise loss already zeroed."""
        if self.reduction == "none":
            return elementwise
        total = elementwise.sum()
        if self.reduction == "sum":
            return total
        # An all-masked batch gives 0 / 1: loss 0 with zero, finite gradients.
        if weights is None:
            # An integer count is positive exactly when it is at least 1.
            return total / mask.sum().clamp(min=1).to(total.dtype)
        count = (weights * mask).sum().to(total.dtype)
        return total / torch.where(count > 0, count, torch.ones_like(count))

    def extra_repr(self):
        sigma = self.sigma.tolist()
        return (
            f"sigma={sigma}, center={self.center!r}, scale={self.scale!r}, "
            f"tail={self.tail!r}, statistics={self.statistics!r}, "
            f"reduction={self.reduction!r}"
        )


def _tensor(name, value):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")


def _floating(name, tensor):
    _tensor(name, tensor)
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {tensor.dtype}.")


def _shape_error(what, input, target):
    return ValueError(
        f"{what}: input shape {tuple(input.shape)} and target shape "
        f"{tuple(target.shape)} do not match."
    )


class ZErrorMSELoss(_ZErrorMixin, nn.MSELoss):
    """Mean squared error over the samples whose error is not a batch outlier.

    Within each batch, the chosen statistic of every sample is z-scored against
    the batch (per output column); samples beyond ``sigma`` standard
    deviations are left out of the loss and get exactly zero gradient.

    Parameters
    ----------
    sigma : float, default=2.0
        Inlier threshold in standard deviations (> 0; ``inf`` masks only
        non-finite values). Change it during training with :meth:`set_sigma`.
    statistic : {"residual", "loss", "target"}, default="residual"
        What is z-scored: the signed residual ``target - input`` (observed
        minus predicted, the note's text), the squared error, or the target
        itself (the note's code listing).
    center : {"mean", "median"}, default="mean"
        Batch location; ``"median"`` resists the outliers it should detect.
    scale : {"std", "mad"}, default="std"
        Batch spread; ``"mad"`` is the robust median absolute deviation.
    tail : {"both", "lower", "upper"}, default="both"
        Which side of the distribution is masked.
    statistics : {"batch", "running"}, default="batch"
        Statistics of the current batch (the note), or exponential running
        statistics across batches, for small batches.
    momentum : float, default=0.1
        Weight of the current batch in the running statistics.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides the inlier losses by the number of inliers;
        ``"none"`` returns the elementwise losses with outliers set to 0.
    check_input : bool, default=True
        Run the checks that need a host sync. The shape and dtype checks
        always run.

    Attributes
    ----------
    sigma : Tensor
        Buffer holding the current threshold.
    last_mask : BoolTensor or None
        Inlier mask of the last forward pass, shaped like the elementwise loss
        (the input's shape).
    last_scores : Tensor or None
        Signed z-scores of the last forward pass, of the same shape.

    Examples
    --------
    >>> import torch
    >>> from sk_zerror import ZErrorMSELoss
    >>> prediction = torch.zeros(6)
    >>> target = torch.tensor([0.1, -0.2, 0.0, 0.2, 9.0, -0.1])
    >>> loss = ZErrorMSELoss(sigma=1.5)
    >>> loss(prediction, target)
    tensor(0.0200)
    >>> loss.last_mask
    tensor([ True,  True,  True,  True, False,  True])
    """

    def __init__(
        self,
        sigma=2.0,
        *,
        statistic="residual",
        center="mean",
        scale="std",
        tail="both",
        statistics="batch",
        momentum=0.1,
        reduction="mean",
        check_input=True,
    ):
        super().__init__(reduction=reduction)
        _check_option("statistic", statistic, ("residual", "loss", "target"))
        self.statistic = statistic
        self._init_zerror(sigma, center, scale, tail, statistics, momentum, check_input)

    def forward(self, input, target):
        _floating("input", input)
        _tensor("target", target)
        if input.ndim not in (1, 2) or target.ndim not in (1, 2):
            raise _shape_error("ZErrorMSELoss needs 1-D or 2-D tensors", input, target)
        pred = input if input.ndim == 2 else input.unsqueeze(1)
        true = target if target.ndim == 2 else target.unsqueeze(1)
        if pred.shape != true.shape:
            raise _shape_error("ZErrorMSELoss", input, target)
        true = true.to(pred.dtype)
        if self.statistic == "residual":
            values = true - pred.detach()
        elif self.statistic == "loss":
            values = (true - pred.detach()) ** 2
        else:
            values = true
        mask, scores = self._inlier_mask(values, None, 1)
        shape = input.shape if input.ndim >= target.ndim else target.shape
        self._remember(mask, scores, shape)
        # Outliers are replaced by 0 on both sides before the loss: their
        # squared error is exactly (0 - 0)^2 = 0, and even a NaN or inf there
        # adds nothing to the loss or its gradient.
        elementwise = F.mse_loss(
            torch.where(mask, pred, 0.0), torch.where(mask, true, 0.0), reduction="none"
        )
        if self.reduction == "none":
            return elementwise.reshape(shape)
        return self._reduce(elementwise, mask)


class ZErrorBCEWithLogitsLoss(_ZErrorMixin, nn.BCEWithLogitsLoss):
    """Binary cross-entropy over the samples that are inliers of their class.

    The logits of each class (label 0 and label 1) are modelled by their own
    Gaussian within the batch; a sample whose logit lies more than ``sigma``
    standard deviations from its class centre is left out of the loss. The
    z-scored value is the given-class logit: the logit for label 1 and its
    negative for label 0, so a negative z-score means less confidence in the
    given label than the class's typical sample, and ``tail="lower"`` masks
    only those.

    Parameters
    ----------
    sigma : float or sequence of 2 floats, default=2.0
        Inlier threshold, shared or one per class (label 0, label 1).
    space : {"logit", "probability"}, default="logit"
        Where the class distributions are modelled: the logits (the note's
        preference) or the sigmoid probabilities of the given label.
    center, scale, tail, statistics, momentum, reduction, check_input
        As in :class:`ZErrorMSELoss`.
    weight : Tensor, default=None
        Rescaling weight per batch element, as in
        :class:`torch.nn.BCEWithLogitsLoss`.
    pos_weight : Tensor, default=None
        Weight of positive examples, as in :class:`torch.nn.BCEWithLogitsLoss`.

    Attributes
    ----------
    sigma, last_mask, last_scores
        As in :class:`ZErrorMSELoss`.

    Examples
    --------
    The note's toy batch:

    >>> import torch
    >>> from sk_zerror import ZErrorBCEWithLogitsLoss
    >>> logits = torch.tensor([2.5, 0.2, -1.1, 1.3, -2.0, 3.0])
    >>> labels = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    >>> round(ZErrorBCEWithLogitsLoss(sigma=1.1)(logits, labels).item(), 5)
    0.15655
    >>> round(ZErrorBCEWithLogitsLoss(sigma=1.3)(logits, labels).item(), 5)
    0.23015
    """

    def __init__(
        self,
        sigma=2.0,
        *,
        space="logit",
        center="mean",
        scale="std",
        tail="both",
        statistics="batch",
        momentum=0.1,
        reduction="mean",
        weight=None,
        pos_weight=None,
        check_input=True,
    ):
        super().__init__(weight=weight, reduction=reduction, pos_weight=pos_weight)
        _check_option("space", space, ("logit", "probability"))
        self.space = space
        self._init_zerror(sigma, center, scale, tail, statistics, momentum, check_input)

    def forward(self, input, target):
        _floating("input", input)
        _tensor("target", target)
        logits, labels = input.reshape(-1), target.reshape(-1)
        if input.ndim > 2 or (input.ndim == 2 and input.shape[1] != 1):
            raise _shape_error(
                "ZErrorBCEWithLogitsLoss needs one logit per sample", input, target
            )
        if labels.shape != logits.shape or target.ndim > 2:
            raise _shape_error("ZErrorBCEWithLogitsLoss", input, target)
        if labels.is_complex():
            raise TypeError(f"target must hold 0/1 labels, got dtype {labels.dtype}.")
        if self.check_input and bool(((labels != 0) & (labels != 1)).any()):
            raise ValueError("target must hold binary labels 0 and 1 only.")
        classes = labels.long()
        # Z-score the given-class logit (its negative for label 0), so that a
        # low z-score always means little confidence in the given label, as
        # in the cross-entropy loss. Negation is affine: the note's two-tailed
        # per-class masks are unchanged.
        values = torch.where(classes == 1, logits.detach(), -logits.detach())
        if self.space == "probability":
            values = torch.sigmoid(values)
        mask, scores = self._inlier_mask(values.unsqueeze(1), classes, 2)
        mask = mask.squeeze(1)
        self._remember(mask, scores, input.shape)
        labels = labels.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(
            torch.where(mask, logits, 0.0),
            torch.where(mask, labels, 0.0),
            weight=self.weight,
            pos_weight=self.pos_weight,
            reduction="none",
        )
        elementwise = torch.where(mask, bce, 0.0)
        if self.reduction == "none":
            return elementwise.reshape(input.shape)
        return self._reduce(elementwise, mask)


class ZErrorCrossEntropyLoss(_ZErrorMixin, nn.CrossEntropyLoss):
    """Cross-entropy over the samples that are inliers of their given class.

    The multi-class extension of the note's per-class Gaussians: for each class,
    the distribution of the given-class logit (or log-probability) of the
    samples labelled with it is modelled within the batch, and samples beyond
    ``sigma`` standard deviations are left out of the loss.

    Parameters
    ----------
    sigma : float or sequence of float, default=2.0
        Inlier threshold, shared or one per class.
    space : {"logit", "log_probability"}, default="logit"
        The given-class logit, or its log-softmax probability.
    center, scale, tail, statistics, momentum, reduction, check_input
        As in :class:`ZErrorMSELoss`.
    weight : Tensor of shape (n_classes,), default=None
        Class weights, as in :class:`torch.nn.CrossEntropyLoss`; the mean is
        then taken over the weights of the inliers.
    label_smoothing : float, default=0.0
        As in :class:`torch.nn.CrossEntropyLoss`.

    Attributes
    ----------
    sigma, last_mask, last_scores
        As in :class:`ZErrorMSELoss`.

    Examples
    --------
    >>> import torch
    >>> from sk_zerror import ZErrorCrossEntropyLoss
    >>> logits = torch.tensor([[3.0, 0.0], [2.5, 0.0], [2.8, 0.0], [-4.0, 0.0],
    ...                        [0.0, 2.0], [0.0, 2.2]])
    >>> labels = torch.tensor([0, 0, 0, 0, 1, 1])
    >>> loss = ZErrorCrossEntropyLoss(sigma=1.4)
    >>> value = loss(logits, labels)
    >>> loss.last_mask
    tensor([ True,  True,  True, False,  True,  True])
    """

    def __init__(
        self,
        sigma=2.0,
        *,
        space="logit",
        center="mean",
        scale="std",
        tail="both",
        statistics="batch",
        momentum=0.1,
        reduction="mean",
        weight=None,
        label_smoothing=0.0,
        check_input=True,
    ):
        super().__init__(
            weight=weight, reduction=reduction, label_smoothing=label_smoothing
        )
        _check_option("space", space, ("logit", "log_probability"))
        self.space = space
        self._init_zerror(sigma, center, scale, tail, statistics, momentum, check_input)

    def forward(self, input, target):
        _floating("input", input)
        _tensor("target", target)
        if (
            target.is_floating_point()
            or target.is_complex()
            or target.dtype == torch.bool
        ):
            raise TypeError(
                "ZErrorCrossEntropyLoss needs integer class indices as target, "
                f"got dtype {target.dtype}."
            )
        if input.ndim != 2 or target.shape != (input.shape[0],):
            raise _shape_error(
                "ZErrorCrossEntropyLoss needs input (n, n_classes) and target (n,)",
                input,
                target,
            )
        n_classes = input.shape[1]
        scores = input.detach()
        if self.space == "log_probability":
            scores = torch.log_softmax(scores, dim=1)
        groups, _ = _check_groups(
            target, target.shape[0], n_classes, input.device, self.check_input
        )
        given = scores.gather(1, groups.unsqueeze(1))
        # A non-finite logit of any class makes the row's loss non-finite, so
        # the row is an outlier whatever its given-class score. x - x is 0 for
        # a finite x and NaN otherwise: a row sum tells the finite rows apart
        # several times faster than isfinite(...).all(dim=1).
        row_finite = (scores - scores).sum(dim=1, keepdim=True) == 0
        given = torch.where(row_finite, given, torch.nan)
        mask, scores = self._inlier_mask(given, groups, n_classes)
        mask = mask.squeeze(1)
        self._remember(mask, scores, target.shape)
        # Outliers get an ignored label: their loss is then exactly 0, with or
        # without weights and label smoothing, with no masking of the result.
        # Their logits are replaced too, so that a non-finite one cannot put
        # NaN into the gradient.
        elementwise = F.cross_entropy(
            torch.where(mask.unsqueeze(1), input, 0.0),
            torch.where(mask, groups, IGNORED),
            weight=self.weight,
            label_smoothing=self.label_smoothing,
            reduction="none",
            ignore_index=IGNORED,
        )
        if self.reduction == "none":
            return elementwise
        weights = None if self.weight is None else self.weight[groups]
        return self._reduce(elementwise, mask, weights)
