#!/usr/bin/env bash
# The GPU benchmarks in one command, on a machine with an NVIDIA GPU (sm_80 or newer), the
# CUDA 13 toolkit and this project's set-up (tools/setup.sh). The tests and benchmarks are
# estimated at under ten minutes on one H100-class GPU and 16 cores (not yet run on a GPU);
# the build in step 1 comes on top, and from scratch, compiling every CUDA kernel, it may
# take longer than the rest:
#
#     bash tools/bench/gpu.sh [OUT_DIR]
#
# 1. builds the tools and the [cuda] tests (Release, CUDA required: a build that dropped
# it stops at configure time), 2. runs the [cuda] tests (ctest's five cuda_ families, one
# process each, with CADENZA_REQUIRE_GPU=1: a missing GPU fails instead of skipping; 2
# where nvidia-smi lists two or more GPUs, so that the two-GPU cases, which skip on a
# one-GPU machine, must run there) and
# gpu_selfcheck, both to the end, and stops there if either failed, 3. times the training step of the headline CRNN and the 2-D CNN on
# cadenza's CPU and CUDA backends next to PyTorch (tools/bench/train.py), in fp32, tf32
# and bf16, 4. times both models' CUDA step replayed as a CUDA graph and op by op
# (train.capture_graph true / false), 5. times the mel front-end next to torchaudio, with
# the GPU kernels' achieved memory bandwidth next to the device's (tools/bench/frontend.py).
# Every table and the machine's description land in OUT_DIR (default bench-gpu-<time>) for docs/PERFORMANCE.md
# and docs/GPU_VALIDATION.md. PYTHON picks the interpreter; a torch built with CUDA gives
# the PyTorch GPU column (Debian's python3-torch has none, and the column then says so).
# One round per row (train.py --rounds 1) keeps the tests and benchmarks within those ten
# minutes; rerun a row with more rounds where a figure looks disturbed. PYTHON must have
# torch, torchaudio and PyYAML (checked before anything is built).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench-gpu-$(date +%Y%m%d-%H%M%S)}
python=${PYTHON:-python3}
# The PyTorch columns need these; say so now rather than after the build and the tests.
if ! missing=$("$python" -c '
import importlib.util
print(" ".join(m for m in ("torch", "torchaudio", "yaml") if importlib.util.find_spec(m) is None))' 2>/dev/null); then
  echo "gpu.sh: PYTHON=$python does not run; set PYTHON= to an interpreter with torch, torchaudio and PyYAML" >&2
  exit 2
elif [ -n "$missing" ]; then
  echo "gpu.sh: PYTHON=$python has no $missing (tools/bench/train.py needs them); set PYTHON= to an interpreter with torch, torchaudio and PyYAML" >&2
  exit 2
fi
mkdir -p "$out"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCADENZA_CUDA=ON > "$out/cmake.txt"
cmake --build build --target gpu_selfcheck bench_train bench_frontend cadenza_cuda_tests > "$out/build.txt"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  nproc
  git rev-parse --short HEAD 2>/dev/null || echo "(not a git checkout)"
} | tee "$out/machine.txt"
failed=0
gpus=$(nvidia-smi --list-gpus 2>/dev/null | grep -c '^GPU' || true)
CADENZA_REQUIRE_GPU=$([ "${gpus:-0}" -ge 2 ] && echo 2 || echo 1) \
  ctest --test-dir build -R '^cuda_' --output-on-failure 2>&1 | tee "$out/cuda_tests.txt" || failed=1
./build/gpu_selfcheck 2>&1 | tee "$out/selfcheck.txt" || failed=1
if [ "$failed" != 0 ]; then
  echo "gpu.sh: the [cuda] tests or the self-check failed (see $out/); no benchmarks run" >&2
  exit 1
fi
for precision in fp32 tf32 bf16; do
  "$python" tools/bench/train.py --cuda --precision "$precision" --rounds 1 --bench-train build/bench_train \
    --json "$out/train-$precision.json" $([ "$precision" != fp32 ] && echo --no-cpu) |
    tee "$out/train-$precision.txt"
done
for config in configs/mtat_top10_crnn.yaml configs/gtzan_cnn2d.yaml; do
  for graph in true false; do
    echo "== $config, train.capture_graph=$graph"
    ./build/bench_train --config "$config" --device cuda --set "train.capture_graph=$graph"
  done
done | tee "$out/graph.txt"
"$python" tools/bench/frontend.py --cuda --bench-frontend build/bench_frontend --json "$out/frontend.json" |
  tee "$out/frontend.txt"
echo "results in $out/"
