//! Step 8: run the build's provisioners in order over its one connection. When one fails and the
//! template has an `error-cleanup-provisioner`, that runs next (before the instance is stopped), as in Packer.

use super::state::{Ctx, State};
use async_trait::async_trait;
use bakery_core::pipeline::{Step, StepError};
use bakery_provision::{ProvisionContext, run_provisioner};
use bakery_template::ProvisionerConfig;

/// Runs the provisioners.
pub struct Provision;

/// One provisioner, as the dry run shows it.
fn describe(p: &ProvisionerConfig) -> String {
    match p {
        ProvisionerConfig::Shell(s) => match &s.inline {
            Some(inline) => format!("shell: {} inline command(s)", inline.len()),
            None => format!("shell: {}", s.scripts.join(", ")),
        },
        ProvisionerConfig::File(f) => format!(
            "file: {} => {} ({})",
            if f.sources.is_empty() {
                "<content>".to_string()
            } else {
                f.sources.join(", ")
            },
            f.destination,
            f.direction
        ),
        ProvisionerConfig::ShellLocal(_) => "shell-local".to_string(),
    }
}

#[async_trait]
impl Step<Ctx, State> for Provision {
    fn name(&self) -> &'static str {
        "provision"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        Ok(cx
            .build
            .provisioners
            .iter()
            .enumerate()
            .map(|(i, p)| format!("provisioner {}: {}", i + 1, describe(p)))
            .collect())
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        if cx.build.provisioners.is_empty() {
            return Ok(());
        }
        let Some(comm) = st.comm.as_mut() else {
            return Err(StepError::msg(
                "provisioners need a communicator (communicator is \"none\")",
            ));
        };
        let mut pcx = ProvisionContext {
            comm,
            ui: &cx.ui,
            build_name: cx.name.clone(),
            build_type: cx.build.builder_type.clone(),
            late: st.late.clone(),
            cancel: cx.cancel.clone(),
        };
        for p in &cx.build.provisioners {
            if let Err(e) = run_provisioner(p, &mut pcx).await {
                if cx.cancel.is_cancelled() {
                    return Err(StepError::Cancelled);
                }
                let msg = e.to_string();
                if cx.error_cleanup
                    && let Some(ecp) = &cx.build.error_cleanup_provisioner
                {
                    cx.ui.say(&cx.name, "Provisioning step had errors: Running the cleanup provisioner, if present...");
                    if let Err(e2) = run_provisioner(ecp, &mut pcx).await {
                        cx.ui
                            .error(&cx.name, &format!("error-cleanup-provisioner failed: {e2}"));
                    }
                }
                return Err(StepError::msg(msg));
            }
        }
        Ok(())
    }
}
