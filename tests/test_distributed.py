"""Synchronised statistics: 2 processes x B/2 rows give the answers of 1 x B.

Two processes on the gloo backend (CPU, 127.0.0.1 only) are spawned once for
the whole module; each evaluates every case on its shard of the same global
batch and writes what it saw to a file. The parent process computes the same
cases on the whole batch, without :mod:`torch.distributed`, and compares:
masks exactly, z-scores, the reduced loss and the gradients to rounding.

The reduced loss of a rank is ``world * (its inlier losses) / (global inlier
weight)`` (``_ZErrorMixin.reduce``), so that the gradients averaged by
DistributedDataParallel are the single-process ones: the mean over the ranks
of the reduced losses is the single-process loss, each rank's input
gradients are ``world`` times the single-process gradients of its rows, and
the rank-averaged parameter gradients equal the single-process ones.
"""

import os
import pickle

import numpy as np
import pytest
import torch
import torch.distributed as dist
from numpy.testing import assert_allclose, assert_array_equal

from sk_zerror import (
    ZErrorBCEWithLogitsLoss,
    ZErrorCrossEntropyLoss,
    ZErrorMSELoss,
    zscore_mask,
)
from sk_zerror._distributed import synchronizer

LOOPBACK = "127.0.0.1"
WORLD = 2
N_ROWS, N_FEATURES, N_CLASSES = 128, 5, 3
# Rows of rank 0 (the rest go to rank 1): even, uneven (37 + 91) and empty
# shards.
SPLITS = {"even": 64, "uneven": 37, "empty": 0}
# Statistics in float64 (exchanged as such) of float32 logits, which a
# matrix product of another number of rows may round differently; the loss
# and gradients are float32, summed in another order across processes.
RUNNING_RTOL, RUNNING_ATOL = 1e-6, 1e-7
SCORE_RTOL, SCORE_ATOL = 1e-5, 1e-5
LOSS_RTOL = 1e-5
GRAD_RTOL, GRAD_ATOL = 1e-5, 1e-7
# Training steps of the running-statistics cases (then one in eval mode).
RUNNING_STEPS = 3

LOSSES = {
    "mse": (ZErrorMSELoss, 2),
    "bce": (ZErrorBCEWithLogitsLoss, 1),
    "ce": (ZErrorCrossEntropyLoss, N_CLASSES),
}
STATISTICS = {
    "mean_std": dict(center="mean", scale="std"),
    "median_mad": dict(center="median", scale="mad"),
    "running_mean_std": dict(center="mean", scale="std", window="running"),
    "running_median_mad": dict(center="median", scale="mad", window="running"),
}


def _cases():
    for loss in LOSSES:
        for stats in STATISTICS:
            for split in SPLITS:
                for weighted in (False, True):
                    yield (loss, stats, split, weighted, "auto")
    # Per-process statistics on purpose.
    for loss in LOSSES:
        yield (loss, "mean_std", "uneven", False, False)


CASES = list(_cases())


def _batch(loss, step):
    """The global batch of one step: features, targets, weights, a layer."""
    generator = torch.Generator().manual_seed(1000 * step + 7)
    X = torch.randn(N_ROWS, N_FEATURES, generator=generator)
    n_outputs = LOSSES[loss][1]
    if loss == "mse":
        y = X[:, :2] * 1.5 + 0.3 * torch.randn(N_ROWS, 2, generator=generator)
        # Gross errors, to be masked.
        y[::11] += 8.0 * torch.randn(len(y[::11]), 2, generator=generator)
    elif loss == "bce":
        y = (X[:, 0] + 0.5 * torch.randn(N_ROWS, generator=generator) > 0).float()
        y[::9] = 1 - y[::9]
        y = y.unsqueeze(1)
    else:
        y = torch.randint(0, N_CLASSES, (N_ROWS,), generator=generator)
    weights = torch.rand(N_ROWS, generator=generator) * 2 + 0.25
    layer = torch.nn.Linear(N_FEATURES, n_outputs)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))
    return X, y, weights, layer


def _run_case(case, rows):
    """Evaluate one case on ``rows`` of every step: what the process saw."""
    loss, stats, _, weighted, sync = case
    cls, _ = LOSSES[loss]
    criterion = cls(sigma=1.5, sync_statistics=sync, **STATISTICS[stats])
    running = STATISTICS[stats].get("window") == "running"
    steps = []
    for step in range(RUNNING_STEPS + 1 if running else 1):
        criterion.train(not running or step < RUNNING_STEPS)
        X, y, weights, layer = _batch(loss, step)
        logits = layer(X[rows])
        logits.retain_grad()
        output = criterion.evaluate(
            logits, y[rows], weights[rows] if weighted else None
        )
        reduced = criterion.reduce(output)
        reduced.backward()
        steps.append(
            dict(
                mask=output.mask.numpy(),
                scores=output.scores.detach().numpy(),
                loss=reduced.item(),
                input_grad=logits.grad.numpy(),
                weight_grad=layer.weight.grad.clone(),
                bias_grad=layer.bias.grad.clone(),
            )
        )
    running_stats = None
    if running:
        running_stats = (
            criterion.running_center.numpy(),
            criterion.running_scale.numpy(),
        )
    return steps, running_stats


