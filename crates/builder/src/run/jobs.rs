//! The jobs of a run and how their templates are loaded: one job per template, or, with
//! `--each-var-file`, one per template and var-file. [`check`] loads every job before anything is created.

use super::config::{BuildConfig, label};
use bakery_template::{Diagnostics, LoadOptions, Loaded};
use std::path::PathBuf;

/// A placeholder for `-pass-ami` variables while checking templates before the AMI exists.
const PLACEHOLDER_AMI: &str = "ami-00000000000000000";

/// One bake of a template: with `--each-var-file`, one per var-file, whose stem labels its builds.
#[derive(Debug, Clone)]
pub struct Job {
    template: PathBuf,
    each: Option<PathBuf>,
    label: Option<String>,
}

impl Job {
    /// How errors name this job: the template, and the var-file that makes it one of several.
    pub fn describe(&self) -> String {
        match &self.each {
            Some(f) => format!(
                "{} with --each-var-file {}",
                self.template.display(),
                f.display()
            ),
            None => self.template.display().to_string(),
        }
    }

    /// The name a build of this job is shown (and recorded in manifests) under.
    pub fn build_name(&self, rendered: &str) -> String {
        match &self.label {
            Some(l) => format!("{rendered} ({l})"),
            None => rendered.to_string(),
        }
    }

    /// Loads this job's template; `extra` variables win over every other (`-pass-ami`).
    pub fn load(
        &self,
        config: &BuildConfig,
        extra: &[(String, String)],
    ) -> Result<Loaded, Diagnostics> {
        let v = &config.vars;
        let mut opts = LoadOptions {
            vars: v.vars.clone(),
            var_files: v.var_files.clone(),
            only: v.only.clone(),
            except: v.except.clone(),
            syntax_only: false,
        };
        // Packer's precedence: later var-files win, -var wins over every file.
        opts.var_files.extend(self.each.clone());
        opts.vars.extend(extra.iter().cloned());
        bakery_template::load(&self.template, &opts)
    }
}

/// Prints a job's diagnostics on stderr, then how many errors they hold.
pub fn print_diagnostics(job: &Job, d: &Diagnostics) {
    for diag in &d.0 {
        eprintln!("{diag}");
    }
    let n = d.errors().count();
    eprintln!(
        "\n{}: {n} error{} found",
        job.describe(),
        if n == 1 { "" } else { "s" }
    );
}

/// The jobs of each template, in template order.
fn jobs(config: &BuildConfig) -> Vec<Vec<Job>> {
    config
        .templates
        .iter()
        .map(|t| {
            if config.each_var_files.is_empty() {
                return vec![Job {
                    template: t.clone(),
                    each: None,
                    label: None,
                }];
            }
            config
                .each_var_files
                .iter()
                .map(|f| Job {
                    template: t.clone(),
                    each: Some(f.clone()),
                    label: label(f),
                })
                .collect()
        })
        .collect()
}

/// A run's templates, every one of them loaded once without errors.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The jobs of each template, in template order.
    pub groups: Vec<Vec<Job>>,
    /// Every sensitive value of every job, for the `Ui` to mask.
    pub secrets: Vec<String>,
}

impl Checked {
    /// Every job with the index of its template.
    pub fn jobs(&self) -> impl Iterator<Item = (usize, &Job)> {
        self.groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.iter().map(move |j| (i, j)))
    }
}

/// Some template did not load; its diagnostics are on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid template")]
pub struct TemplatesInvalid;

/// Loads every template (with every var-file), printing warnings and diagnostics on stderr, before
/// anything is created. `config` has been validated.
pub fn check(config: &BuildConfig) -> Result<Checked, TemplatesInvalid> {
    let mut checked = Checked {
        groups: jobs(config),
        secrets: Vec::new(),
    };
    let mut invalid = false;
    let mut secrets = Vec::new();
    for (i, job) in checked.jobs() {
        let extra: Vec<(String, String)> = match (&config.pass_ami, i) {
            (Some(var), i) if i > 0 => vec![(var.clone(), PLACEHOLDER_AMI.to_string())],
            _ => vec![],
        };
        match job.load(config, &extra) {
            Ok(l) => {
                secrets.extend(l.secrets.values().iter().cloned());
                for w in &l.warnings {
                    eprintln!("{w}");
                }
            }
            Err(d) => {
                print_diagnostics(job, &d);
                invalid = true;
            }
        }
    }
    if invalid {
        return Err(TemplatesInvalid);
    }
    checked.secrets = secrets;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_var_file_makes_one_job_per_template_and_file() {
        let config = BuildConfig {
            templates: vec!["a.json".into(), "b.json".into()],
            each_var_files: vec!["vars/web.json".into(), "db.json".into()],
            ..Default::default()
        };
        let groups = jobs(&config);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[1][0].describe(),
            "b.json with --each-var-file vars/web.json"
        );
        assert_eq!(groups[1][1].build_name("amazon-ebs"), "amazon-ebs (db)");
    }

    #[test]
    fn without_each_var_file_a_template_is_one_job() {
        let config = BuildConfig {
            templates: vec!["a.json".into()],
            ..Default::default()
        };
        let groups = jobs(&config);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 1);
        assert_eq!(groups[0][0].describe(), "a.json");
        assert_eq!(groups[0][0].build_name("amazon-ebs"), "amazon-ebs");
    }

    #[test]
    fn a_template_that_does_not_load_fails_the_check() {
        let config = BuildConfig {
            templates: vec!["/nonexistent/bakery-template.json".into()],
            ..Default::default()
        };
        assert_eq!(check(&config).unwrap_err(), TemplatesInvalid);
    }
}
