"""On a CUDA GPU: no host sync in the loss's fast path, fits that match the CPU.

Skipped where no CUDA device is available (every CI machine). Run them on a
GPU with ``benchmarks/gpu_checks.sh``, which also times the losses and the
image benchmark there.
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from sk_zerror import (
    ZErrorBCEWithLogitsLoss,
    ZErrorClassifier,
    ZErrorCrossEntropyLoss,
    ZErrorMSELoss,
    ZErrorRegressor,
)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda)"
)


@pytest.fixture
def no_host_sync():
    """Make any host-device synchronisation an error, as CUDA reports it."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _batches(n=256, n_classes=5):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(n, n_classes, generator=generator)
    labels = torch.randint(n_classes, (n,), generator=generator)
    binary = torch.randint(2, (n, 1), generator=generator).float()
    target = torch.randn(n, 1, generator=generator)
    weight = torch.rand(n, generator=generator) + 0.5
    return logits, labels, binary, target, weight


@pytest.mark.parametrize("center, scale", [("mean", "std"), ("median", "mad")])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_losses_train_a_step_without_a_host_sync(
    no_host_sync, center, scale, weighted
):
    logits, labels, binary, target, weight = (t.cuda() for t in _batches())
    weight = weight if weighted else None
    cases = [
        (ZErrorCrossEntropyLoss, logits, labels),
        (ZErrorBCEWithLogitsLoss, logits[:, :1], binary),
        (ZErrorMSELoss, logits[:, :1], target),
    ]
    for loss_class, values, truth in cases:
        criterion = loss_class(
            sigma=2.0, center=center, scale=scale, check_input=False
        ).cuda()
        values = values.detach().clone().requires_grad_()
        output = criterion.evaluate(values, truth, sample_weight=weight)
        criterion.reduce(output).backward()
        assert output.loss.is_cuda and output.mask.is_cuda
        assert output.scores.dtype == torch.float64
        assert values.grad is not None and values.grad.is_cuda


def _regression_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=600)
    y[:12] += 30.0
    return X, y


def test_a_cuda_fit_matches_the_cpu_fit():
    X, y = _regression_data()
    kwargs = dict(max_epochs=20, random_state=0)
    gpu = ZErrorRegressor(device="cuda", **kwargs).fit(X, y)
    cpu = ZErrorRegressor(device="cpu", **kwargs).fit(X, y)
    assert gpu.outlier_mask_[:12].all() and cpu.outlier_mask_[:12].all()
    assert np.mean(gpu.outlier_mask_ == cpu.outlier_mask_) >= 0.99
    # Kernels differ between devices (float32 reductions), not the method.
    assert_allclose(gpu.predict(X), cpu.predict(X), atol=0.05 * np.std(y))


def test_mixed_precision_keeps_float32_outputs_and_statistics():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = ZErrorClassifier(
        device="cuda", mixed_precision=True, max_epochs=10, random_state=0
    ).fit(X, y)
    with torch.no_grad():
        outputs = clf.net_.infer(torch.as_tensor(X, device="cuda"))
    # The forward runs in bfloat16; the loss and its statistics get float32.
    assert outputs.dtype == torch.float32
    assert np.isfinite(clf.predict_proba(X)).all()
    assert np.isfinite(clf.outlier_scores_).all()
    assert clf.score(X, y) > 0.9


def test_pinned_memory_gives_the_same_fit():
    X, y = _regression_data()
    kwargs = dict(device="cuda", max_epochs=5, random_state=0)
    pinned = ZErrorRegressor(iterator_train__pin_memory=True, **kwargs).fit(X, y)
    plain = ZErrorRegressor(**kwargs).fit(X, y)
    assert_allclose(pinned.predict(X), plain.predict(X), rtol=1e-5, atol=1e-5)
    assert np.array_equal(pinned.outlier_mask_, plain.outlier_mask_)
