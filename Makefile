# Set-up and everyday commands. `make demo` and `make test` each install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

MODEL_DIR ?= $(or $(ECG_MODEL_DIR),$(CURDIR)/models)
export ECG_MODEL_DIR := $(MODEL_DIR)
DEMO_VIDEO := data/demo/sample.mp4

.PHONY: deps models testdata build demo test lint test-python test-rust test-template test-artifact bench fleet gpu runner-artifact test-hostile load fuzz openapi

## System packages (apt) and the project's Python venv.
deps:
	infra/system-deps.sh
	infra/python-env.sh >/dev/null

## Whisper base (converted to ggml), Silero VAD and ONNX Runtime into $(MODEL_DIR).
models: deps
	infra/models/provision.sh "$(MODEL_DIR)"

## Real human recordings for the real-recording tests into ./testdata (AMI meeting excerpts, telephone prompts).
testdata: deps
	infra/testdata/provision.sh

build: deps
	cargo build --release --bin ecg

## Analyse a generated two-speaker video with the embedded default.
demo: models build
	infra/demo/sample.sh $(DEMO_VIDEO)
	target/release/ecg analyze $(DEMO_VIDEO)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-python: deps
	$$(infra/python-env.sh --test) -m pytest -q -c infra/pytest.ini infra bench/test_fleet_sim.py

test-rust: models testdata
	# One Whisper thread per test: tests run two at a time on two cores, and ggml busy-waits when oversubscribed.
	ECG_ASR_THREADS=$${ECG_ASR_THREADS:-1} cargo test --workspace --no-fail-fast

## The hostile-input suite alone (also part of test-rust): `ecg serve` against hostile requests,
## URLs, media and servers on 127.0.0.1.
test-hostile: models
	cargo test --test hostile -- --nocapture

## 100 concurrent jobs on one `ecg serve` (LOAD_JOBS, LOAD_WORKERS): time, peak RSS, leaks.
load: models
	cargo test --release --test load -- --ignored --nocapture

## Rewrite docs/openapi.json from the code (a test fails while it is stale).
openapi:
	ECG_UPDATE_OPENAPI=1 cargo test -p ecg-api --test openapi the_committed_document_is_current

## Each fuzz target for FUZZ_SECONDS (default 60); needs a nightly toolchain.
fuzz: deps
	infra/fuzz.sh

## The SAM template, through cfn-lint and `sam validate --lint` (offline).
test-template: deps
	infra/aws/check-template.sh

## The artifact's packing and self-containment check, on the CPU build the tests just made.
test-artifact: test-rust
	dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	  infra/gpu/check-artifact.sh "$$(infra/gpu/package.sh target/debug "$(MODEL_DIR)" "$$dir")"

## Every check and test.
test: deps models lint test-python test-template test-rust test-artifact

## Our pipeline against faster-whisper, stage times, memory, cold starts → BENCHMARKS.md
## (bench/run.sh lists its settings: BENCH_LENGTHS, BENCH_RUNS, ECG_ASR_THREADS, BENCH_QUICK=1, ...).
bench: models testdata
	bench/run.sh

## The runner and `ecg` with whisper.cpp on CUDA, against a toolkit assembled from NVIDIA's
## PyPI wheels (no system CUDA needed) → target/gpu/release (CUDA_ARCHITECTURES, default in build.sh).
gpu: deps
	infra/gpu/build.sh

## One deployable artifact, dist/ecg-runner-<version>.tar.gz (the CUDA runner, its CUDA
## libraries, ONNX Runtime, the models, the instance set-up), checked to be self-contained.
runner-artifact: gpu models
	infra/gpu/check-artifact.sh "$$(infra/gpu/package.sh)"

## The runner fleet's capacity model: waits, instance-hours and cost on three arrival traces.
fleet: deps
	$$(infra/python-env.sh) bench/fleet_sim.py --markdown
