//! Real configurations for unit tests: decoded from template JSON by
//! bakery-template, exactly as the build pipeline gets them.

use std::path::Path;

use bakery_template::load::load_template;
use bakery_template::template::parse_text;
use bakery_template::{Build, LoadOptions, PostProcessorConfig, ProvisionerConfig};

/// Loads a template with one amazon-ebs builder plus `extra` root members
/// (e.g. `"provisioners": [...]`), with `-var` values `vars`.
pub fn load_build(extra: &str, vars: &[(&str, &str)]) -> (Build, bakery_template::Secrets) {
    let text = format!(
        r#"{{"builders":[{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-12345678","instance_type":"t2.micro","ssh_username":"ubuntu","ami_name":"test-ami"}}],{extra}}}"#
    );
    let path = Path::new("/nonexistent/template.json");
    let tpl = parse_text(path, path, text).unwrap_or_else(|d| panic!("{d}"));
    let opts = LoadOptions {
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    let mut loaded = load_template(tpl, &opts).unwrap_or_else(|d| panic!("{d}"));
    (loaded.builds.remove(0), loaded.secrets)
}

/// The only provisioner of a template with `provisioner` (a JSON object).
pub fn provisioner(provisioner: &str) -> ProvisionerConfig {
    let (mut build, _) = load_build(&format!(r#""provisioners":[{provisioner}]"#), &[]);
    build.provisioners.remove(0)
}

/// The only post-processor of a template with `pp` (a JSON object).
pub fn post_processor(
    pp: &str,
    vars: &[(&str, &str)],
    sensitive: &[&str],
) -> (PostProcessorConfig, bakery_template::Secrets) {
    let decls: Vec<String> = vars.iter().map(|(k, _)| format!(r#""{k}":"""#)).collect();
    let sens: Vec<String> = sensitive.iter().map(|s| format!(r#""{s}""#)).collect();
    let extra = format!(
        r#""variables":{{{}}},"sensitive-variables":[{}],"post-processors":[{pp}]"#,
        decls.join(","),
        sens.join(",")
    );
    let (mut build, secrets) = load_build(&extra, vars);
    (build.post_processors.remove(0).remove(0), secrets)
}
