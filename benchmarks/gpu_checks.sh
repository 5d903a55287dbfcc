#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one prepared script (issue "Any
# network, any input"): the GPU tests (no host sync in the losses' training
# step, CUDA fits against CPU fits, mixed precision, pinned memory), the
# losses timed on the device against the plain torch losses, and the image
# benchmark's digits panel on the device (wall-clock times).
#
#     bash benchmarks/gpu_checks.sh            # results in benchmarks/results/gpu
#     OUT=/some/folder bash benchmarks/gpu_checks.sh
#
# About 10 minutes on one GPU; each step writes its output as it goes, so a
# run cut short keeps what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
python -m pytest tests/test_gpu.py -v -rs -p no:cacheprovider 2>&1 | tee "$OUT/test_gpu.txt"
python benchmarks/bench_losses.py --device cuda --repeats 7 \
    --out "$OUT/bench_losses.csv" 2>&1 | tee "$OUT/bench_losses.txt"
python benchmarks/bench_images.py --dataset digits --seeds 0 --device cuda \
    --cells symmetric:0.2 symmetric:0.4 instance:0.2 2>&1 | tee "$OUT/bench_images.txt"
