# bakery's entry points. The two that matter (README): `make demo` and `make test`.
# Both install what they need first (lab/install: apt-get, a Python venv, a login user; root or sudo).

SHELL := /bin/bash
.DEFAULT_GOAL := help

DEV_LAB := lab/.state/dev
DEMO_LAB := lab/.state/demo
# Built by `cargo build --bins` just before; `cargo run` would rebuild whatever changed meanwhile.
BAKE := $(or $(CARGO_TARGET_DIR),target)/debug/bake
ROLLOUT := $(or $(CARGO_TARGET_DIR),target)/debug/rollout

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

# The main job on a lab of its own: bake primal, bake carnivore on primal's AMI (one command, the AMI
# passed on with -pass-ami), then the blue-green rollout of that AMI. The lab stops at the end.
demo: lab
	cargo build --bins
	@set -e; \
	lab/up --dir $(DEMO_LAB) --parent-pid $$$$ >/dev/null; \
	trap 'lab/down --dir $(DEMO_LAB) --purge' EXIT; \
	. $(DEMO_LAB)/env.sh; \
	src=$$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lab_source_ami"])' $(DEMO_LAB)/lab.vars.json); \
	export BAKERY_STATE_DIR=$(DEMO_LAB)/bakery; \
	echo "== bake primal, then carnivore on primal's AMI (lab: $$AWS_ENDPOINT_URL, sshd port $$BAKERY_LAB_SSH_PORT)"; \
	$(BAKE) -color=false -force -var-file $(DEMO_LAB)/lab.vars.json -var SOURCE_AMI=$$src \
		-pass-ami SOURCE_ID manifests/primal.json manifests/carnivore.json | tee $(DEMO_LAB)/bake.out; \
	ami=$$(tail -1 $(DEMO_LAB)/bake.out | cut -d' ' -f2); \
	echo "== carnivore AMI: $$ami"; \
	echo "== rollout setup (twice: the second changes nothing)"; $(ROLLOUT) setup; $(ROLLOUT) setup; \
	echo "== rollout --ami $$ami (blue-green: the carnivore image goes live)"; $(ROLLOUT) --ami $$ami; \
	echo "== rollout plan --ami $$src"; $(ROLLOUT) plan --ami $$src; \
	echo "== rollout --ami $$src (blue-green again, back to the source AMI)"; $(ROLLOUT) --ami $$src

bench: lab
	@if [ -x scripts/bench ]; then scripts/bench; else echo "make bench: scripts/bench does not exist yet"; fi
