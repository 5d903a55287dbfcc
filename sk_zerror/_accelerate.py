"""Data-parallel training of :class:`~sk_zerror._network.ZErrorNet` on accelerate.

skorch's :class:`skorch.hf.AccelerateMixin` prepares the module, optimizer
and data loaders with an ``accelerate.Accelerator``, so the same estimator
runs in one process or under ``accelerate launch`` / ``torchrun``. What a
Z-Error net needs on top of it:

- the criterion is not prepared: accelerate would wrap it in
  DistributedDataParallel, which refuses a module without parameters (the
  losses hold only buffers), and the losses synchronise their statistics
  themselves (``sync_statistics``);
- only the training batches are sharded. The shuffled order is drawn from
  torch's random stream in every process alike, as one process draws it;
  accelerate pads the last steps of an epoch with rows already seen, so
  that every process runs the same number of steps, and the padded rows are
  dropped (by their training-row index) before they reach the statistics,
  the loss or the ledger. Validation and prediction take the whole set in
  every process;
- each process's :class:`~sk_zerror._ledger.OutlierLedger` counts its own
  shard: at the end of every epoch its counts are summed over the processes
  (:meth:`~sk_zerror._ledger.OutlierLedger.combine_processes`);
- the history records the loss of the whole batch, and its batch records
  are exchanged (:class:`skorch.history.DistributedHistory`): the same
  history, and so the same early stopping, in every process;
- the epoch table is printed by the main process only, and only at
  ``verbose > 0``.

After training the net is unwrapped and predicts on its own, in any process
(also after pickling into a process without :mod:`torch.distributed`).
accelerate itself is never imported here: the accelerator comes from the
user, so the core install does not need it.
"""

import itertools
from collections.abc import Mapping

import torch
import torch.distributed as dist
from skorch.callbacks import EarlyStopping
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.history import DistributedHistory
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present
from torch.utils.data import BatchSampler, RandomSampler, Sampler

from ._ledger import OutlierLedger
from ._network import ROW, ZErrorNet

# One key prefix per history in the process group's store; every process
# fits the same sequence of nets, so the counters agree across processes.
_HISTORIES = itertools.count()


def _world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _device_name(device):
    """``"cpu"`` for any CPU device (accelerate says ``cpu:0``, which torch
    cannot restore a pickled tensor to), else the device's own name."""
    device = torch.device(device)
    return "cpu" if device.type == "cpu" else str(device)


def _no_print(*args, **kwargs):
    """The epoch-table sink at ``verbose=0``."""


class _FirstOccurrences:
    """Keep, across the processes, each training row once per pass.

    One ``all_gather`` of the batch's row indices per step: a row is kept on
    the first process (in rank order) that holds it in the first step of the
    pass that holds it; later copies are the padding of an uneven last step.
    """

    def __init__(self, world_size):
        self.world_size = world_size
        self.seen = None

    def keep(self, rows):
        rows = rows.reshape(-1).long()
        size = torch.tensor([rows.numel()], device=rows.device)
        sizes = [torch.empty_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        sizes = torch.cat(sizes).tolist()
        padded = rows.new_full((max(sizes),), -1)
        padded[: rows.numel()] = rows
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded)
        everything = torch.cat([g[:n] for g, n in zip(gathered, sizes, strict=True)])
        n_rows = int(everything.max()) + 1 if everything.numel() else 0
        if self.seen is None or self.seen.numel() < n_rows:
            grown = torch.zeros(n_rows, dtype=torch.bool, device=rows.device)
            if self.seen is not None:
                grown[: self.seen.numel()] = self.seen
            self.seen = grown
        position = torch.arange(everything.numel(), device=rows.device)
        first = torch.full((n_rows,), everything.numel(), device=rows.device)
        first = first.scatter_reduce(0, everything, position, reduce="amin")
        kept = (first[everything] == position) & ~self.seen[everything]
        self.seen[everything] = True
        start = sum(sizes[: dist.get_rank()])
        return kept[start : start + rows.numel()]


