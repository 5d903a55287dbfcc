#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one prepared script (issue "Any
# network, any input"): the GPU tests (no host sync in the losses' training
# step, CUDA fits against CPU fits, mixed precision, pinned memory), the
# losses timed on the device against the plain torch losses, and the image
# benchmark's digits panel on the device (wall-clock times).
#
#     bash benchmarks/gpu_checks.sh        # benchmarks/results/gpu-<UTC time>
#     OUT=/new/folder bash benchmarks/gpu_checks.sh
#
# About 10 minutes on one GPU; each step writes its output as it goes, so a
# run cut short keeps what it measured. The results go to a folder that this
# run creates: an existing one is refused, so nothing is overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "gpu_checks.sh: no CUDA device (or no torch) in this Python" >&2
    exit 2
fi
OUT=${OUT:-benchmarks/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$OUT")"
if ! mkdir "$OUT" 2>/dev/null; then
    echo "gpu_checks.sh: $OUT already exists; give a new folder as OUT=..." >&2
    exit 2
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
python -m pytest tests/test_gpu.py -v -rs -p no:cacheprovider 2>&1 | tee "$OUT/test_gpu.txt"
python benchmarks/bench_losses.py --device cuda --repeats 7 \
    --out "$OUT/bench_losses.csv" 2>&1 | tee "$OUT/bench_losses.txt"
python benchmarks/bench_images.py --dataset digits --seeds 0 --device cuda \
    --cells symmetric:0.2 symmetric:0.4 instance:0.2 2>&1 | tee "$OUT/bench_images.txt"
