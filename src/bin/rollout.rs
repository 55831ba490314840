//! `rollout`: blue-green Auto Scaling rollouts (see `bakery::cli::rollout`).

fn main() -> std::process::ExitCode {
    bakery::cli::rollout::main()
}
