# syntax=docker/dockerfile:1
#
# The ccrelay worker image: Ollama + the ccrelay handler, for RunPod serverless (queue mode, the
# default) or any GPU host (HTTP mode: `--http`, or CCRELAY_WORKER_MODE=http).
#
# The model is NOT baked in. At boot the worker looks for it on the network volume
# (OLLAMA_MODELS=/runpod-volume/ollama) and pulls it there once, under a lock, when it is missing.
# See docs/deploy.md.
#
#   docker build -t ghcr.io/you/ccrelay-worker:0.1.0 .
#   docker run --gpus all -v ollama:/runpod-volume -p 8000:8000 ghcr.io/you/ccrelay-worker:0.1.0 --http
#
# Layers go from the least to the most often changed: system packages, Ollama, Python
# dependencies, then our code (a code change rebuilds only the last two small layers).

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# The current Ollama release (v0.40.1, 2026-10-07). tests/fakes/ollama/releases.py holds what its
# OpenAI route sends, which the handler's tests are run against.
ARG OLLAMA_VERSION=0.40.1
ARG TARGETARCH=amd64

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# 1. System packages (zstd: Ollama's release tarballs are zstd-compressed since v0.14.0).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl zstd \
    && rm -rf /var/lib/apt/lists/*

# 2. Ollama from its pinned release tarball: bin/ollama, lib/ollama/llama-server and the bundled
#    CUDA runtime libraries (the NVIDIA driver comes from the host through the container
#    toolkit). The asset is ollama-linux-<arch>.tar.zst (.tgz before v0.14.0), checked against
#    the release's sha256sum.txt and unpacked as Ollama's scripts/install.sh does
#    (zstd -d | tar -xf - -C <prefix>).
RUN cd /tmp \
    && base="https://github.com/ollama/ollama/releases/download/v${OLLAMA_VERSION}" \
    && asset="ollama-linux-${TARGETARCH}.tar.zst" \
    && curl -fsSL --retry 3 "${base}/${asset}" -o "${asset}" \
    && curl -fsSL --retry 3 "${base}/sha256sum.txt" -o sha256sum.txt \
    && grep -E "  (\./)?${asset}\$" sha256sum.txt | sha256sum -c - \
    && zstd -d < "${asset}" | tar -xf - -C /usr \
    && rm "${asset}" sha256sum.txt \
    && test -x /usr/bin/ollama \
    && test -x /usr/lib/ollama/llama-server

WORKDIR /app

# 3. Python dependencies only: the worker's list from pyproject.toml (the `worker` extra), so
#    this layer is rebuilt when the dependencies change, not when our code does.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['worker']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 4. Our code: the worker side only (handler/ holds ccrelay_handler and the shared ccrelay_wire;
#    worker/ holds ccrelay_worker). Nothing of the client (client/, config/) is in the image.
COPY handler ./handler
COPY worker ./worker
ENV PYTHONPATH=/app/handler:/app/worker

# Defaults; serverless.yml's `env` (or `docker run -e`) overrides any of them.
#   OLLAMA_MODELS       the model store: on the network volume, pulled once for all workers
#   OLLAMA_HOST         Ollama stays on loopback; the handler / HTTP mode are the public faces
#   OLLAMA_NOPRUNE      a starting worker must not prune blobs another worker is pulling
#   OLLAMA_KEEP_ALIVE   keep the model loaded while the worker lives (-1: forever)
# Not set here: OLLAMA_CONTEXT_LENGTH, OLLAMA_NUM_PARALLEL, OLLAMA_KV_CACHE_TYPE and
# OLLAMA_FLASH_ATTENTION. The worker picks them for the GPU it finds (nvidia-smi, or
# CCRELAY_GPU_MEMORY_GB) from the table in docs/engine-sizing.md; any of them set wins.
ENV OLLAMA_MODELS=/runpod-volume/ollama \
    OLLAMA_HOST=127.0.0.1:11434 \
    OLLAMA_NOPRUNE=1 \
    OLLAMA_KEEP_ALIVE=-1 \
    OLLAMA_MAX_LOADED_MODELS=1 \
    CCRELAY_MODEL=qwen3-coder:30b \
    CCRELAY_VOLUME_ROOT=/runpod-volume \
    CCRELAY_HTTP_PORT=8000

EXPOSE 8000

# Ollama answers on loopback and, in HTTP mode, GET /health answers 200. The first boot on an
# empty volume pulls ~19 GB, hence the long start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30m --retries=3 \
    CMD ["python", "-m", "ccrelay_worker.healthcheck"]

ENTRYPOINT ["python", "-m", "ccrelay_worker"]
CMD []
