//! The multi-threaded tokio runtime a binary's `main` runs its command on.

use std::future::Future;
use std::process::ExitCode;

/// Runs `command` on a new multi-threaded runtime; its result is the process's exit code. When the
/// runtime cannot start, says so as `PROGRAM: cannot start the async runtime: …` and exits with 1.
pub fn block_on(program: &str, command: impl Future<Output = u8>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => ExitCode::from(runtime.block_on(command)),
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}
