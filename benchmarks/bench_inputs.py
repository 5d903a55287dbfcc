"""Inputs beyond dense tables: sparse matrices and memory-mapped Datasets.

Two measurements, each in a fresh process so that its memory is its own:

- ``sparse``: ZErrorRegressor on a sparse CSR table and on the same table
  made dense (same seed): largest difference of the predictions and of the
  outlier masks, fit times, and the most rows ever made dense at once.
- ``memmap``: ZErrorRegressor (one epoch, no retrain) on a torch Dataset
  over a memory-mapped float32 array of ``--rows`` x ``--features`` on disk:
  the peak of the process's anonymous memory (``RssAnon``, sampled every
  20 ms; the mapped file's pages are the kernel's page cache, not the
  process's) against the array's size.

Run ``python benchmarks/bench_inputs.py`` (``--quick`` for a smoke run); the
results print as Markdown.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _rss_anon_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """Samples RssAnon in a thread; ``peak`` in MiB."""

    def __enter__(self):
        self.peak, self._stop = _rss_anon_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_anon_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon_mb())


def run_sparse(rows, features, seed):
    from scipy import sparse

    from sk_zerror import ZErrorRegressor

    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(rows, features)) * (rng.random((rows, features)) < 0.05)
    y = dense[:, :10].sum(axis=1) + 0.1 * rng.normal(size=rows)
    y[: rows // 20] += 20
    csr = sparse.csr_matrix(dense)
    made_dense = []
    toarray = type(csr).toarray

    def spy(self, *args, **kwargs):
        made_dense.append(self.shape[0])
        return toarray(self, *args, **kwargs)

    type(csr).toarray = spy
    params = dict(max_epochs=20, random_state=seed)
    start = time.process_time()
    on_sparse = ZErrorRegressor(**params).fit(csr, y)
    sparse_time = time.process_time() - start
    pred_sparse = on_sparse.predict(csr)
    type(csr).toarray = toarray
    start = time.process_time()
    on_dense = ZErrorRegressor(**params).fit(dense, y)
    dense_time = time.process_time() - start
    return {
        "rows": rows,
        "features": features,
        "density": csr.nnz / (rows * features),
        "max_abs_prediction_difference": float(
            np.max(np.abs(pred_sparse - on_dense.predict(dense)))
        ),
        "masks_equal": bool((on_sparse.outlier_mask_ == on_dense.outlier_mask_).all()),
        "most_rows_made_dense_at_once": max(made_dense),
        "fit_cpu_s_sparse": sparse_time,
        "fit_cpu_s_dense": dense_time,
    }


def run_memmap(rows, features, seed):
    import torch
    from torch.utils.data import Dataset

    from sk_zerror import ZErrorRegressor

    class MemmapDataset(Dataset):
        def __init__(self, path, shape):
            self.data = np.load(path, mmap_mode="r")
            assert self.data.shape == shape

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            return torch.from_numpy(np.array(self.data[i]))

    class Linear(torch.nn.Module):
        def __init__(self, n_features):
            super().__init__()
            self.linear = torch.nn.Linear(n_features, 1)

        def forward(self, X):
            return self.linear(X)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "X.npy"
        array = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(rows, features)
        )
        rng = np.random.default_rng(seed)
        weights = rng.normal(size=features).astype(np.float32)
        y = np.empty(rows)
        for start in range(0, rows, 50_000):
            block = rng.normal(size=(min(50_000, rows - start), features))
            array[start : start + len(block)] = block
            y[start : start + len(block)] = block @ weights
        array.flush()
        del array
        dataset = MemmapDataset(path, (rows, features))
        size_mb = rows * features * 4 / 2**20
        before = _rss_anon_mb()
        start = time.perf_counter()
        with PeakMemory() as memory:
            reg = ZErrorRegressor(
                module=Linear,
                module__n_features=features,
                max_epochs=1,
                batch_size=4096,
                retrain_without_outliers=False,
                random_state=seed,
            ).fit(dataset, y)
        elapsed = time.perf_counter() - start
    return {
        "rows": rows,
        "features": features,
        "array_mb": size_mb,
        "anon_mb_before_fit": before,
        "anon_mb_peak_during_fit": memory.peak,
        "fit_wall_s": elapsed,
        "outlier_mask_rows": int(reg.outlier_mask_.shape[0]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=["sparse", "memmap"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        sizes = {
            "sparse": (2_000, 500) if args.quick else (20_000, 2_000),
            "memmap": (20_000, 64) if args.quick else (1_000_000, 256),
        }[args.part]
        run = run_sparse if args.part == "sparse" else run_memmap
        print(json.dumps(run(*sizes, args.seed)))
        return
    results = {}
    for part in ("sparse", "memmap"):
        command = [sys.executable, __file__, "--part", part, "--seed", str(args.seed)]
        out = subprocess.run(
            command + (["--quick"] if args.quick else []),
            capture_output=True,
            text=True,
            check=True,
        )
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
    import sklearn
    import torch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, {platform.processor() or 'cpu'}, "
        f"seed {args.seed}\n"
    )
    for part, values in results.items():
        print(f"| {part} | value |\n|---|---|")
        for key, value in values.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"| {key} | {shown} |")
        print()


if __name__ == "__main__":
    main()