class _FreshOrderEachPass(Sampler):
    """A random sampler without a ``generator`` attribute, for accelerate.

    Given a shuffling sampler with a generator, accelerate draws its order
    from that generator, seeded once per fit and broadcast from the first
    process. Without one it leaves the sampler alone, which then draws each
    epoch's order from torch's random stream as in a single process: the
    processes share that stream (same seed, same draws), so they agree on
    the order, and ``k`` processes with ``batch_size`` rows train on the
    very batches one process with ``k * batch_size`` rows would.
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        return iter(self.sampler)


def _select(data, keep):
    if isinstance(data, Mapping):
        return {key: _select(value, keep) for key, value in data.items()}
    if isinstance(data, torch.Tensor) and data.ndim and len(data) == len(keep):
        return data[keep]
    return data


class _Deduplicated:
    """A prepared data loader whose padded duplicate rows are dropped."""

    def __init__(self, loader, world_size):
        self.loader = loader
        self.world_size = world_size

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        first = _FirstOccurrences(self.world_size)
        for batch in self.loader:
            X, y = unpack_data(batch)
            if not (isinstance(X, Mapping) and ROW in X):
                yield batch
                continue
            keep = first.keep(torch.as_tensor(X[ROW]))
            if bool(keep.all()):
                yield batch
            else:
                yield _select(X, keep), _select(y, keep)


class AcceleratedZErrorNet(AccelerateMixin, ZErrorNet):
    """A :class:`~sk_zerror._network.ZErrorNet` trained through accelerate.

    Built by the estimators when their ``accelerator`` is set; see the module
    docstring for what it adds to :class:`skorch.hf.AccelerateMixin`.
    """

    def _validate_params(self):
        # The mixin wants device=None when accelerate places the tensors; the
        # estimators pass the accelerator's own device instead, which the
        # ledger and the unwrapped net need.
        super(AccelerateMixin, self)._validate_params()
        if _device_name(self.device) != _device_name(self.accelerator.device):
            raise ValueError(
                f"device={self.device!r} differs from the accelerator's device "
                f"{self.accelerator.device}."
            )

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        # Modules and optimizers only: never the parameterless criterion.
        with self._current_init_context("module"):
            for name in self._modules:
                module = getattr(self, name + "_")
                if isinstance(module, torch.nn.Module):
                    setattr(self, name + "_", self.accelerator.prepare(module))
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))
        self._wrapped_with_accelerator = True
        return self

    def _unwrap_accelerator(self):
        wrapped = self._wrapped_with_accelerator
        super()._unwrap_accelerator()
        if not wrapped:
            return
        # The mixin unwraps the modules only; a prepared optimizer holds the
        # process group, which cannot be pickled.
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            setattr(self, name + "_", getattr(optimizer, "optimizer", optimizer))
        # Early stopping kept the best weights of the wrapped module (keys
        # "module.*"); it loads them after this unwrapping, into the module.
        for _, callback in self.callbacks_:
            weights = getattr(callback, "best_model_weights_", None)
            if isinstance(callback, EarlyStopping) and weights is not None:
                consume_prefix_in_state_dict_if_present(weights, "module.")

    def initialize_history(self):
        world = _world_size()
        if world < 2:
            return super().initialize_history()
        # skorch's own pattern for the store: a distinct prefix per history,
        # on the store the process group was initialised with.
        store = dist.PrefixStore(
            f"sk_zerror/history/{next(_HISTORIES)}",
            dist.distributed_c10d._get_default_store(),
        )
        self.history_ = DistributedHistory(
            store=store, rank=dist.get_rank(), world_size=world
        )
        return self

    def get_iterator(self, dataset, training=False):
        world = _world_size()
        if not training and self._wrapped_with_accelerator and world > 1:
            # Validation (and prediction) during training: every process
            # takes the whole set in batches of the global size, so the
            # validation loss and scores are those of one process with
            # ``world * batch_size`` rows, the same in every process (at the
            # price of repeating that work).
            kwargs = self.get_params_for("iterator_valid")
            size = kwargs.get("batch_size", self.batch_size)
            kwargs["batch_size"] = len(dataset) if size == -1 else size * world
            return self.iterator_valid(dataset, **kwargs)
        loader = ZErrorNet.get_iterator(self, dataset, training=training)
        if not (training and self._wrapped_with_accelerator):
            # After training: a plain, local loader in whichever process.
            return loader
        config = getattr(self.accelerator, "dataloader_config", None)
        if (
            isinstance(loader.sampler, RandomSampler)
            and loader.sampler.generator is None
            and isinstance(loader.batch_sampler, BatchSampler)
            and not getattr(config, "use_seedable_sampler", False)
        ):
            loader.batch_sampler.sampler = _FreshOrderEachPass(loader.sampler)
        iterator = self.accelerator.prepare(loader)
        return iterator if world < 2 else _Deduplicated(iterator, world)

    def evaluation_step(self, batch, training=False):
        # The whole set in every process (get_iterator): nothing to gather.
        return ZErrorNet.evaluation_step(self, batch, training=training)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with self.accelerator.autocast():
            y_pred = self.infer(Xi, **fit_params)
            output = self.evaluate_loss(y_pred, yi, X=Xi)
            loss = self.criterion_.reduce(output)
        self.accelerator.backward(loss)
        # A process whose rows of the last step were all padding still takes
        # part in the step (the collectives), with nothing for the ledger.
        zerror = output if output.mask.numel() else None
        reported = loss.detach()
        world = _world_size()
        if world > 1:
            # The mean of the processes' losses is the loss of the whole
            # batch: the history records that, as one process would.
            reported = reported.clone()
            dist.all_reduce(reported)
            reported = reported / world
        return {"loss": reported, "y_pred": y_pred, "zerror": zerror}

    def _ledgers(self):
        return [cb for _, cb in self.callbacks_ if isinstance(cb, OutlierLedger)]

    def on_epoch_end(self, net, **kwargs):
        # Runs before the callbacks' own: the ledgers then record the epoch's
        # masked fraction of the whole batch, the same in every process.
        if _world_size() > 1 and self._wrapped_with_accelerator:
            for ledger in self._ledgers():
                ledger.combine_processes(self.accelerator.device)
        return super().on_epoch_end(net, **kwargs)


def accelerated_net_options(accelerator, verbose):
    """The net class and the keyword arguments that train through ``accelerator``.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
    verbose : int
        The estimator's verbosity: the epoch table is printed by the main
        process only, and not at all at 0.

    Returns
    -------
    net_class : type
    options : dict
        ``accelerator``, ``device`` and the print sink.
    """
    return AcceleratedZErrorNet, dict(
        accelerator=accelerator,
        device=_device_name(accelerator.device),
        callbacks__print_log__sink=accelerator.print if verbose else _no_print,
    )
