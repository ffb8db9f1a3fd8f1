# Everything a newcomer needs: `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo up bench bench-bulk bench-backlog bench-idle bench-memory bench-redis bench-redis-ops bench-shards bench-profile test test-unit test-integration test-e2e test-faults lint format compose-check wheel-check clean seed-harness

install: $(STAMP)

# Not --quiet: pip's lines (a package each) are the progress of the slow first install.
$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV): the package and its dev tools (first time: a minute or two)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

## The main job on embedded defaults: local redis-server + moto server, one worker, an order flow.
demo: install
	$(BIN)/python -m tasks.embedded.demo

## The embedded Redis, moto server and one worker in the foreground, for trying the CLI
## from another shell (it prints the `export` lines); Ctrl-C stops everything.
up: install
	$(BIN)/checkout up

## The whole suite; it starts the redis-server and moto server it needs.
test: install seed-harness ts-client
	$(BIN)/pytest

## The seed's own TypeScript store under node (tests/integration/test_seed_interop.py):
## `npm ci` of its pinned packages, again only when node_modules is missing or older than the lock.
seed-harness:
	@stamp=tests/seed/node_modules/.seed-harness-stamp; \
	if [ ! -f $$stamp ] || [ tests/seed/package-lock.json -nt $$stamp ] || [ tests/seed/package.json -nt $$stamp ]; then \
		npm ci --prefix tests/seed --no-audit --no-fund && touch $$stamp; \
	fi

## The TypeScript producer (clients/typescript), compiled for the e2e tests under node:
## `npm ci` again only when the lock changes, `tsc` again only when a source changes.
TS_CLIENT  := clients/typescript
TS_SOURCES := $(wildcard $(TS_CLIENT)/src/*.ts $(TS_CLIENT)/test/*.ts $(TS_CLIENT)/bench/*.ts) $(TS_CLIENT)/tsconfig.json

ts-client: $(TS_CLIENT)/dist/.build-stamp

$(TS_CLIENT)/node_modules/.ts-client-stamp: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT) --no-audit --no-fund
	touch $@

$(TS_CLIENT)/dist/.build-stamp: $(TS_CLIENT)/node_modules/.ts-client-stamp $(TS_SOURCES)
	npm run --prefix $(TS_CLIENT) build
	touch $@

test-unit: install
	$(BIN)/pytest -m unit

test-integration: install seed-harness
	$(BIN)/pytest -m integration

test-e2e: install ts-client
	$(BIN)/pytest -m e2e

## The fault-injection suite (SIGKILLed workers, outages, poison messages) on its own.
test-faults: install
	$(BIN)/pytest -m faults

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## `checkout bench`: order flow, contention and bulk through the workers, each beside the
## same commands applied in process (direct) and the seed's GetItem + PutItem, in one run;
## writes BENCHMARKS.md and BENCHMARKS.png. `make bench BENCH_ARGS=--quick` for a short run.
bench: install
	$(BIN)/checkout bench --write-markdown $(BENCH_ARGS)

## Bulk runs: send vs an apply_async loop, send's peak RSS on 1,000,000 lines, a
## 10,000-session bulk-update end to end through two workers.
bench-bulk: install
	$(BIN)/python -m benchmarks.bulk

bench-backlog: install
	$(BIN)/python -m benchmarks.backlog

## Idle Redis calls/s by worker processes, fresh and after work (benchmarks/idle.py).
bench-idle: install
	$(BIN)/python -m benchmarks.idle

## Redis memory per queued and finished command and per session (benchmarks/memory.py).
bench-memory: install
	$(BIN)/python -m benchmarks.memory

## Redis's CPU and calls per command where only Redis works: the delivery layer's calls
## from processes that do nothing else (benchmarks/redis_bound.py).
bench-redis: install
	$(BIN)/python -m benchmarks.redis_bound

## What one round trip and one enqueue, claim and finish cost a quiet Redis
## (benchmarks/redis_ops.py): the floor under `redis_us_per_command`.
bench-redis-ops: install
	$(BIN)/python -m benchmarks.redis_ops

## Redis's cost per command on 1, 2 and 3 shards (README "Scaling out").
bench-shards: install
	$(BIN)/python -m benchmarks.shards

## Where a worker's CPU per command goes, by phase (py-spy --gil; needs `pip install py-spy`).
bench-profile: install
	$(BIN)/python -m benchmarks.worker_profile

## The wheel the Docker image installs, in a fresh virtualenv outside the checkout:
## its `checkout worker` applies a command against a real Redis and moto server.
wheel-check: install
	$(BIN)/python .ci/wheel_check.py

## Validates docker-compose.yml and docker-compose.shards.yml (the client only, no engine).
compose-check:
	docker-compose -f docker-compose.yml config --quiet
	docker-compose -f docker-compose.shards.yml config --quiet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
