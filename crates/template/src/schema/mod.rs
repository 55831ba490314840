//! Option schemas of the plugins bakery runs, decoded weakly as Packer does,
//! with Packer's defaults and `Prepare` checks: amazon-ebs, file, shell,
//! shell-local (provisioner and post-processor) and manifest.

pub mod amazon_ebs;
pub mod choice;
pub mod common;
pub mod file;
pub mod manifest;
pub mod shell;
pub mod shell_local;

pub use amazon_ebs::AmazonEbsConfig;
pub use common::ProvisionerMeta;
pub use file::FileConfig;
pub use manifest::ManifestConfig;
pub use shell::ShellConfig;
pub use shell_local::ShellLocalConfig;

pub const SUPPORTED_BUILDERS: &[&str] = &["amazon-ebs"];
pub const SUPPORTED_PROVISIONERS: &[&str] = &["file", "shell", "shell-local"];
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
}

impl ProvisionerConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProvisionerConfig::Shell(_) => "shell",
            ProvisionerConfig::File(_) => "file",
            ProvisionerConfig::ShellLocal(_) => "shell-local",
        }
    }

    /// `pause_before`, `max_retries`, `timeout`.
    pub fn meta(&self) -> &ProvisionerMeta {
        match self {
            ProvisionerConfig::Shell(c) => &c.meta,
            ProvisionerConfig::File(c) => &c.meta,
            ProvisionerConfig::ShellLocal(c) => &c.meta,
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
