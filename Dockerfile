# syntax=docker/dockerfile:1
# The podworker worker image. Its default command is the worker in production mode: on RunPod the
# RUNPOD_* variables configure it, so the image deploys unchanged (docs/deploying.md).
#
#   docker build -t podworker .                                  CUDA, no model, handler "echo"
#   docker build --build-arg MODEL=smollm2 -t podworker:smollm2 .  + SmolLM2-135M, handler "textgen"
#   docker build --build-arg VARIANT=cpu -t podworker:cpu .      CPU only, on Debian slim
#
# The build stage runs scripts/docker-build-steps.sh, the same script CI runs outside Docker (CTest
# label "docker"), and scripts/check-dockerfile.sh checks this file's structure statically.
# Stages are chosen by name (build-${VARIANT}, image-${MODEL}); BuildKit builds only those needed.

# cuda | cpu
ARG VARIANT=cuda
# none | smollm2
ARG MODEL=none
# devel and runtime images of the same CUDA release. 12.8 is the first with Blackwell (sm_100,
# sm_120); RunPod hosts need a driver for CUDA >= 12.8 (set the endpoint's allowed CUDA versions).
ARG CUDA_VERSION=12.8.1

# ---------------------------------------------------------------------------------------------
# Build: compile, install into /opt/podworker, fetch the model when asked.
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build-cuda
FROM debian:bookworm-slim AS build-cpu

FROM build-${VARIANT} AS build
ARG VARIANT
ARG MODEL
# Real code for each supported GPU generation, plus PTX of the newest for GPUs after it.
ARG CUDA_ARCHITECTURES="80-real;86-real;89-real;90-real;100-real;120"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The package list alone first, so the toolchain layer is reused when only the sources change.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    bash scripts/docker-build-steps.sh --variant "${VARIANT}" --model "${MODEL}" \
      --cuda-architectures "${CUDA_ARCHITECTURES}" --build-dir /tmp/podworker-build \
      --prefix /opt/podworker

# ---------------------------------------------------------------------------------------------
# Runtime bases: the CUDA runtime image carries cudart and cuBLAS; both add libcurl (the worker's
# HTTP client), hiredis (the embedded endpoint's Redis store) and CA certificates (RunPod's API is
# HTTPS).
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS runtime-cuda
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4t64 libhiredis1.1.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM debian:bookworm-slim AS runtime-cpu
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM runtime-${VARIANT} AS runtime
RUN useradd --system --create-home --home-dir /home/podworker --uid 10001 --user-group podworker
COPY --from=build /opt/podworker/bin/worker /usr/local/bin/worker
# The CUDA backend module (empty directory in the cpu variant), found from the worker as ../lib/podworker.
COPY --from=build /opt/podworker/lib/podworker/ /usr/local/lib/podworker/
ENV PODWORKER_HANDLER=echo

# ---------------------------------------------------------------------------------------------
# The model, only when MODEL=smollm2.
FROM runtime AS image-none

FROM runtime AS image-smollm2
COPY --from=build /opt/podworker/models/ /opt/podworker/models/
# textgen streams tokens; aggregating them makes /runsync and /status return the chunks too.
ENV PODWORKER_HANDLER=textgen \
    PODWORKER_MODEL=/opt/podworker/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    PODWORKER_RETURN_AGGREGATE_STREAM=1

# ---------------------------------------------------------------------------------------------
FROM image-${MODEL} AS final
USER 10001:10001
# An empty working directory: started without RUNPOD_WEBHOOK_GET_JOB, the worker would run a
# ./test_input.json found here as a local test.
WORKDIR /home/podworker
ENTRYPOINT ["/usr/local/bin/worker"]
