import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Seed torch and numpy so every test sees the same random data."""
    torch.manual_seed(0)
    # The global generator, on purpose: it is what unseeded library code uses.
    np.random.seed(0)  # noqa: NPY002
