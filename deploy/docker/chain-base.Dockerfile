# syntax=docker/dockerfile:1.7
# The BASE (EVM) chain service. Build from the repository root:
#   docker build -f deploy/docker/chain-base.Dockerfile -t swap/chain-base:0.1.0 .

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install uv==0.13.8
WORKDIR /src
# The whole workspace (trimmed by .dockerignore): uv resolves every member from the one uv.lock.
COPY . .
# --no-editable installs the workspace packages themselves into the venv, so the venv is all the
# final stage needs.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package swap-chain-base

FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 swap \
 && useradd --system --uid 10001 --gid swap --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin swap
COPY --from=build /opt/venv /opt/venv
# Nothing is written at run time: bytecode was compiled at build, and HOME and temp files go to /tmp, the one
# writable mount a read-only root filesystem keeps.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    CHAIN_BASE_HOST=0.0.0.0 \
    CHAIN_BASE_PORT=50051
USER 10001:10001
EXPOSE 50051
# The service's gRPC health, asked as its peers ask: over mutual TLS, with the service's own certificate
# (CHAIN_BASE_TLS_DIR).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "swap_runtime.probe", "CHAIN_BASE_", "swap.chain.v1.ChainService"]
ENTRYPOINT ["python", "-m", "chain_base.main"]
