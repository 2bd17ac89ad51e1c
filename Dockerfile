# syntax=docker/dockerfile:1
# The data-flywheel image: the `flywheel` CLI, running `flywheel worker` by default.
#
#   docker build -t data-flywheel:0.1.0 .
#   # with the `local` platform (torch, transformers, peft) for GPU workers:
#   docker build -t data-flywheel:0.1.0-cuda --build-arg EXTRAS=local \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
#   # the same on CPU only (a much smaller torch):
#   docker build -t data-flywheel:0.1.0-local --build-arg EXTRAS=local .
#   # an s3:// or gs:// artifact store needs its fsspec driver:
#   docker build -t data-flywheel:0.1.0 --build-arg EXTRA_PACKAGES="s3fs" .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with the project and its runtime dependencies ---------------
FROM ${PYTHON_IMAGE} AS build
# Optional extras of the project, comma-separated (e.g. "local").
ARG EXTRAS=""
# Where torch comes from when EXTRAS has `local`: a CPU or a CUDA build of PyTorch.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# A pip version specifier for torch, e.g. "==2.7.1" (default: the newest).
ARG TORCH_VERSION=""
# More pip packages to install, e.g. "s3fs gcsfs".
ARG EXTRA_PACKAGES=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY flywheel ./flywheel
# torch first, from the chosen index, so the project's requirement finds it satisfied.
RUN set -eux; \
    pip install --upgrade pip; \
    case ",${EXTRAS}," in \
        *,local,*) pip install --index-url "${TORCH_INDEX_URL}" "torch${TORCH_VERSION}" ;; \
    esac; \
    pip install "/src${EXTRAS:+[${EXTRAS}]}" ${EXTRA_PACKAGES}; \
    flywheel --help > /dev/null; \
    temporal --version

# --- runtime: the environment only, as a non-root user ---------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM to the worker (graceful shutdown) and reaps child processes.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 flywheel; \
    useradd --system --uid 10001 --gid flywheel --home-dir /var/lib/flywheel \
        --shell /usr/sbin/nologin flywheel; \
    mkdir -p /var/lib/flywheel /etc/flywheel; \
    chown 10001:10001 /var/lib/flywheel
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/flywheel \
    FLYWHEEL_DATA_DIR=/var/lib/flywheel
LABEL org.opencontainers.image.title="data-flywheel" \
      org.opencontainers.image.description="Temporal workers and CLI of data-flywheel" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /var/lib/flywheel
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "flywheel"]
CMD ["worker"]
