# syntax=docker/dockerfile:1
# The podworker worker image. Its default command is the worker in production mode: on RunPod the
# RUNPOD_* variables configure it, so the image deploys unchanged (docs/deploying.md).
#
#   docker build -t podworker .                                     CUDA, no model, handler "echo"
#   docker build --build-arg MODEL=smollm2 -t podworker:smollm2 .   + SmolLM2-135M, handler "textgen"
#   docker build --target cpu -t podworker:cpu .                    CPU only, on Debian slim
#   podman build --target cpu -t podworker:cpu .                    the same with podman / buildah
#
# The variant is the target stage (cuda, the last, is the default; cpu), and the podworker build
# stages are build-cuda and build-cpu (the template's Dockerfile builds FROM one). Every stage name
# is literal, never made from an ARG: buildah resolves `FROM build-${VARIANT}` only when the base
# image of every stage exists, so such a file builds under BuildKit alone. CI builds and runs the
# cpu target with podman (scripts/test-image.sh); scripts/check-dockerfile.sh checks the stages
# that cannot be built there (CUDA) statically.

# Empty (no model) or smollm2.
ARG MODEL=
# devel and runtime images of the same CUDA release. 12.8 is the first with Blackwell (sm_100,
# sm_120); RunPod hosts need a driver for CUDA >= 12.8 (set the endpoint's allowed CUDA versions).
ARG CUDA_VERSION=12.8.1

# ---------------------------------------------------------------------------------------------
# Build: compile, install into /opt/podworker, fetch the model when asked. The two build stages
# differ only in their base and --variant; scripts/docker-build-steps.sh does the work (and checks
# the installed tree against this file). The build tree is dropped: the objects are in the ccache
# mount, and the stage's image (which the template builds in) stays small.
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build-cuda
ARG MODEL
# Real code for each supported GPU generation, plus PTX of the newest for GPUs after it.
ARG CUDA_ARCHITECTURES="80-real;86-real;89-real;90-real;100-real;120"
WORKDIR /src
# The package list alone first, so the toolchain layer is reused when only the sources change.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    bash scripts/docker-build-steps.sh --variant cuda --model "${MODEL:-none}" \
      --cuda-architectures "${CUDA_ARCHITECTURES}" --build-dir /tmp/podworker-build \
      --prefix /opt/podworker \
 && rm -rf /tmp/podworker-build

FROM debian:bookworm-slim AS build-cpu
ARG MODEL
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    bash scripts/docker-build-steps.sh --variant cpu --model "${MODEL:-none}" \
      --build-dir /tmp/podworker-build --prefix /opt/podworker \
 && rm -rf /tmp/podworker-build

# ---------------------------------------------------------------------------------------------
# The images: the runtime base, libcurl (the worker's HTTP client), hiredis (the embedded
# endpoint's Redis store), CA certificates (RunPod's API is HTTPS), the worker, and the model
# directory (empty without MODEL). The CUDA runtime image adds cudart and cuBLAS.
# MODEL=smollm2 makes textgen the default handler; without it the handler is the worker's
# default, echo. textgen streams tokens; aggregating them makes /runsync and /status return the
# chunks too.
FROM debian:bookworm-slim AS cpu
ARG MODEL
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/podworker --uid 10001 --user-group podworker
COPY --from=build-cpu /opt/podworker/bin/worker /usr/local/bin/worker
# The CUDA backend module (an empty directory in the cpu image), found from the worker as ../lib/podworker.
COPY --from=build-cpu /opt/podworker/lib/podworker/ /usr/local/lib/podworker/
COPY --from=build-cpu /opt/podworker/models/ /opt/podworker/models/
ENV PODWORKER_HANDLER=${MODEL:+textgen} \
    PODWORKER_MODEL=${MODEL:+/opt/podworker/models/SmolLM2-135M-Instruct.Q4_1.gguf} \
    PODWORKER_RETURN_AGGREGATE_STREAM=${MODEL:+1}
USER 10001:10001
# An empty working directory: started without RUNPOD_WEBHOOK_GET_JOB, the worker would run a
# ./test_input.json found here as a local test.
WORKDIR /home/podworker
ENTRYPOINT ["/usr/local/bin/worker"]

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS cuda
ARG MODEL
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4t64 libhiredis1.1.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/podworker --uid 10001 --user-group podworker
COPY --from=build-cuda /opt/podworker/bin/worker /usr/local/bin/worker
# The CUDA backend module, opened only when a handler asks for CUDA (found as ../lib/podworker).
COPY --from=build-cuda /opt/podworker/lib/podworker/ /usr/local/lib/podworker/
COPY --from=build-cuda /opt/podworker/models/ /opt/podworker/models/
ENV PODWORKER_HANDLER=${MODEL:+textgen} \
    PODWORKER_MODEL=${MODEL:+/opt/podworker/models/SmolLM2-135M-Instruct.Q4_1.gguf} \
    PODWORKER_RETURN_AGGREGATE_STREAM=${MODEL:+1}
USER 10001:10001
WORKDIR /home/podworker
ENTRYPOINT ["/usr/local/bin/worker"]
