//! Packer's `amazon-ebs` builder: launch an instance from a source AMI, provision it over SSH, stop it,
//! create an AMI, copy it to other regions, and remove every temporary resource.
//!
//! The steps, in order (one file each):
//! [`pre_validate`] → [`source_ami`] → [`network`] → [`iam_instance_profile`] → [`key_pair`] → [`security_group`] → [`run_instance`]
//! → [`connect`] → [`provision`] → [`stop_instance`] → [`create_ami`] → [`copy_regions`] → [`attributes`].
//! A dry run walks the same list through each step's `plan` ([`plan`]). Cleanup runs in reverse for every step that started: the connection closes, the instance is terminated,
//! the security group, the temporary instance profile and its role, and the key pair are deleted (always); the AMIs are deregistered with their snapshots
//! (only when the build did not succeed).

pub mod ami;
pub mod attributes;
pub mod connect;
pub mod console_keys;
pub mod copy_regions;
pub mod create_ami;
pub mod iam_instance_profile;
pub mod key_pair;
pub mod network;
pub mod pre_validate;
pub mod provision;
pub mod run_instance;
pub mod security_group;
pub mod source_ami;
pub mod spot_instance;
pub mod ssh_source;
pub mod state;
pub mod stop_instance;

use bakery_core::pipeline::{self, RunControl, RunReport, Step, StepError};
use state::{Ctx, SourceImage, State};
use std::collections::BTreeMap;

/// The steps of one build.
pub fn steps() -> Vec<Box<dyn Step<Ctx, State>>> {
    vec![
        Box::new(pre_validate::PreValidate),
        Box::new(source_ami::SourceAmi),
        Box::new(network::Network),
        Box::new(iam_instance_profile::IamInstanceProfile::default()),
        Box::new(key_pair::KeyPair::default()),
        Box::new(security_group::SecurityGroup),
        Box::new(run_instance::RunInstance::default()),
        Box::new(connect::Connect),
        Box::new(provision::Provision),
        Box::new(stop_instance::StopInstance),
        Box::new(create_ami::CreateAmi::default()),
        Box::new(copy_regions::CopyRegions::default()),
        Box::new(attributes::Attributes),
    ]
}

/// What one build produced.
pub struct BuildResult {
    /// The pipeline's report.
    pub report: RunReport,
    /// AMI ids by region (empty unless it succeeded).
    pub amis: BTreeMap<String, String>,
    /// The late-template data of the build (for post-processors' `{{build ...}}`).
    pub late: bakery_template::LateContext,
}

/// The state a build starts from.
fn initial_state(cx: &Ctx) -> State {
    let mut st = State::default();
    st.late.build_name = cx.name.clone();
    st.late.build_type = cx.build.builder_type.clone();
    st.late
        .build
        .insert("PackerRunUUID".into(), cx.run_id.clone());
    st.late
        .data
        .insert("BuildRegion".into(), cx.region().to_string());
    st
}

/// The dry-run plan of one build: what each step would do, walked over the same steps [`run`] runs, with
/// read-only calls only. `source` stands in for a source AMI that does not exist yet (`-pass-ami`: the
/// AMI an earlier template builds); the step that failed to plan is named with its error.
pub async fn plan(
    cx: &Ctx,
    source: Option<SourceImage>,
) -> Result<Vec<String>, (&'static str, StepError)> {
    let mut st = initial_state(cx);
    st.source = source;
    pipeline::plan(&steps(), cx, &mut st).await
}

/// Runs one build to the end, cleanup included.
pub async fn run(cx: &Ctx, ctl: &RunControl) -> BuildResult {
    let mut st = initial_state(cx);
    let mut steps = steps();
    let report = pipeline::run(&mut steps, cx, &mut st, ctl).await;
    let amis = if report.outcome.succeeded() {
        st.amis.clone()
    } else {
        BTreeMap::new()
    };
    BuildResult {
        report,
        amis,
        late: st.late,
    }
}
