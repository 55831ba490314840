//! bakery's provisioners and the manifest post-processor, behaving as Packer's:
//!
//! * [`run_provisioner`] runs one `shell`, `file`, `shell-local`, `ansible`
//!   or `ansible-local` provisioner of a build, honouring the meta options Packer's core adds
//!   around every provisioner (`pause_before`, `timeout`, `max_retries`).
//! * [`run_shell_local`] runs `shell-local` on this machine (also the
//!   `shell-local` post-processor).
//! * [`manifest::write`] is the `manifest` post-processor.
//!
//! Everything printed goes through the run's [`Ui`](bakery_core::ui::Ui) (which masks secrets):
//! headlines such as `Provisioning with shell script: setup.sh` and every
//! line of remote output, live.

#![deny(missing_docs)]

mod ansible;
mod ansible_local;
mod context;
pub mod env;
mod error;
mod file;
pub mod goss;
pub mod manifest;
pub mod script;
mod shell;
mod shell_local;
pub mod sink;

use bakery_template::duration::format_go_duration;
use bakery_template::engine::go_quote;
use bakery_template::schema::ProvisionerConfig;

pub use context::ProvisionContext;
pub use error::ProvisionError;
pub use shell::CMD_DISCONNECT;
pub use shell_local::run_shell_local;
pub use sink::UiSink;

/// Runs one provisioner as Packer's core does: the whole provisioner is
/// retried up to `max_retries` times (`Provisioner failed with "…", retrying
/// with N trie(s) left`); each attempt waits `pause_before`, and is cut off
/// after `timeout`. Cancellation stops it at once.
pub async fn run_provisioner(
    p: &ProvisionerConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let name = p.type_name();
    let meta = p.meta().clone();
    let cancel = cx.cancel.clone();
    let mut left = meta.max_retries;
    loop {
        let attempt = async {
            if let Some(pause) = meta.pause_before {
                cx.ui.say(
                    &cx.build_name,
                    &format!(
                        "Pausing {} before the next provisioner...",
                        format_go_duration(pause)
                    ),
                );
                tokio::time::sleep(pause).await;
            }
            match meta.timeout {
                Some(limit) => {
                    cx.ui.say(
                        &cx.build_name,
                        &format!(
                            "Setting a {} timeout for the next provisioner...",
                            format_go_duration(limit)
                        ),
                    );
                    match tokio::time::timeout(limit, run_once(p, cx)).await {
                        Ok(r) => r,
                        Err(_) => {
                            cx.ui
                                .error(&cx.build_name, "Cancelling provisioner after a timeout...");
                            Err(ProvisionError::Timeout {
                                provisioner: name,
                                after: limit,
                            })
                        }
                    }
                }
                None => run_once(p, cx).await,
            }
        };
        let result = tokio::select! {
            r = attempt => r,
            _ = cancel.cancelled() => Err(ProvisionError::Cancelled { provisioner: name }),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_cancelled() || cancel.is_cancelled() => return Err(e),
            Err(e) if left > 0 => {
                cx.ui.say(
                    &cx.build_name,
                    &format!(
                        "Provisioner failed with {}, retrying with {left} trie(s) left",
                        go_quote(&e.to_string())
                    ),
                );
                left -= 1;
            }
            Err(e) => {
                if meta.max_retries > 0 {
                    cx.ui.say(&cx.build_name, "retry limit reached.");
                }
                return Err(e);
            }
        }
    }
}

async fn run_once(
    p: &ProvisionerConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    match p {
        ProvisionerConfig::Shell(cfg) => shell::run(cfg, cx).await,
        ProvisionerConfig::File(cfg) => file::run(cfg, cx).await,
        ProvisionerConfig::Ansible(cfg) => ansible::run(cfg, cx).await,
        ProvisionerConfig::AnsibleLocal(cfg) => ansible_local::run(cfg, cx).await,
        ProvisionerConfig::Goss(cfg) => goss::run(cfg, cx).await,
        ProvisionerConfig::ShellLocal(cfg) => {
            let late = cx.late_context();
            run_shell_local(
                cfg,
                cx.ui,
                &cx.build_name,
                &cx.build_type,
                &late,
                &cx.cancel,
            )
            .await
        }
    }
}

#[cfg(test)]
mod testutil;