def _shard(case, rank):
    start = SPLITS[case[2]]
    return slice(0, start) if rank == 0 else slice(start, N_ROWS)


def _worker(rank, port, outdir):
    """One process: join the gloo group, run every case, save the results."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = LOOPBACK
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        results = {}
        for case in CASES:
            steps, running_stats = _run_case(case, _shard(case, rank))
            for step in steps:
                # What DistributedDataParallel does to the parameter gradients.
                for key in ("weight_grad", "bias_grad"):
                    dist.all_reduce(step[key])
                    step[key] = (step[key] / WORLD).numpy()
            results[case] = (steps, running_stats)
        results["sync_is_none_when_false"] = synchronizer(False) is None
        # A loss keeps its last evaluation, synchroniser included: a fitted
        # estimator holding it must still pickle.
        criterion = ZErrorMSELoss()
        criterion(torch.zeros(4), torch.arange(4.0) + rank)
        results["synchronised_loss"] = pickle.dumps(criterion)
        results["world_size"] = synchronizer("auto").world_size
        torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(spawn_ranks):
    """The results of both processes, from one spawn for the whole module."""
    return spawn_ranks(_worker, "distributed", WORLD)


def _case_id(case):
    loss, stats, split, weighted, sync = case
    return f"{loss}-{stats}-{split}-{'weighted' if weighted else 'unweighted'}"


SYNCED = [case for case in CASES if case[4] == "auto"]
UNSYNCED = [case for case in CASES if case[4] is False]


def test_synchronizer_found_the_group(ranks):
    for result in ranks:
        assert result["world_size"] == WORLD
        assert result["sync_is_none_when_false"]


def test_synchronised_loss_pickles(ranks):
    # Residuals 0..3 on rank 0 and 1..4 on rank 1, z-scored on all eight.
    residuals = torch.cat([torch.arange(4.0) + rank for rank in range(WORLD)])
    _, expected = zscore_mask(residuals, return_scores=True)
    for rank, result in enumerate(ranks):
        loss = pickle.loads(result["synchronised_loss"])
        assert loss.last_scores is not None
        assert_allclose(
            loss.last_scores.numpy(), expected[4 * rank : 4 * rank + 4].numpy()
        )


@pytest.mark.parametrize("case", SYNCED, ids=_case_id)
def test_two_ranks_equal_one_process(ranks, case):
    reference, reference_running = _run_case(case, slice(None))
    per_rank = [result[case] for result in ranks]
    shards = [_shard(case, rank) for rank in range(WORLD)]
    for step, expected in enumerate(reference):
        got = [steps[step] for steps, _ in per_rank]
        mask = np.concatenate([g["mask"] for g in got])
        assert_array_equal(mask, expected["mask"])
        assert (~mask).any(), "the case should mask some rows"
        scores = np.concatenate([g["scores"] for g in got])
        assert_allclose(scores, expected["scores"], rtol=SCORE_RTOL, atol=SCORE_ATOL)
        mean_loss = np.mean([g["loss"] for g in got])
        assert_allclose(mean_loss, expected["loss"], rtol=LOSS_RTOL)
        for g, rows in zip(got, shards, strict=True):
            assert_allclose(
                g["input_grad"] / WORLD,
                expected["input_grad"][rows],
                rtol=GRAD_RTOL,
                atol=GRAD_ATOL,
            )
            for key in ("weight_grad", "bias_grad"):
                assert_allclose(
                    g[key], expected[key].numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL
                )
    if reference_running is not None:
        for _, running in per_rank:
            for got, expected in zip(running, reference_running, strict=True):
                assert_allclose(got, expected, rtol=RUNNING_RTOL, atol=RUNNING_ATOL)


@pytest.mark.parametrize("case", UNSYNCED, ids=_case_id)
def test_sync_false_gives_per_rank_statistics(ranks, case):
    reference, _ = _run_case(case, slice(None))
    scores = []
    for rank, result in enumerate(ranks):
        steps, _ = result[case]
        alone, _ = _run_case(case, _shard(case, rank))
        assert_array_equal(steps[0]["mask"], alone[0]["mask"])
        assert_allclose(steps[0]["scores"], alone[0]["scores"], rtol=1e-6, atol=1e-6)
        # No global denominator, no world-size scaling: the shard's own mean.
        assert_allclose(steps[0]["loss"], alone[0]["loss"], rtol=LOSS_RTOL)
        scores.append(steps[0]["scores"])
    # Per-rank statistics are not those of the global batch.
    difference = np.abs(np.concatenate(scores) - reference[0]["scores"]).max()
    assert difference > 1e-2


def test_sync_true_without_process_group_is_an_error():
    assert not dist.is_initialized()
    loss = ZErrorMSELoss(sync_statistics=True)
    with pytest.raises(RuntimeError, match="sync_statistics=True needs"):
        loss(torch.zeros(4), torch.arange(4.0))
