"""Statistics of the global batch across data-parallel processes.

Under data parallelism each process sees a shard of the global batch; the
z-scores of a shard are the small-batch regime the technical note warns about
(its "Limitations"). As :class:`torch.nn.SyncBatchNorm` does for its
statistics, the Z-Error losses can exchange theirs so that every process
scores its rows against the whole batch:

- mean/std: one ``all_reduce`` of the per-group (weight, sum, sum of squares);
- median and MAD: one ``all_gather`` of the (value, group, weight) rows padded
  to the largest shard (padding weighs 0 and takes no part), then the exact
  statistics of the global batch on every process.
"""

import torch
import torch.distributed as dist

from ._zscore import zero_non_finite

SYNC_OPTIONS = ("auto", True, False)


class Synchronizer:
    """The collective operations of the masking core on one process group.

    ``group=None`` is the default group. It is kept as None rather than as
    the group object, which cannot be pickled: a loss keeps its last
    evaluation, synchroniser included, and a fitted estimator must pickle.
    """

    def __init__(self, group=None):
        self.group = group
        self.world_size = dist.get_world_size(group)

    def all_reduce(self, tensor):
        """The sum of ``tensor`` over the processes (in place)."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return tensor

    def all_gather_rows(self, values, weight, groups):
        """The rows of every process: values (n, d), weight (n, d), groups (n,)."""
        n, d = values.shape
        local = torch.tensor([n], dtype=torch.long, device=values.device)
        sizes = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(sizes, local, group=self.group)
        longest = int(torch.stack(sizes).max())
        if groups is None:
            groups = torch.zeros(n, dtype=torch.long, device=values.device)
        rows = torch.cat(
            [
                zero_non_finite(values),
                weight,
                groups.to(values.dtype).unsqueeze(1),
            ],
            1,
        )
        # Padding rows weigh 0: they take no part in any statistic.
        padded = rows.new_zeros((longest, 2 * d + 1))
        padded[:n] = rows
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded, group=self.group)
        everything = torch.cat(gathered, 0)
        return (
            everything[:, :d],
            everything[:, d : 2 * d],
            everything[:, 2 * d].long(),
        )


def synchronizer(sync_statistics, process_group=None):
    """The :class:`Synchronizer` to use, or None for per-process statistics.

    Parameters
    ----------
    sync_statistics : {"auto", True, False}
        ``"auto"`` synchronises when :mod:`torch.distributed` is initialised
        with more than one process in the group; ``True`` requires it.
    process_group : ProcessGroup, default=None
        The group to synchronise over; None is the default (world) group.
    """
    if sync_statistics is False:
        return None
    ready = dist.is_available() and dist.is_initialized()
    if not ready:
        if sync_statistics is True:
            raise RuntimeError(
                "sync_statistics=True needs torch.distributed to be initialised "
                "(torch.distributed.init_process_group); use 'auto' or False."
            )
        return None
    if dist.get_world_size(process_group) < 2:
        return None
    return Synchronizer(process_group)
