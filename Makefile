# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK := scripts/stack.sh

.PHONY: help deps build engines forge-engine up down demo test typecheck test-unit test-integration fault bench

help:
	@echo "make demo   build engines, start the dev stack, dispatch the example actions, print results"
	@echo "make test   type-check, unit tests, integration tests on the real dev stack"
	@echo "make up | make down | make engines | make build | make bench"
	@echo "DEV_FORGE=1 make up   the stack with Gitea (built on first use: several minutes)"

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

build: deps
	npm run -s build

engines:
	scripts/build-engines.sh

# Gitea, for the forge tests (cold: about 5+ minutes; then cached)
forge-engine:
	scripts/build-engines.sh gitea

up: build engines
	$(STACK) up

down:
	$(STACK) down

demo: up
	scripts/demo.sh

typecheck: deps
	npm run -s typecheck

test-unit: deps
	npx vitest run --project unit

# starts the stack if it is not running, and stops it afterwards even when tests fail; with Gitea
# (DEV_FORGE=1): the forge tests run on it
test-integration: build engines forge-engine
	DEV_FORGE=1 scripts/with-stack.sh npx vitest run --project integration

# kill -9, racing replicas, engine and remote outages, a hostile corpus (figures printed)
fault: build engines
	scripts/with-stack.sh npx vitest run --project fault

test: typecheck test-unit test-integration fault

# not part of make test; sizes come from BENCH_* (bench/README.md); writes bench/results.md
bench: build engines
	npx tsc -p bench/tsconfig.json
	scripts/with-stack.sh node --enable-source-maps dist/bench/main.js
