//! `rollout`: blue-green Auto Scaling rollouts (see bakery-rollout). Parse → run → exit code, nothing else.

fn main() -> std::process::ExitCode {
    bakery_rollout::cli::main()
}
