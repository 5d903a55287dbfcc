import importlib
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def _seed():
    """Seed torch and numpy so every test sees the same random data."""
    torch.manual_seed(0)
    # The global generator, on purpose: it is what unseeded library code uses.
    np.random.seed(0)  # noqa: NPY002


@pytest.fixture(scope="session")
def import_benchmark():
    """Import a module of ``benchmarks/`` by name (it is not a package)."""

    def load(name):
        sys.path.insert(0, str(BENCHMARKS))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(BENCHMARKS))

    return load


@pytest.fixture
def run_benchmark():
    """Run ``benchmarks/<script> *args`` in a subprocess; fail with its stderr."""

    def run(script, *args, timeout):
        result = subprocess.run(
            [sys.executable, str(BENCHMARKS / script), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stderr
        return result

    return run


def free_port():
    """A free TCP port on 127.0.0.1, the only address the tests may use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def spawn_ranks(tmp_path_factory):
    """Run ``worker(rank, port, outdir)`` in ``world`` spawned processes.

    Each process saves its results to ``outdir/rank{rank}.pt``; the list of
    them, in rank order, is returned.
    """

    def spawn(worker, name, world):
        outdir = tmp_path_factory.mktemp(name)
        mp.start_processes(
            worker,
            args=(free_port(), str(outdir)),
            nprocs=world,
            join=True,
            start_method="spawn",
        )
        return [
            torch.load(outdir / f"rank{rank}.pt", weights_only=False)
            for rank in range(world)
        ]

    return spawn


@pytest.fixture
def make_net():
    """A small ZErrorNet (Linear 2 -> 1, batch 8) with an OutlierLedger."""
    from sk_zerror import ZErrorMSELoss
    from sk_zerror._ledger import OutlierLedger
    from sk_zerror._network import BatchDataset, ZErrorNet, collate_batch

    def make(n_rows=8, max_epochs=1, predictions=None, **kwargs):
        net = ZErrorNet(
            torch.nn.Linear(2, 1),
            criterion=ZErrorMSELoss(sigma=1.0),
            max_epochs=max_epochs,
            batch_size=8,
            train_split=None,
            verbose=0,
            callbacks=[("ledger", OutlierLedger(n_rows, predictions=predictions))],
            dataset=BatchDataset,
            iterator_train__collate_fn=collate_batch,
            **kwargs,
        )
        return net.initialize()

    return make


@pytest.fixture
def frame():
    """A small table for the audit: x and y = 2 x plus a little noise."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    return pd.DataFrame({"x": x, "y": 2 * x + 0.1 * rng.normal(size=200)})
