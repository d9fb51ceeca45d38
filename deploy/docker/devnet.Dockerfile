# syntax=docker/dockerfile:1.7
# The local chains for docker-compose.yml, in one image: anvil (from the npm package the repo pins), the
# NEAR devnet (`python -m swap_devnet.near serve`), the compiled contracts and the one-shot deployer
# (deploy_devnets.py). Build from the repository root:
#   docker build -f deploy/docker/devnet.Dockerfile -t swap/devnet:0.1.0 .

FROM node:20.20.2-bookworm-slim AS node
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY contracts/compile.mjs contracts/compile.mjs
COPY contracts/src contracts/src
# npm installs only the platform package of the build machine; its native binary is what runs, not the
# node wrapper in node_modules/.bin.
RUN node contracts/compile.mjs \
 && cp node_modules/@foundry-rs/anvil-linux-*/bin/anvil /usr/local/bin/anvil \
 && /usr/local/bin/anvil --version

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install uv==0.13.8
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package swap-devnet

FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 swap \
 && useradd --system --uid 10001 --gid swap --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin swap \
 && mkdir /state \
 && chown swap:swap /state
# (A fresh named volume mounted on /state takes this folder's owner: the non-root user writes the deployments.)
COPY --from=node /usr/local/bin/anvil /usr/local/bin/anvil
COPY --from=build /opt/venv /opt/venv
# swap_devnet finds the contract artifacts by walking up from its own files to the folder holding
# package.json: /opt, above the venv.
COPY package.json /opt/package.json
COPY --from=node /src/contracts/build /opt/contracts/build
COPY deploy/docker/deploy_devnets.py /opt/deploy_devnets.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 10001:10001
EXPOSE 8545 3030
# The image runs three ways (anvil, the NEAR devnet, the deployer); compose gives each its own check, and
# this default one answers for whichever of the two chains is listening.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=5 \
  CMD ["python", "-c", "import socket, sys; sys.exit(all(socket.socket().connect_ex(('127.0.0.1', p)) for p in (8545, 3030)))"]
CMD ["anvil", "--host", "0.0.0.0", "--port", "8545", "--chain-id", "31337", "--block-time", "1"]
