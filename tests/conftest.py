import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def _seed():
    """Seed torch and numpy so every test sees the same random data."""
    torch.manual_seed(0)
    # The global generator, on purpose: it is what unseeded library code uses.
    np.random.seed(0)  # noqa: NPY002


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
