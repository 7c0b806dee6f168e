#!/usr/bin/env bash
# Installs every Debian package podworker's build, tests and benchmarks need.
# Idempotent: apt-get skips what is already installed, pip does the same.
#   scripts/setup.sh               everything (a development or CI machine)
#   scripts/setup.sh --build-only  what building and installing podworker needs (the Dockerfile's
#                                  build stages; python3-pip fetches the model for MODEL=smollm2)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

build_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libcurl4-openssl-dev libssl-dev rapidjson-dev doctest-dev libboost-dev ccache
  libhiredis-dev libjemalloc-dev python3 python3-pip
)
packages=(
  "${build_packages[@]}"
  redis-server nginx python3-venv
  # CI's image phase (scripts/test-image.sh): a Debian base made by debootstrap, the images built
  # and run by podman, no daemon needed.
  podman debootstrap
  # The fuzz targets (scripts/fuzz.sh): clang, and libclang-rt-14-dev for libFuzzer and clang's
  # sanitizer runtimes; llvm-14 brings llvm-symbolizer for readable crash stacks.
  clang libclang-rt-14-dev llvm-14
  # The dashboard's browser test (tests/compat/test_dashboard.py): headless Chromium and its driver.
  chromium chromium-driver
)

if [ "${1:-}" = --build-only ]; then packages=("${build_packages[@]}"); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
