//! bakery's integration tests, one binary: `bake` (templates, builds on the lab, spot, SSM, `--each-var-file`),
//! the lab's own acceptance test, `scripts/deploy` end to end, the template commands, and `rollout` on the
//! lab (`rollout/`). Helpers are in `common/`; `fixtures` links to bakery-template's (their templates name
//! files relative to the working directory, the package root).
//!
//! One process, so one `Lab::shared()`: the tests that count moto's requests or assert that nothing
//! bakery-managed is left hold `common::SERIAL`. `rollout` and `scripts/deploy` leave environments in moto
//! on purpose (tagged bakery-managed), so they each run on a lab of their own (`common::own_lab`).

mod bake_ansible;
mod bake_each;
mod bake_goss;
mod bake_host_keys;
mod bake_lab;
mod bake_realism;
mod bake_secrets;
mod bake_spot;
mod bake_ssm;
mod cli;
mod common;
mod iam_policies;
mod kill_matrix;
mod lab_selftest;
mod licences;
mod module_cycles;
mod options;
mod packer_pipelines;
mod pipeline;
mod rollout;
mod template_commands;
