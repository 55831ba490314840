# bakery's entry points. The two that matter (README): `make demo` and `make test`.
# Both install what they need first (lab/install: apt-get, a Python venv, a login user; root or sudo).

SHELL := /bin/bash
.DEFAULT_GOAL := help

DEV_LAB := lab/.state/dev
DEMO_LAB := lab/.state/demo
# Built by `cargo build --bins` just before; `cargo run` would rebuild whatever changed meanwhile.
BAKE := $(or $(CARGO_TARGET_DIR),target)/debug/bake
ROLLOUT := $(or $(CARGO_TARGET_DIR),target)/debug/rollout

.PHONY: help install lab lab-up lab-down rust-tools test test-real-aws demo bench

# `make install`'s per-user places (override on the command line: make install MAN_DIR=...).
CARGO_BIN := $(or $(CARGO_INSTALL_ROOT),$(CARGO_HOME),$(HOME)/.cargo)/bin
DATA_HOME := $(or $(XDG_DATA_HOME),$(HOME)/.local/share)
CONFIG_HOME := $(or $(XDG_CONFIG_HOME),$(HOME)/.config)
BASH_COMPLETIONS ?= $(DATA_HOME)/bash-completion/completions
ZSH_COMPLETIONS ?= $(DATA_HOME)/zsh/site-functions
FISH_COMPLETIONS ?= $(CONFIG_HOME)/fish/completions
MAN_DIR ?= $(DATA_HOME)/man

help:
	@echo "make demo      run bakery's main job on the local lab (installs what it needs)"
	@echo "make install   cargo install bake and rollout, plus their shell completions and man pages"
	@echo "make test      fmt + clippy + all tests, on a lab started per test binary, then the lab suites under real-AWS behaviour (installs what it needs)"
	@echo "make lab       install the local lab: openssh-server, packer, hyperfine, moto venv, login user"
	@echo "make lab-up    start a persistent dev lab in $(DEV_LAB) (then: . $(DEV_LAB)/env.sh)"
	@echo "make lab-down  stop it"
	@echo "make bench     benchmarks against Packer 1.6.6"

# The binaries write their own completions and man pages (generated from their command lines), so what
# is installed always matches the installed binaries. Elvish and PowerShell load theirs from the shell's
# rc file instead (README: Install).
install:
	cargo install --locked --path .
	mkdir -p $(BASH_COMPLETIONS) $(ZSH_COMPLETIONS) $(FISH_COMPLETIONS) $(MAN_DIR)/man1
	@set -e; for b in bake rollout; do \
		$(CARGO_BIN)/$$b completions bash > $(BASH_COMPLETIONS)/$$b; \
		$(CARGO_BIN)/$$b completions zsh > $(ZSH_COMPLETIONS)/_$$b; \
		$(CARGO_BIN)/$$b completions fish > $(FISH_COMPLETIONS)/$$b.fish; \
		$(CARGO_BIN)/$$b man --dir $(MAN_DIR)/man1; \
	done
	@echo "installed: $(CARGO_BIN)/{bake,rollout}; completions in $(BASH_COMPLETIONS), $(ZSH_COMPLETIONS), $(FISH_COMPLETIONS); man pages in $(MAN_DIR)/man1"

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
# `cargo fetch` brings every platform's packages, which tests/licences.rs's offline `cargo metadata` reads.
test: lab rust-tools
	cargo fetch --locked
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace; status=$$?; lab/down --orphans --quiet; exit $$status
	$(MAKE) --no-print-directory test-real-aws

# The whole integration-test binary again, on a lab whose realism layer plays AWS (docs/lab.md, profile
# real-aws: eventual consistency, held state changes, refusals, throttling, 5xx, late replies, a booting
# sshd): bake's end-to-end suites, `bake cleanup`, the kill matrix and rollout's suites.
test-real-aws: lab
	BAKERY_LAB_REALISM=real-aws cargo test --test tests; status=$$?; lab/down --orphans --quiet; exit $$status

# The main job on a lab of its own, through scripts/deploy (seed 004's deploy script as one command; docs/origins.md):
# bake primal -> bake carnivore on it -> rollout setup + blue-green rollout -> gc; then a second deploy on
# the existing primal AMI (seed 004's PRIMAL_ID), whose gc removes the first carnivore, no longer in use.
# The lab stops at the end.
demo: lab
	cargo build --bins
	@set -eo pipefail; \
	lab/up --dir $(DEMO_LAB) --parent-pid $$$$ >/dev/null; \
	trap 'lab/down --dir $(DEMO_LAB) --purge' EXIT; \
	. $(DEMO_LAB)/env.sh; \
	src=$$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lab_source_ami"])' $(DEMO_LAB)/lab.vars.json); \
	export BAKERY_STATE_DIR=$(DEMO_LAB)/bakery BAKE=$(BAKE) ROLLOUT=$(ROLLOUT); \
	vars="--var-file $(DEMO_LAB)/lab.vars.json --var SOURCE_AMI=$$src"; \
	echo "== scripts/deploy --setup --keep 1 (lab: $$AWS_ENDPOINT_URL, sshd port $$BAKERY_LAB_SSH_PORT)"; \
	scripts/deploy --setup --keep 1 $$vars | tee $(DEMO_LAB)/deploy.out; \
	primal=$$(sed -n 's/^deploy: built primal image //p' $(DEMO_LAB)/deploy.out); \
	echo "== scripts/deploy --primal $$primal --keep 1 (seed 004's PRIMAL_ID: no primal bake)"; \
	scripts/deploy --primal $$primal --keep 1 $$vars; \
	echo "== rollout plan (what a deploy of the source AMI would do)"; $(ROLLOUT) plan --ami $$src; \
	echo "== rollout gc --keep 0 --dry-run (the live image is kept whatever N is)"; $(ROLLOUT) gc --keep 0 --dry-run

bench: lab
	@if [ -x scripts/bench ]; then scripts/bench; else echo "make bench: scripts/bench does not exist yet"; fi
