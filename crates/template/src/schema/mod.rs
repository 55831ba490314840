//! Option schemas of the plugins bakery runs, decoded weakly as Packer does,
//! with Packer's defaults and `Prepare` checks: amazon-ebs, file, shell,
//! shell-local (provisioner and post-processor), ansible, ansible-local, goss and manifest.

pub mod amazon_ebs;
pub mod ansible;
pub mod ansible_local;
pub mod choice;
pub mod common;
pub mod file;
pub mod goss;
pub mod manifest;
pub mod shell;
pub mod shell_local;

pub use amazon_ebs::AmazonEbsConfig;
pub use ansible::AnsibleConfig;
pub use ansible_local::AnsibleLocalConfig;
pub use common::ProvisionerMeta;
pub use file::FileConfig;
pub use goss::GossConfig;
pub use manifest::ManifestConfig;
pub use shell::ShellConfig;
pub use shell_local::ShellLocalConfig;

pub const SUPPORTED_BUILDERS: &[&str] = &["amazon-ebs"];
pub const SUPPORTED_PROVISIONERS: &[&str] = &[
    "ansible",
    "ansible-local",
    "file",
    "goss",
    "shell",
    "shell-local",
];
pub const SUPPORTED_POST_PROCESSORS: &[&str] = &["manifest", "shell-local"];

#[derive(Debug, Clone, PartialEq)]
pub enum BuilderConfig {
    AmazonEbs(Box<AmazonEbsConfig>),
}

impl BuilderConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            BuilderConfig::AmazonEbs(_) => "amazon-ebs",
        }
    }

    pub fn as_amazon_ebs(&self) -> Option<&AmazonEbsConfig> {
        match self {
            BuilderConfig::AmazonEbs(c) => Some(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionerConfig {
    Shell(ShellConfig),
    File(FileConfig),
    ShellLocal(ShellLocalConfig),
    Ansible(Box<AnsibleConfig>),
    AnsibleLocal(Box<AnsibleLocalConfig>),
    Goss(Box<GossConfig>),
}

impl ProvisionerConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProvisionerConfig::Shell(_) => "shell",
            ProvisionerConfig::File(_) => "file",
            ProvisionerConfig::ShellLocal(_) => "shell-local",
            ProvisionerConfig::Ansible(_) => "ansible",
            ProvisionerConfig::AnsibleLocal(_) => "ansible-local",
            ProvisionerConfig::Goss(_) => "goss",
        }
    }

    /// `pause_before`, `max_retries`, `timeout`.
    pub fn meta(&self) -> &ProvisionerMeta {
        match self {
            ProvisionerConfig::Shell(c) => &c.meta,
            ProvisionerConfig::File(c) => &c.meta,
            ProvisionerConfig::ShellLocal(c) => &c.meta,
            ProvisionerConfig::Ansible(c) => &c.meta,
            ProvisionerConfig::AnsibleLocal(c) => &c.meta,
            ProvisionerConfig::Goss(c) => &c.meta,
        }
    }
}

// Boxing would change the contract the pipeline matches on; these are
// built once per build, so the size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PostProcessorConfig {
    Manifest(ManifestConfig),
    ShellLocal(ShellLocalConfig),
}

impl PostProcessorConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            PostProcessorConfig::Manifest(_) => "manifest",
            PostProcessorConfig::ShellLocal(_) => "shell-local",
        }
    }

    pub fn keep_input_artifact(&self) -> Option<bool> {
        match self {
            PostProcessorConfig::Manifest(c) => c.keep_input_artifact,
            PostProcessorConfig::ShellLocal(c) => c.keep_input_artifact,
        }
    }
}
