//! The goss provisioner, as the community plugin (github.com/YaleUniversity/goss) runs it: the same
//! remote commands, word for word, so what reaches the instance is what Packer with the plugin sends.
//!
//! 1. `mkdir -p 'REMOTE_PATH'`;
//! 2. unless `skip_install`: `curl -L … -o PATH URL || wget … -O PATH URL`, then `chmod 555 PATH && PATH
//!    --version`;
//! 3. the vars file and the tests uploaded to `REMOTE_PATH` (files 0644, directories' contents);
//! 4. `goss render`, `goss render -d` (into `/tmp/goss-spec.yaml` and `/tmp/debug-goss-spec.yaml`) and
//!    `goss validate`, each `cd REMOTE_PATH && …`; a failure fails the build unless `inspect`;
//! 5. both rendered specs downloaded into the current directory.
//!
//! Deliberate differences (docs/provisioners.md): the plugin runs the three goss commands in Go's map
//! order (it varies); bake runs render, render -d, validate. `vars_env` values that the remote shell
//! would expand are refused at validate; a `'` in `vars_inline`'s JSON is escaped for the shell.

use crate::context::ProvisionContext;
use crate::error::ProvisionError;
use crate::sink::UiSink;
use bakery_template::schema::goss::GossConfig;
use std::path::Path;

const P: &str = "goss";

/// Where goss renders the specs on the instance (the plugin's paths).
pub const SPEC_FILE: &str = "/tmp/goss-spec.yaml";
/// Where goss renders the debug spec on the instance.
pub const DEBUG_SPEC_FILE: &str = "/tmp/debug-goss-spec.yaml";

pub(crate) async fn run(
    cfg: &GossConfig,
    cx: &mut ProvisionContext<'_>,
) -> Result<(), ProvisionError> {
    let b = cx.build_name.clone();
    cx.ui.say(&b, "Provisioning with Goss");
    cx.ui
        .say(&b, &format!("Configured to run on {}", cfg.target_os));
    cx.ui
        .message(&b, &format!("Creating directory: {}", cfg.remote_path));
    run_command(cx, &mkdir(&cfg.remote_path), "mkdir", false).await?;
    if cfg.skip_install {
        cx.ui.message(&b, "Skipping Goss installation");
    } else {
        cx.ui
            .message(&b, &format!("Installing Goss from, {}", cfg.url));
        cx.ui
            .message(&b, &format!("Downloading Goss to {}", cfg.download_path));
        run_command(cx, &install_command(cfg), "download", false).await?;
        run_command(
            cx,
            &format!("chmod 555 {0} && {0} --version", cfg.download_path),
            "install",
            false,
        )
        .await?;
    }
    cx.ui.say(&b, "Uploading goss tests...");
    if !cfg.vars_file.is_empty() && Path::new(&cfg.vars_file).is_file() {
        cx.ui
            .message(&b, &format!("Uploading vars file {}", cfg.vars_file));
        upload_file(cx, &cfg.vars_file, &remote_in(cfg, &cfg.vars_file)).await?;
    }
    if !cfg.vars_inline.is_empty() {
        cx.ui
            .message(&b, &format!("Inline variables are {}", inline_vars(cfg)));
    }
    if !cfg.vars_env.is_empty() {
        cx.ui
            .message(&b, &format!("Env variables are {}", env_vars(cfg)));
    }
    for src in &cfg.tests {
        let meta = std::fs::metadata(src).map_err(|source| ProvisionError::Local {
            provisioner: P,
            op: "reading test",
            path: src.into(),
            source,
        })?;
        let dst = remote_in(cfg, src);
        if meta.is_file() {
            cx.ui.message(&b, &format!("Uploading {src}"));
            upload_file(cx, src, &dst).await?;
        } else if meta.is_dir() {
            cx.ui.message(&b, &format!("Uploading Dir {src}"));
            cx.ui.message(&b, &format!("Creating directory: {dst}"));
            run_command(cx, &mkdir(&dst), "mkdir", false).await?;
            let contents = format!("{}/", src.trim_end_matches('/'));
            cx.comm
                .upload_path(Path::new(&contents), &dst)
                .await
                .map_err(|source| ssh(format!("uploading {contents} => {dst}"), source))?;
        } else {
            cx.ui
                .message(&b, &format!("Ignoring {src}... not a regular file"));
        }
    }
    cx.ui.say(&b, "\n\n\nRunning goss tests...");
    for (what, command) in goss_commands(cfg) {
        cx.ui
            .say(&b, &format!("Running GOSS {what} command: {command}"));
        run_command(cx, &command, what, cfg.inspect).await?;
    }
    cx.ui.say(&b, "\n\n\nDownloading spec file and debug info");
    cx.ui.message(
        &b,
        &format!("Downloading Goss specs from, {SPEC_FILE} and {DEBUG_SPEC_FILE} to current dir"),
    );
    for remote in [SPEC_FILE, DEBUG_SPEC_FILE] {
        let local = Path::new(remote.rsplit('/').next().unwrap_or(remote));
        cx.comm
            .download_path(remote, local)
            .await
            .map_err(|source| ssh(format!("downloading {remote}"), source))?;
    }
    Ok(())
}

