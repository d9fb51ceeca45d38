# One entry point for the whole suite. `make setup` installs everything from the repo's own lock files.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
UV_VERSION := 0.13.8
PYTEST_ARGS ?=

.PHONY: help run down faucet bench faults chaos setup proto proto-check abi-check env-example certs contracts web-bundle web-bundle-check lint fmt test test-unit test-integration clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock $(wildcard */pyproject.toml */*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: .venv/.synced node_modules/.installed ## install the Python workspace (uv) and the node tooling (anvil, solc, buf, near-api-js)

proto: .venv/.synced ## regenerate the Python stubs of protos/
	scripts/gen_protos.sh

proto-check: .venv/.synced node_modules/.installed ## fail when the protos break lint or the committed stubs are stale
	cd protos && ../node_modules/.bin/buf lint
	scripts/gen_protos.sh --check

env-example: .venv/.synced ## regenerate deploy/env.example from the settings classes
	$(PY) scripts/gen_env_example.py

certs: .venv/.synced ## a private CA and a certificate per service in deploy/certs (CERT_HOSTS: more names)
	$(PY) -m swap_devnet.pki deploy/certs $(foreach host,$(CERT_HOSTS),--host $(host))
	@# Compose mounts the files with their host owner and mode, and the containers run as other users (10001,
	@# Envoy's 101): the keys it mounts must be readable by them. The CA's and the operator's stay private.
	chmod 0644 $(foreach name,session quote chain-base chain-near gateway envoy,deploy/certs/$(name)/tls.key)

web-bundle: node_modules/.installed ## rebuild the web page's near-api-js bundle (static/near-api-js.js) from the pinned packages
	node scripts/build_near_bundle.mjs

web-bundle-check: node_modules/.installed ## fail when the committed near-api-js bundle is not what the pinned packages build
	node scripts/build_near_bundle.mjs --check

abi-check: contracts ## fail when the ABIs chain-base ships differ from the compiled contracts
	$(PY) scripts/export_abis.py --check

contracts: node_modules/.installed .venv/.synced ## compile the Solidity contracts into contracts/build; export ABIs; build the NEAR wasm contracts (checked against contracts/near/artifacts.sha256)
	node contracts/compile.mjs
	$(PY) scripts/export_abis.py
	scripts/build_near_contracts.sh

lint: setup proto-check abi-check web-bundle-check ## ruff, ruff format, mypy --strict, buf lint, stale stubs / ABIs / env example / page bundle
	$(PY) scripts/gen_env_example.py --check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

fmt: setup ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

run: setup contracts ## start the local stack, run a demo swap, keep it up until Ctrl-C (DEMO_ONLY=1: stop after it)
	$(PY) -m swap_devnet.demo $(if $(DEMO_ONLY),--demo-only,)

down: ## stop this checkout's stack left running by `make run` (normally Ctrl-C does it); waits until it has stopped
	$(PY) -m swap_devnet.demo --stop

faucet: ## test funds on the devnet of `make run`: BASE=0xADDRESS and/or NEAR=name.test.near [NEAR_KEY=ed25519:PUBLIC]
	$(PY) -m swap_devnet.faucet $(if $(BASE),--base $(BASE),) $(if $(NEAR),--near $(NEAR),) $(if $(NEAR_KEY),--near-public-key $(NEAR_KEY),)

TEST_WORKERS ?= 2
test: setup contracts ## the whole test suite: unit, contracts on anvil, services over gRPC, NEAR devnet (TEST_WORKERS=2 in parallel)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

faults: setup contracts ## the fault-injection matrix (crashes, outages, reorgs) and the long safety-kernel property run
	HYPOTHESIS_PROFILE=faults $(PY) -m pytest tests/unit/session/test_kernel_properties.py -k TestKernel $(PYTEST_ARGS)
	$(PY) -m pytest tests/integration/faults tests/integration/chaos -m faults -v $(PYTEST_ARGS)

SEED ?= 1
MINUTES ?= 2
IN_FLIGHT ?= 20
chaos: setup contracts ## chaos under load (docs/faults.md): swaps both ways while a nemesis breaks things; SEED, MINUTES, IN_FLIGHT
	@mkdir -p .localnet
	$(PY) -m swap_devnet.chaos --seed $(SEED) --minutes $(MINUTES) --in-flight $(IN_FLIGHT) --report .localnet/chaos-$(SEED).json > /dev/null

test-unit: setup ## unit tests only (no chains)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: setup contracts ## benchmarks on the local stack; prints one JSON report (not part of make test)
	$(PY) -m bench $(BENCH_ARGS)

clean: ## remove build outputs and local chain state
	rm -rf contracts/build .localnet .pytest_cache .mypy_cache .ruff_cache
