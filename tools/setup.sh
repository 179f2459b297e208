#!/usr/bin/env bash
# Installs the Debian packages cadenza builds against. Idempotent and non-interactive:
# when everything is present it prints nothing and installs nothing.
# The CUDA toolkit (nvcc, cuDNN, cuBLAS, cuFFT, NCCL) is not a Debian package here; CMake
# finds it under /usr/local/cuda when it is installed and builds the CPU backend otherwise.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libyaml-cpp-dev      # config parsing
  nlohmann-json3-dev   # metrics.jsonl, safetensors headers, fixtures
  catch2               # tests (v2)
  libfftw3-dev         # the CPU front-end's FFT
  libopenblas-openmp-dev  # the CPU backend's GEMM, on the OpenMP thread pool
  libsndfile1-dev      # audio decoding
  libsoxr-dev          # resampling
  librubberband-dev    # time-stretching and pitch-shifting (3.x, for the R3 engine)
  libopenmpi-dev openmpi-bin  # multi-process launch
  libxxhash-dev        # checkpoint checksums
  libplplot-dev        # report charts
  plplot-driver-cairo  # PLplot's pngcairo device, which writes the PNGs
  chromium-headless-shell  # the report test renders the HTML report headless
  fonts-dejavu-core    # the fonts the charts are drawn with
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
