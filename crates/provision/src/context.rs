//! What a provisioner gets from the running build: the connection, the output, the build's data.

use bakery_core::ui::Ui;
use bakery_ssh::Communicator;
use bakery_template::late::LateContext;
use tokio_util::sync::CancellationToken;

/// What a provisioner needs from the running build.
pub struct ProvisionContext<'a> {
    /// The build's SSH connection (reconnected here after expected disconnects).
    pub comm: &'a mut Communicator,
    /// The run's output.
    pub ui: &'a Ui,
    /// `PACKER_BUILD_NAME`: the rendered build name (also the UI prefix).
    pub build_name: String,
    /// `PACKER_BUILDER_TYPE`: `amazon-ebs`.
    pub build_type: String,
    /// Build data for `{{build `X`}}` and dot fields in late templates.
    pub late: LateContext,
    /// Cancels the provisioner (Ctrl-C, build aborted).
    pub cancel: CancellationToken,
}

impl ProvisionContext<'_> {
    /// The late context, with the build's name and type filled in when the
    /// caller left them empty.
    pub fn late_context(&self) -> LateContext {
        let mut late = self.late.clone();
        if late.build_name.is_empty() {
            late.build_name = self.build_name.clone();
        }
        if late.build_type.is_empty() {
            late.build_type = self.build_type.clone();
        }
        late
    }
}
