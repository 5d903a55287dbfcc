"""Z-Error losses: torch losses that leave batch outliers out of the mean.

Each loss owns what it z-scores (the residual, the given-class logit...) and
returns, through :meth:`evaluate`, the elementwise loss, the inlier mask and
the z-scores together; ``forward`` is that evaluation reduced. The rule
itself (statistics -> z-scores -> mask) is the masking core's,
:func:`sk_zerror._zscore.masked_zscores`.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._distributed import SYNC_OPTIONS, synchronizer
from ._zscore import (
    CENTERS,
    SCALES,
    TAILS,
    GroupStatistics,
    check_groups,
    check_option,
    check_weights,
    known_finite,
    masked_zscores,
    rounding_eps,
    sigma_tensor,
    usable_groups,
)

__all__ = [
    "ZErrorBCEWithLogitsLoss",
    "ZErrorCrossEntropyLoss",
    "ZErrorMSELoss",
    "ZErrorOutput",
]

REDUCTIONS = ("mean", "sum", "none")
WINDOWS = ("batch", "running")
REGRESSION_VALUES = ("residual", "loss", "target")
BINARY_SPACES = ("logit", "probability")
MULTICLASS_SPACES = ("logit", "log_probability")
# Label of the outliers in the cross-entropy; the real labels are checked to
# lie in [0, n_classes) (or index the logits), so it never meets one of them.
IGNORED = -100


class ZErrorOutput(NamedTuple):
    """One batch's evaluation by a Z-Error loss (:meth:`evaluate`).

    Attributes
    ----------
    loss : Tensor
        Elementwise loss, shaped like the per-sample loss: 0 for the outliers,
        sample (and class) weights applied.
    mask : BoolTensor
        True for the inliers, of the same shape.
    scores : Tensor
        Signed z-score of each element's z-scored value, of the same shape
        (float64, the precision of the statistics).
    count : Tensor
        0-d: the total weight of the inliers, the denominator of the mean.
    sync : object or None
        The data-parallel synchronisation in force for this batch.
    """

    loss: torch.Tensor
    mask: torch.Tensor
    scores: torch.Tensor
    count: torch.Tensor
    sync: object = None


class _ZErrorMixin:
    """What the three Z-Error losses share.

    The inlier threshold lives in the ``sigma`` buffer, so a schedule can change
    it in place (:meth:`set_sigma`) without rebuilding the criterion or the
    optimizer. With ``window="running"`` the per-group centre and scale are
    exponential moving averages across training batches (buffers
    ``running_center``, ``running_scale``, ``running_seen``), updated only in
    training mode, like :class:`torch.nn.BatchNorm1d`.
    """

    def _init_zerror(
        self, sigma, center, scale, tail, window, momentum, sync, group, check
    ):
        check_option("center", center, CENTERS)
        check_option("scale", scale, SCALES)
        check_option("tail", tail, TAILS)
        check_option("window", window, WINDOWS)
        check_option("reduction", self.reduction, REDUCTIONS)
        if sync not in SYNC_OPTIONS or not isinstance(sync, str | bool):
            raise ValueError(
                f"sync_statistics must be one of {SYNC_OPTIONS}, got {sync!r}."
            )
        if isinstance(momentum, bool) or not 0.0 < float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}.")
        self.center = center
        self.scale = scale
        self.tail = tail
        self.window = window
        self.momentum = float(momentum)
        self.sync_statistics = sync
        self.process_group = group
        self.check_input = bool(check)
        self.register_buffer("sigma", sigma_tensor(sigma))
        self.register_buffer("running_center", None)
        self.register_buffer("running_scale", None)
        self.register_buffer("running_seen", None)
        self._last = None

    # -- the threshold and the running statistics ----------------------------

    def set_sigma(self, sigma):
        """Set the inlier threshold in place, keeping the buffer's shape.

        Parameters
        ----------
        sigma : float or sequence of float
            New threshold (> 0, ``inf`` allowed), of the shape given at
            construction (a scalar, or one value per group).
        """
        new = sigma_tensor(sigma, device=self.sigma.device)
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

    def _running(self, batch, eps):
        """Fold this batch's statistics into the running ones and return those."""
        usable = usable_groups(batch, eps)
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
        # A group seen once has usable running statistics from then on.
        count = torch.where(self.running_seen, 2.0, 0.0).to(batch.count.dtype)
        return GroupStatistics(
            self.running_center.to(batch.center.dtype),
            self.running_scale.to(batch.scale.dtype),
            count,
        )

    # -- scoring and reduction -----------------------------------------------

    def _score(self, values, groups, n_groups, weights, all_finite):
        """The masking core on this batch's z-scored ``values`` (n, d)."""
        if self.sigma.ndim == 1 and self.sigma.shape[0] != n_groups:
            raise ValueError(
                f"sigma holds {self.sigma.shape[0]} values but there are "
                f"{n_groups} classes."
            )
        sync = synchronizer(self.sync_statistics, self.process_group)
        result = masked_zscores(
            values,
            groups,
            n_groups,
            self.sigma,
            center=self.center,
            scale=self.scale,
            tail=self.tail,
            weights=weights,
            eps=rounding_eps(values.dtype),
            all_finite=all_finite,
            sync=sync,
            running=self._running if self.window == "running" else None,
        )
        return result, sync

    def _sample_weight(self, sample_weight, n_samples, device):
        if sample_weight is None:
            return None
        return check_weights(sample_weight, n_samples, device, self.check_input)

    def _output(self, elementwise, result, sync, weights, shape, row_weight=None):
        """The :class:`ZErrorOutput` of an elementwise loss with outliers at 0."""
        mask = result.mask if elementwise.ndim == 2 else result.mask.squeeze(1)
        if row_weight is not None and weights is not None:
            row_weight = row_weight * weights
        elif weights is not None:
            row_weight = weights
        if weights is not None:
            w = weights.to(elementwise.dtype)
            elementwise = elementwise * (w if elementwise.ndim == 1 else w[:, None])
        if row_weight is None:
            count = mask.sum(dtype=elementwise.dtype)
        else:
            w = row_weight.to(elementwise.dtype)
            count = (mask * (w if mask.ndim == 1 else w[:, None])).sum()
        output = ZErrorOutput(
            elementwise.reshape(shape),
            mask.reshape(shape),
            result.scores.reshape(shape),
            count,
            sync,
        )
        # Past nn.Module.__setattr__, which costs more than a small kernel.
        self.__dict__["_last"] = output
        return output

    def reduce(self, output):
        """Reduce an :meth:`evaluate` output as ``reduction`` says.

        ``"mean"`` divides the inlier losses by the inliers' total weight; an
        all-masked batch gives 0 with zero, finite gradients. Under
        synchronised statistics the denominator is the global one and the
        result is scaled by the number of processes, so that after
        :class:`~torch.nn.parallel.DistributedDataParallel` averages the
        gradients they equal the single-process gradients on the whole batch.
        """
        if self.reduction == "none":
            return output.loss
        total = output.loss.sum()
        world = 1 if output.sync is None else output.sync.world_size
        if self.reduction == "sum":
            return total * world if world > 1 else total
        count = output.count
        if output.sync is not None:
            count = output.sync.all_reduce(count.detach().clone()) / world
        # Without inliers the total is 0, and so is the loss, with zero gradients.
        return total / count.clamp(min=torch.finfo(count.dtype).tiny)

    def forward(self, input, target, sample_weight=None):
        """The reduced loss: ``reduce(evaluate(input, target, sample_weight))``."""
        return self.reduce(self.evaluate(input, target, sample_weight))

    @property
    def last_mask(self):
        """Inlier mask of the last evaluated batch, or None (a convenience)."""
        return None if self._last is None else self._last.mask

    @property
    def last_scores(self):
        """Z-scores of the last evaluated batch, or None (a convenience)."""
        return None if self._last is None else self._last.scores

    def extra_repr(self):
        if hasattr(self, "zscore_of"):
            what = f"zscore_of={self.zscore_of!r}"
        else:
            what = f"space={self.space!r}"
        return (
            f"sigma={self.sigma.tolist()}, {what}, center={self.center!r}, "
            f"scale={self.scale!r}, tail={self.tail!r}, window={self.window!r}, "
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

    Within each batch, the chosen value of every sample (by default its
    residual) is z-scored against the batch (per output column); samples
    beyond ``sigma`` standard deviations are left out of the loss and get
    exactly zero gradient.

    Parameters
    ----------
    sigma : float, default=2.0
        Inlier threshold in standard deviations (> 0; ``inf`` masks only
        non-finite values). Change it during training with :meth:`set_sigma`.
    zscore_of : {"residual", "loss", "target"}, default="residual"
        What is z-scored: the signed residual ``target - input`` (observed
        minus predicted, the note's text), the squared error, or the target
        itself (the note's code listing).
    center : {"mean", "median"}, default="mean"
        Batch location; ``"median"`` resists the outliers it should detect.
    scale : {"std", "mad"}, default="std"
        Batch spread; ``"mad"`` is the robust median absolute deviation.
    tail : {"both", "lower", "upper"}, default="both"
        Which side of the distribution is masked.
    window : {"batch", "running"}, default="batch"
        Where the statistics come from: the current batch (the note), or
        exponential running statistics across training batches, for small
        batches.
    momentum : float, default=0.1
        Weight of the current batch in the running statistics.
    sync_statistics : {"auto", True, False}, default="auto"
        Under data parallelism, compute the statistics of the global batch
        across the processes (as :class:`torch.nn.SyncBatchNorm` does):
        ``"auto"`` when :mod:`torch.distributed` is initialised with more
        than one process, ``True`` always (an error when it is not), ``False``
        never (per-process statistics).
    process_group : ProcessGroup, default=None
        The processes to synchronise over; None is the whole world.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides the inlier losses by the inliers' total weight;
        ``"none"`` returns the elementwise losses with outliers set to 0.
    check_input : bool, default=True
        Run the checks that need a host sync (sample weights >= 0). The shape
        and dtype checks always run.

    Attributes
    ----------
    sigma : Tensor
        Buffer holding the current threshold.
    last_mask : BoolTensor or None
        Inlier mask of the last evaluated batch, shaped like the elementwise
        loss (the input's shape).
    last_scores : Tensor or None
        Signed z-scores of the last evaluated batch, of the same shape.

    See Also
    --------
    sk_zerror.zscore_mask : The masking rule on its own.
    sk_zerror.ZErrorRegressor : A scikit-learn regressor trained with it.

    Notes
    -----
    ``forward(input, target, sample_weight=None)`` takes optional per-sample
    weights: they weigh the loss and enter the batch statistics as
    frequencies (a sample of weight 2 counts as two samples in the mean,
    standard deviation, median and MAD). :meth:`evaluate` returns the
    elementwise loss, the mask and the z-scores together
    (:class:`ZErrorOutput`); :meth:`reduce` turns that into the loss.

    Examples
    --------
    >>> import torch
    >>> from sk_zerror import ZErrorMSELoss
    >>> prediction = torch.zeros(6)
    >>> target = torch.tensor([0.1, -0.2, 0.0, 0.2, 9.0, -0.1])
    >>> loss = ZErrorMSELoss(sigma=1.5)
    >>> loss(prediction, target)
    tensor(0.0200)
    >>> loss.evaluate(prediction, target).mask
    tensor([ True,  True,  True,  True, False,  True])
    """

    def __init__(
        self,
        sigma=2.0,
        *,
        zscore_of="residual",
        center="mean",
        scale="std",
        tail="both",
        window="batch",
        momentum=0.1,
        sync_statistics="auto",
        process_group=None,
        reduction="mean",
        check_input=True,
    ):
        super().__init__(reduction=reduction)
        check_option("zscore_of", zscore_of, REGRESSION_VALUES)
        self.zscore_of = zscore_of
        self._init_zerror(
            sigma,
            center,
            scale,
            tail,
            window,
            momentum,
            sync_statistics,
            process_group,
            check_input,
        )

    def evaluate(self, input, target, sample_weight=None):
        """Elementwise loss, inlier mask and z-scores of one batch.

        Parameters
        ----------
        input : Tensor of shape (n,) or (n, n_outputs)
            Predictions.
        target : Tensor of the same number of elements
            Observed targets.
        sample_weight : Tensor of shape (n,), default=None
            Per-sample weights (>= 0).

        Returns
        -------
        ZErrorOutput
        """
        _floating("input", input)
        _tensor("target", target)
        if input.ndim not in (1, 2) or target.ndim not in (1, 2):
            raise _shape_error("ZErrorMSELoss needs 1-D or 2-D tensors", input, target)
        pred = input if input.ndim == 2 else input.unsqueeze(1)
        true = target if target.ndim == 2 else target.unsqueeze(1)
        if pred.shape != true.shape:
            raise _shape_error("ZErrorMSELoss", input, target)
        true = true.to(pred.dtype)
        detached = pred.detach()
        if self.zscore_of == "residual":
            values = true - detached
            finite = known_finite(values)
        elif self.zscore_of == "loss":
            values = (true - detached) ** 2
            finite = known_finite(values)
        else:
            finite = known_finite(true, detached)
            values = true
            if not finite:
                # A non-finite prediction is an outlier whatever its target.
                values = torch.where(torch.isfinite(detached), true, torch.nan)
        weights = self._sample_weight(sample_weight, pred.shape[0], pred.device)
        result, sync = self._score(values, None, 1, weights, finite)
        mask = result.mask
        if finite:
            elementwise = F.mse_loss(pred, true, reduction="none") * mask
        else:
            # Outliers are replaced by 0 on both sides before the loss: their
            # squared error is exactly (0 - 0)^2 = 0, and even a NaN or inf
            # there adds nothing to the loss or its gradient.
            elementwise = F.mse_loss(
                torch.where(mask, pred, 0.0),
                torch.where(mask, true, 0.0),
                reduction="none",
            )
        shape = input.shape if input.ndim >= target.ndim else target.shape
        return self._output(elementwise, result, sync, weights, shape)

    def unmasked_loss(self, input, target):
        """Mean squared error of every element: nothing masked, no statistics.

        What the estimators' nets record as a hold-out's ``valid_loss``.

        Parameters
        ----------
        input : Tensor of shape (n,) or (n, n_outputs)
            Predictions.
        target : Tensor of the same number of elements
            Observed targets.

        Returns
        -------
        loss : Tensor of shape ()
        """
        pred = input.reshape(input.shape[0], -1)
        return F.mse_loss(pred, target.reshape(pred.shape).to(pred.dtype))


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
    center, scale, tail, window, momentum, sync_statistics, process_group
        As in :class:`ZErrorMSELoss`.
    reduction, check_input
        As in :class:`ZErrorMSELoss`; ``check_input`` also checks that the
        labels are 0 or 1.
    weight : Tensor, default=None
        Rescaling weight per batch element, as in
        :class:`torch.nn.BCEWithLogitsLoss`.
    pos_weight : Tensor, default=None
        Weight of positive examples, as in :class:`torch.nn.BCEWithLogitsLoss`.

    Attributes
    ----------
    sigma, last_mask, last_scores
        As in :class:`ZErrorMSELoss`.

    See Also
    --------
    ZErrorCrossEntropyLoss : The multi-class loss.

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
        window="batch",
        momentum=0.1,
        sync_statistics="auto",
        process_group=None,
        reduction="mean",
        weight=None,
        pos_weight=None,
        check_input=True,
    ):
        super().__init__(weight=weight, reduction=reduction, pos_weight=pos_weight)
        check_option("space", space, BINARY_SPACES)
        self.space = space
        self._init_zerror(
            sigma,
            center,
            scale,
            tail,
            window,
            momentum,
            sync_statistics,
            process_group,
            check_input,
        )

    def evaluate(self, input, target, sample_weight=None):
        """Elementwise loss, inlier mask and z-scores of one batch.

        Parameters
        ----------
        input : Tensor of shape (n,) or (n, 1)
            Logits.
        target : Tensor of the same shape
            Labels 0 and 1.
        sample_weight : Tensor of shape (n,), default=None
            Per-sample weights (>= 0).

        Returns
        -------
        ZErrorOutput
        """
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
        detached = logits.detach()
        finite = known_finite(detached)
        # Z-score the given-class logit (its negative for label 0), so that a
        # low z-score always means little confidence in the given label, as
        # in the cross-entropy loss. Negation is affine: the note's two-tailed
        # per-class masks are unchanged.
        values = torch.where(classes == 1, detached, -detached)
        if self.space == "probability":
            values = torch.sigmoid(values)
            if not finite:
                # An infinite logit has a finite probability but a loss that
                # cannot be learnt from: it is an outlier in either space.
                values = torch.where(torch.isfinite(detached), values, torch.nan)
        weights = self._sample_weight(sample_weight, logits.shape[0], logits.device)
        result, sync = self._score(values.unsqueeze(1), classes, 2, weights, finite)
        mask = result.mask.squeeze(1)
        labels = labels.to(logits.dtype)
        if finite:
            elementwise = mask * F.binary_cross_entropy_with_logits(
                logits,
                labels,
                weight=self.weight,
                pos_weight=self.pos_weight,
                reduction="none",
            )
        else:
            bce = F.binary_cross_entropy_with_logits(
                torch.where(mask, logits, 0.0),
                torch.where(mask, labels, 0.0),
                weight=self.weight,
                pos_weight=self.pos_weight,
                reduction="none",
            )
            elementwise = torch.where(mask, bce, 0.0)
        return self._output(elementwise, result, sync, weights, input.shape)

    def unmasked_loss(self, input, target):
        """Binary cross-entropy of every row: nothing masked, no statistics.

        What the estimators' nets record as a hold-out's ``valid_loss``.

        Parameters
        ----------
        input : Tensor of shape (n,) or (n, 1)
            Logits.
        target : Tensor of the same shape
            Labels 0 and 1.

        Returns
        -------
        loss : Tensor of shape ()
        """
        logits = input.reshape(-1)
        return F.binary_cross_entropy_with_logits(
            logits,
            target.reshape(-1).to(logits.dtype),
            weight=self.weight,
            pos_weight=self.pos_weight,
        )


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
    center, scale, tail, window, momentum, sync_statistics, process_group
        As in :class:`ZErrorMSELoss`.
    reduction, check_input
        As in :class:`ZErrorMSELoss`; ``check_input`` also checks that the
        labels index the logits.
    weight : Tensor of shape (n_classes,), default=None
        Class weights, as in :class:`torch.nn.CrossEntropyLoss`; the mean is
        then taken over the weights of the inliers.
    label_smoothing : float, default=0.0
        As in :class:`torch.nn.CrossEntropyLoss`.

    Attributes
    ----------
    sigma, last_mask, last_scores
        As in :class:`ZErrorMSELoss`.

    See Also
    --------
    ZErrorBCEWithLogitsLoss : The binary loss.

    Notes
    -----
    A row with a non-finite logit in any class is an outlier whatever its
    given-class score: its loss could not be learnt from.

    Examples
    --------
    >>> import torch
    >>> from sk_zerror import ZErrorCrossEntropyLoss
    >>> logits = torch.tensor([[3.0, 0.0], [2.5, 0.0], [2.8, 0.0], [-4.0, 0.0],
    ...                        [0.0, 2.0], [0.0, 2.2]])
    >>> labels = torch.tensor([0, 0, 0, 0, 1, 1])
    >>> loss = ZErrorCrossEntropyLoss(sigma=1.4)
    >>> loss.evaluate(logits, labels).mask
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
        window="batch",
        momentum=0.1,
        sync_statistics="auto",
        process_group=None,
        reduction="mean",
        weight=None,
        label_smoothing=0.0,
        check_input=True,
    ):
        super().__init__(
            weight=weight, reduction=reduction, label_smoothing=label_smoothing
        )
        check_option("space", space, MULTICLASS_SPACES)
        self.space = space
        self._init_zerror(
            sigma,
            center,
            scale,
            tail,
            window,
            momentum,
            sync_statistics,
            process_group,
            check_input,
        )

    def evaluate(self, input, target, sample_weight=None):
        """Elementwise loss, inlier mask and z-scores of one batch.

        Parameters
        ----------
        input : Tensor of shape (n, n_classes)
            Logits.
        target : Tensor of shape (n,)
            Integer class indices.
        sample_weight : Tensor of shape (n,), default=None
            Per-sample weights (>= 0).

        Returns
        -------
        ZErrorOutput
        """
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
        n, n_classes = input.shape
        groups, _ = check_groups(target, n, n_classes, input.device, self.check_input)
        detached = input.detach()
        finite = known_finite(detached)
        scores = detached
        if self.space == "log_probability":
            scores = torch.log_softmax(scores, dim=1)
        given = scores.gather(1, groups.unsqueeze(1))
        if not finite:
            # A non-finite logit of any class makes the row an outlier. x - x
            # is 0 for a finite x and NaN otherwise: a row sum tells the
            # finite rows apart faster than isfinite(...).all(dim=1).
            row_finite = (scores - scores).sum(dim=1, keepdim=True) == 0
            given = torch.where(row_finite, given, torch.nan)
        weights = self._sample_weight(sample_weight, n, input.device)
        result, sync = self._score(given, groups, n_classes, weights, finite)
        mask = result.mask.squeeze(1)
        # Outliers get an ignored label: their loss is then exactly 0, with or
        # without weights and label smoothing. With non-finite input their
        # logits are replaced too, so that a NaN cannot enter the gradient.
        logits = input if finite else torch.where(mask.unsqueeze(1), input, 0.0)
        elementwise = F.cross_entropy(
            logits,
            torch.where(mask, groups, IGNORED),
            weight=self.weight,
            label_smoothing=self.label_smoothing,
            reduction="none",
            ignore_index=IGNORED,
        )
        class_weight = None if self.weight is None else self.weight[groups]
        return self._output(elementwise, result, sync, weights, (n,), class_weight)

    def unmasked_loss(self, input, target):
        """Cross-entropy of every row: nothing masked, no statistics.

        What the estimators' nets record as a hold-out's ``valid_loss``.

        Parameters
        ----------
        input : Tensor of shape (n, n_classes)
            Logits.
        target : Tensor of shape (n,)
            Integer class indices.

        Returns
        -------
        loss : Tensor of shape ()
        """
        return F.cross_entropy(
            input,
            target.long(),
            weight=self.weight,
            label_smoothing=self.label_smoothing,
        )
