# bakery's entry points. The two that matter (README): `make demo` and `make test`.
# Both install what they need first (lab/install: apt-get, a Python venv, a login user; root or sudo).

SHELL := /bin/bash
.DEFAULT_GOAL := help

DEV_LAB := lab/.state/dev
DEMO_LAB := lab/.state/demo
# Built by `cargo build --bins` just before; `cargo run` would rebuild whatever changed meanwhile.
BAKE := $(or $(CARGO_TARGET_DIR),target)/debug/bake

.PHONY: help lab lab-up lab-down rust-tools test demo bench

help:
	@echo "make demo      run bakery's main job on the local lab (installs what it needs)"
	@echo "make test      fmt + clippy + all tests, on a lab started per test binary (installs what it needs)"
	@echo "make lab       install the local lab: openssh-server, packer, hyperfine, moto venv, login user"
	@echo "make lab-up    start a persistent dev lab in $(DEV_LAB) (then: . $(DEV_LAB)/env.sh)"
	@echo "make lab-down  stop it"
	@echo "make bench     benchmarks against Packer 1.6.6"

lab:
	lab/install

lab-up: lab
	lab/up --dir $(DEV_LAB)

lab-down:
	lab/down --dir $(DEV_LAB)

# rustup's default profile has both; a minimal profile does not.
rust-tools:
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# Every test binary that needs the lab starts its own (bakery-lab's Lab::shared) and its watcher stops it
# when the binary exits; `lab/down --orphans` then waits for the last of them, so no lab process
# outlives this command, whatever the tests' outcome.
test: lab rust-tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace; status=$$?; lab/down --orphans --quiet; exit $$status

# For now the demo shows what exists; the bake -> bake -> rollout pipeline replaces the body when it lands.
demo: lab
	cargo build --bins
	@set -e; \
	lab/up --dir $(DEMO_LAB) --parent-pid $$$$; \
	trap 'lab/down --dir $(DEMO_LAB) --purge' EXIT; \
	. $(DEMO_LAB)/env.sh; \
	if $(BAKE) --help 2>/dev/null | grep -qw validate && [ -f manifests/primal.json ]; then \
		echo "== bake validate -var-file $(DEMO_LAB)/lab.vars.json manifests/primal.json"; \
		$(BAKE) validate -var-file $(DEMO_LAB)/lab.vars.json manifests/primal.json; \
	else \
		echo "== bake validate manifests/primal.json: not there yet"; \
	fi; \
	echo "Coming: bake primal -> bake carnivore on primal's AMI -> blue-green rollout, on this lab."

bench: lab
	@if [ -x scripts/bench ]; then scripts/bench; else echo "make bench: scripts/bench does not exist yet"; fi
