#!/usr/bin/env bash
# Runs the Dockerfile's build steps outside Docker (scripts/docker-build-steps.sh) for the variant
# this build can make, with the SmolLM2 model when scripts/fetch-model.sh already fetched it.
#   docker_build_steps_test.sh <source dir> <scratch dir> <cuda|cpu> <cuda architectures, comma-separated>
set -euo pipefail
source_dir=$1
scratch=$2
variant=$3
architectures=${4//,/;}

model=none
if compgen -G "$source_dir/models/*.gguf" >/dev/null; then model=smollm2; fi
rm -rf "$scratch/prefix"
exec bash "$source_dir/scripts/docker-build-steps.sh" --variant "$variant" --model "$model" \
  --cuda-architectures "$architectures" --build-dir "$scratch/build" --prefix "$scratch/prefix" \
  --jobs "$(nproc)"
