//! What `bake build` is asked to do, as plain values: the front end fills in a [`BuildConfig`] from its
//! flags and [`BuildConfig::validate`]s it once; nothing after that sees a raw flag.

use crate::amazon_ebs::console_keys::HostKeyCheck;
use bakery_core::pipeline::OnError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Template variables and build selection, applied to every template of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarOptions {
    /// `-var K=V`, in order (they win over every var-file).
    pub vars: Vec<(String, String)>,
    /// `-var-file F`, in order (later files win).
    pub var_files: Vec<PathBuf>,
    /// `-only`: the builds to run.
    pub only: Vec<String>,
    /// `-except`: the builds (or post-processors) to skip.
    pub except: Vec<String>,
}

/// A `bake build` run's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildConfig {
    /// The templates, run in order.
    pub templates: Vec<PathBuf>,
    /// Variables and build selection (every template).
    pub vars: VarOptions,
    /// Replace an existing AMI of the same name; start manifest files afresh.
    pub force: bool,
    /// What to do when a build fails.
    pub on_error: OnError,
    /// How many builds run at once (0: all).
    pub parallel_builds: usize,
    /// Builds one at a time, keeping the temporary private key.
    pub debug: bool,
    /// Print the plan, calling only read-only AWS APIs.
    pub dry_run: bool,
    /// After success, write the AMI id to this SSM parameter.
    pub publish_ssm: Option<String>,
    /// Pass each template's AMI (build region) to the next as this user variable.
    pub pass_ami: Option<String>,
    /// An endpoint URL for every AWS service.
    pub endpoint_url: Option<String>,
    /// Bake each template once per file, the file's stem labelling its builds.
    pub each_var_files: Vec<PathBuf>,
    /// The command line, as the run journal records it.
    pub command_line: String,
    /// How the instances' SSH host keys are checked (`--host-key-check`, `BAKERY_HOST_KEY_CHECK`).
    pub host_key_check: HostKeyCheck,
    /// Where every build connects instead (`BAKERY_SSH_HOST`, `BAKERY_SSH_PORT`).
    pub ssh_override: super::SshOverride,
}

/// A combination of options that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--each-var-file` with `-pass-ami`.
    #[error(
        "--each-var-file cannot be combined with -pass-ami: each template builds one AMI per var-file, so there is no single AMI to pass to the next template (run one bake per var-file instead)"
    )]
    EachVarFileWithPassAmi,
    /// `--each-var-file` with `--publish-ssm`.
    #[error(
        "--each-var-file cannot be combined with --publish-ssm: the runs would overwrite each other's parameter (publish from the manifest instead)"
    )]
    EachVarFileWithPublishSsm,
    /// `BAKERY_HOST_KEY_CHECK` set to something else than `pin` or `console`.
    #[error("BAKERY_HOST_KEY_CHECK={0:?}: expected pin or console")]
    HostKeyCheckEnv(String),
    /// `BAKERY_SSH_HOST`/`BAKERY_SSH_PORT` unusable (the message names the variable and value).
    #[error("{0}")]
    SshOverrideEnv(String),
    /// An `--each-var-file` without a file name to label its builds with.
    #[error("--each-var-file {}: not a file name", .0.display())]
    NotAFileName(PathBuf),
    /// Two `--each-var-file`s with the same stem.
    #[error(
        "--each-var-file {} and {} would both label their builds \"{label}\"; give every var-file its own name",
        .first.display(),
        .second.display()
    )]
    SameLabel {
        /// The earlier file.
        first: PathBuf,
        /// The later file.
        second: PathBuf,
        /// Their common stem.
        label: String,
    },
}

/// The label an `--each-var-file` gives its builds: its stem, when it has one.
pub fn label(each_var_file: &Path) -> Option<String> {
    each_var_file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .filter(|s| !s.is_empty())
}

impl BuildConfig {
    /// The configuration, or every combination of options that makes no sense, in the order of the flags.
    pub fn validate(self) -> Result<Self, Vec<ConfigError>> {
        if self.each_var_files.is_empty() {
            return Ok(self);
        }
        let mut errors = Vec::new();
        if self.pass_ami.is_some() {
            errors.push(ConfigError::EachVarFileWithPassAmi);
        }
        if self.publish_ssm.is_some() {
            errors.push(ConfigError::EachVarFileWithPublishSsm);
        }
        let mut labels: BTreeMap<String, &Path> = BTreeMap::new();
        for f in &self.each_var_files {
            let Some(stem) = label(f) else {
                errors.push(ConfigError::NotAFileName(f.clone()));
                continue;
            };
            if let Some(prev) = labels.insert(stem.clone(), f) {
                errors.push(ConfigError::SameLabel {
                    first: prev.to_path_buf(),
                    second: f.clone(),
                    label: stem,
                });
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn each(files: &[&str]) -> BuildConfig {
        BuildConfig {
            templates: vec!["t.json".into()],
            each_var_files: files.iter().map(PathBuf::from).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn without_each_var_file_anything_goes() {
        let c = BuildConfig {
            pass_ami: Some("SOURCE_ID".into()),
            publish_ssm: Some("/app/ami".into()),
            ..each(&[])
        };
        assert_eq!(c.clone().validate(), Ok(c));
    }

    #[test]
    fn every_bad_combination_is_reported_at_once() {
        let c = BuildConfig {
            pass_ami: Some("SOURCE_ID".into()),
            publish_ssm: Some("/app/ami".into()),
            ..each(&["a/web.json", "b/web.json", "db.json", "/"])
        };
        let errors = c.validate().unwrap_err();
        assert_eq!(
            errors,
            [
                ConfigError::EachVarFileWithPassAmi,
                ConfigError::EachVarFileWithPublishSsm,
                ConfigError::SameLabel {
                    first: "a/web.json".into(),
                    second: "b/web.json".into(),
                    label: "web".into()
                },
                ConfigError::NotAFileName("/".into()),
            ]
        );
        assert_eq!(
            errors[2].to_string(),
            "--each-var-file a/web.json and b/web.json would both label their builds \"web\"; give every var-file its own name"
        );
        assert_eq!(errors[3].to_string(), "--each-var-file /: not a file name");
    }

    #[test]
    fn distinct_stems_are_labels() {
        let c = each(&["a/web.json", "db.json"]);
        assert_eq!(c.clone().validate(), Ok(c));
        assert_eq!(label(Path::new("a/web.json")).as_deref(), Some("web"));
    }
}
