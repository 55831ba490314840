//! One upload with bakery-ssh, timed as a whole process (connect + upload +
//! close), for `benches/upload.sh`.
//!
//! Usage: upload_bench HOST PORT USER PRIVATE_KEY_FILE HOST_PUBKEY_FILE LOCAL REMOTE

use std::path::Path;
use std::process::ExitCode;

use bakery_ssh::{Auth, Communicator, HostKeyPolicy, SshConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, key_file, host_key_file, local, remote] = args.as_slice() else {
        eprintln!(
            "usage: upload_bench HOST PORT USER PRIVATE_KEY_FILE HOST_PUBKEY_FILE LOCAL REMOTE"
        );
        return ExitCode::from(2);
    };
    match run(host, port, user, key_file, host_key_file, local, remote).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    host: &str,
    port: &str,
    user: &str,
    key_file: &str,
    host_key_file: &str,
    local: &str,
    remote: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = std::fs::read_to_string(key_file)?;
    let host_keys: Vec<String> = std::fs::read_to_string(host_key_file)?
        .lines()
        .map(str::to_string)
        .collect();
    let mut cfg = SshConfig::new(host, user, Auth::PrivateKey(key));
    cfg.port = port.parse()?;
    cfg.host_keys = HostKeyPolicy::known_from_openssh(&host_keys)?;
    let comm = Communicator::connect(cfg, CancellationToken::new()).await?;
    let stats = comm.upload_path(Path::new(local), remote).await?;
    comm.close().await;
    eprintln!(
        "uploaded {} files, {} dirs, {} bytes",
        stats.files, stats.dirs, stats.bytes
    );
    Ok(())
}
