//! `bake`: parse → run → exit code. Everything else is in the library.

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bake: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = runtime.block_on(bakery::cli::run(std::env::args().collect()));
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}