fn ssh(what: String, source: bakery_ssh::SshError) -> ProvisionError {
    ProvisionError::Ssh {
        provisioner: P,
        what,
        source: Box::new(source),
    }
}

/// Uploads one local file as the plugin does (`comm.Upload` without file info: mode 0644).
async fn upload_file(
    cx: &mut ProvisionContext<'_>,
    src: &str,
    dst: &str,
) -> Result<(), ProvisionError> {
    let data = std::fs::read(src).map_err(|source| ProvisionError::Local {
        provisioner: P,
        op: "reading",
        path: src.into(),
        source,
    })?;
    cx.comm
        .upload_bytes(&data, dst, 0o644)
        .await
        .map_err(|source| ssh(format!("uploading {src} => {dst}"), source))
}

/// Runs one command with its output on the UI; a non-zero exit fails unless `inspect` (then it is
/// reported, as the plugin does).
async fn run_command(
    cx: &mut ProvisionContext<'_>,
    command: &str,
    what: &str,
    inspect: bool,
) -> Result<(), ProvisionError> {
    let b = cx.build_name.clone();
    let mut sink = UiSink::new(cx.ui, &b);
    let status = cx
        .comm
        .exec(command, &mut sink)
        .await
        .map_err(|source| ssh(format!("running goss {what}"), source))?;
    let is_goss = matches!(what, "render" | "render debug" | "validate");
    if status.success() {
        if is_goss {
            cx.ui.say(&b, &format!("Goss {what} ran successfully"));
        }
        return Ok(());
    }
    if inspect && is_goss {
        cx.ui.say(&b, &format!("Goss {what} failed"));
        cx.ui
            .say(&b, "Inspect mode on : proceeding without failing Packer");
        return Ok(());
    }
    Err(ProvisionError::Invalid {
        provisioner: P,
        message: format!("goss {what}: non-zero exit status ({status}): {command}"),
    })
}

/// `mkdir -p 'DIR'`, as the plugin writes it.
fn mkdir(dir: &str) -> String {
    format!("mkdir -p '{dir}'")
}

/// `REMOTE_PATH/<base name of local>`.
fn remote_in(cfg: &GossConfig, local: &str) -> String {
    let base = Path::new(local.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    format!("{}/{base}", cfg.remote_path.trim_end_matches('/'))
}

/// The download, curl first and wget if that fails, with the plugin's spacing.
pub fn install_command(cfg: &GossConfig) -> String {
    let (curl_ssl, wget_ssl) = if cfg.skip_ssl {
        ("-k", "--no-check-certificate")
    } else {
        ("", "")
    };
    let (curl_user, wget_user) = match (cfg.username.is_empty(), cfg.password.is_empty()) {
        (true, _) => (String::new(), String::new()),
        (false, true) => (
            format!("-u {}", cfg.username),
            format!("--user={}", cfg.username),
        ),
        (false, false) => (
            format!("-u {}:{}", cfg.username, cfg.password),
            format!("--user={} --password={}", cfg.username, cfg.password),
        ),
    };
    format!(
        "curl -L {curl_ssl} {curl_user} -o {0} {1} || wget {wget_ssl} {wget_user} -O {0} {1}",
        cfg.download_path, cfg.url
    )
}

/// `K="V" ` for each `vars_env` entry (sorted by name), the plugin's form.
pub fn env_vars(cfg: &GossConfig) -> String {
    cfg.vars_env
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\" "))
        .collect()
}

/// `--vars-inline 'JSON'` (keys sorted, `<>&` escaped as Go's encoder does), or nothing.
pub fn inline_vars(cfg: &GossConfig) -> String {
    if cfg.vars_inline.is_empty() {
        return String::new();
    }
    let json = serde_json::to_string(&cfg.vars_inline)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "'\\''");
    format!("--vars-inline '{json}'")
}

/// The three goss commands, in the order bake runs them, with the plugin's text.
pub fn goss_commands(cfg: &GossConfig) -> Vec<(&'static str, String)> {
    let goss = &cfg.download_path;
    let gossfile = if cfg.goss_file.is_empty() {
        String::new()
    } else {
        format!("--gossfile {}", cfg.goss_file)
    };
    let vars = if cfg.vars_file.is_empty() {
        String::new()
    } else {
        format!("--vars {}", remote_in(cfg, &cfg.vars_file))
    };
    let env = env_vars(cfg);
    let inline = inline_vars(cfg);
    let rp = &cfg.remote_path;
    let sudo = if cfg.use_sudo { "sudo" } else { "" };
    let format = if cfg.format.is_empty() {
        String::new()
    } else {
        format!("-f {}", cfg.format)
    };
    let options = if cfg.format_options.is_empty() {
        String::new()
    } else {
        format!("-o {}", cfg.format_options)
    };
    vec![
        (
            "render",
            format!("cd {rp} && {env} {goss} {gossfile} {vars} {inline} render > {SPEC_FILE}"),
        ),
        (
            "render debug",
            format!(
                "cd {rp} && {env} {goss} {gossfile} {vars} {inline} render -d > {DEBUG_SPEC_FILE}"
            ),
        ),
        (
            "validate",
            format!(
                "cd {rp} && {sudo} {env} {goss} {gossfile} {vars} {inline} validate --retry-timeout {} --sleep {} {format} {options}",
                cfg.retry_timeout, cfg.sleep
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::provisioner;
    use bakery_template::ProvisionerConfig;

    fn goss(json: &str) -> GossConfig {
        match provisioner(json) {
            ProvisionerConfig::Goss(g) => *g,
            other => panic!("not goss: {other:?}"),
        }
    }

    /// image-builder's provisioner, with its goss-args.json values: the plugin's commands, word for word.
    #[test]
    fn image_builders_goss_step_gives_the_plugins_commands() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join("goss");
        std::fs::create_dir(&tests).unwrap();
        let vars = tests.join("goss-vars.yaml");
        std::fs::write(&vars, "x: 1\n").unwrap();
        let g = goss(&format!(
            r#"{{"type":"goss","arch":"amd64","download_path":"","format":"json","format_options":"pretty",
            "goss_file":"goss/goss.yaml","inspect":"false","remote_folder":"","remote_path":"","skip_install":"false",
            "tests":["{}"],"url":"","use_sudo":true,"vars_file":"{}","version":"0.3.23",
            "vars_inline":{{"OS":"ubuntu","ARCH":"amd64","PROVIDER":"amazon"}}}}"#,
            tests.display(),
            vars.display()
        ));
        assert_eq!(g.download_path, "/tmp/goss-0.3.23-linux-amd64");
        assert_eq!(g.remote_path, "/tmp/goss");
        assert!(!g.inspect && !g.skip_install && g.use_sudo);
        assert_eq!(
            install_command(&g),
            "curl -L   -o /tmp/goss-0.3.23-linux-amd64 https://github.com/goss-org/goss/releases/download/v0.3.23/goss-linux-amd64 || wget   -O /tmp/goss-0.3.23-linux-amd64 https://github.com/goss-org/goss/releases/download/v0.3.23/goss-linux-amd64"
        );
        let cmds = goss_commands(&g);
        let inline = r#"--vars-inline '{"ARCH":"amd64","OS":"ubuntu","PROVIDER":"amazon"}'"#;
        assert_eq!(
            cmds[2].1,
            format!(
                "cd /tmp/goss && sudo  /tmp/goss-0.3.23-linux-amd64 --gossfile goss/goss.yaml --vars /tmp/goss/goss-vars.yaml {inline} validate --retry-timeout 0s --sleep 1s -f json -o pretty"
            )
        );
        assert_eq!(
            cmds[0].1,
            format!(
                "cd /tmp/goss &&  /tmp/goss-0.3.23-linux-amd64 --gossfile goss/goss.yaml --vars /tmp/goss/goss-vars.yaml {inline} render > /tmp/goss-spec.yaml"
            )
        );
        assert!(cmds[1].1.ends_with("render -d > /tmp/debug-goss-spec.yaml"));
    }

    #[test]
    fn a_given_url_names_the_download_path_and_credentials_reach_curl_and_wget() {
        let dir = tempfile::tempdir().unwrap();
        let g = goss(&format!(
            r#"{{"type":"goss","tests":["{}"],"url":"https://mirror.example/goss/v0.4.9/goss-linux-arm64",
            "username":"u","password":"p","skip_ssl":true,"vars_env":{{"B":"2","A":"1"}}}}"#,
            dir.path().display()
        ));
        assert_eq!(g.download_path, "/tmp/goss-0.4.9-linux-arm64");
        let c = install_command(&g);
        assert!(
            c.starts_with("curl -L -k -u u:p -o /tmp/goss-0.4.9-linux-arm64 "),
            "{c}"
        );
        assert!(
            c.contains("|| wget --no-check-certificate --user=u --password=p -O "),
            "{c}"
        );
        assert_eq!(env_vars(&g), "A=\"1\" B=\"2\" ");
    }

    #[test]
    fn bad_options_are_refused_at_validate() {
        let dir = tempfile::tempdir().unwrap();
        for (json, expected) in [
            (r#"{"type":"goss"}"#.to_string(), "tests must be specified"),
            (
                format!(
                    r#"{{"type":"goss","tests":["{}"],"format":"xml"}}"#,
                    dir.path().display()
                ),
                "Invalid format choice xml",
            ),
            (
                format!(
                    r#"{{"type":"goss","tests":["{}"],"target_os":"Windows"}}"#,
                    dir.path().display()
                ),
                "target_os Windows is not supported",
            ),
            (
                format!(
                    r#"{{"type":"goss","tests":["{}"],"vars_env":{{"A":"$(id)"}}}}"#,
                    dir.path().display()
                ),
                "vars_env A",
            ),
            (
                r#"{"type":"goss","tests":["/nonexistent/goss.yaml"]}"#.to_string(),
                "Bad test '/nonexistent/goss.yaml'",
            ),
        ] {
            let text = format!(
                r#"{{"builders":[{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-12345678","instance_type":"t2.micro","ssh_username":"ubuntu","ami_name":"test-ami"}}],"provisioners":[{json}]}}"#
            );
            let path = std::path::Path::new("/nonexistent/template.json");
            let tpl = bakery_template::template::parse_text(path, path, text).unwrap();
            let err = bakery_template::load::load_template(tpl, &Default::default())
                .expect_err(expected)
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
