//! Secrets stay secret: a sensitive `-var` holding `'`, `"`, `\`, a newline and a PEM key never shows in
//! bake's terminal output (human, `--json`, `-machine-readable`), `PACKER_LOG`'s log, the manifest, the run journal or an
//! error message — not whole, not escaped, not line by line — and the journal is 0600 in a 0700
//! directory.

use crate::common::{Running, SERIAL, Scratch, assert_nothing_left, clients, template, text};
use bakery_lab::Lab;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A secret in every shape that has broken masking: quotes, a backslash, a newline, and PEM lines.
fn secret() -> String {
    format!(
        "it's \"quoted\" \\ back\n{}",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n\
         b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
         QyNTUxOQAAACBxTGFiU2VjcmV0VmFsdWVGb3JCYWtlcnlUZXN0c0FBQUFBQUFBAAAAkA\n\
         -----END OPENSSH PRIVATE KEY-----"
    )
}

/// Every text that would give the secret away: whole, JSON-escaped, shell-quoted, and each line.
fn giveaways(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let mut out = vec![
        secret.to_string(),
        json.trim_matches('"').to_string(),
        secret.replace('\'', r"'\''"),
        secret.replace('\'', r#"'"'"'"#),
    ];
    out.extend(
        secret
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= 6)
            .map(str::to_string),
    );
    out
}

fn assert_hidden(what: &str, shown: &str, secret: &str) {
    for g in giveaways(secret) {
        assert!(
            !shown.contains(&g),
            "{what} shows the secret ({g:?}):\n{shown}"
        );
    }
}

/// Every file under `dir`, with its content.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap_or_default()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensitive_variable_never_shows_in_any_output_mode_manifest_journal_or_error() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let secret = secret();
    let assignment = format!("db_password={secret}");
    let vars = lab.var_file();
    for mode in ["human", "--json", "-machine-readable"] {
        let s = Scratch::new(lab, "secrets");
        let name = lab.unique("secrets");
        // The instance prints the secret (each line of it), the manifest's custom data holds it.
        let provisioners = r#"[{"type":"shell","environment_vars":["DB_PASSWORD={{user `db_password`}}"],
            "inline":["printf '%s\n' \"$DB_PASSWORD\""]}],
            "post-processors": [{"type": "manifest", "output": "manifest.json",
            "custom_data": {"password": "{{user `db_password`}}"}}]"#;
        let tpl = template(&name, "", provisioners).replacen(
            r#""variables": {"#,
            r#""sensitive-variables": ["db_password"], "variables": { "db_password": "","#,
            1,
        );
        let tpl = s.write("t.json", &tpl);
        let mut args = vec![
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &assignment,
            tpl.to_str().unwrap(),
        ];
        if mode != "human" {
            args.insert(0, mode);
        }
        // Packer's debug log too (PACKER_LOG to a file: created 0600, masked like the terminal).
        let log = s.dir.join("packer.log");
        let out = s
            .bake(lab, lab.moto_url(), &args)
            .env("PACKER_LOG", "1")
            .env("PACKER_LOG_PATH", &log)
            .output()
            .unwrap();
        let shown = text(&out);
        assert!(out.status.success(), "{mode}: {shown}");
        assert_hidden(mode, &shown, &secret);
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_hidden("PACKER_LOG_PATH", &logged, &secret);
        assert!(
            logged.contains("[INFO] ui: ") && logged.contains("<sensitive>"),
            "the log holds the masked output: {logged}"
        );
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            shown.contains("<sensitive>"),
            "{mode}: the remote output is masked, not missing: {shown}"
        );
        let manifest = std::fs::read_to_string(s.dir.join("manifest.json")).unwrap();
        assert_hidden("the manifest", &manifest, &secret);
        let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            parsed["builds"][0]["custom_data"]["password"], "<sensitive>",
            "{manifest}"
        );
        crate::common::remove_amis_named(&c, &name).await;
    }
    // A killed run leaves its journal (for `bake cleanup`): masked, 0600 in a 0700 directory.
    let s = Scratch::new(lab, "secrets-killed");
    let name = lab.unique("secrets-killed");
    let tpl = template(
        &name,
        "",
        r#"[{"type":"shell","environment_vars":["DB_PASSWORD={{user `db_password`}}"],
            "inline":["printf '%s\n' \"$DB_PASSWORD\"", "sleep 60"]}]"#,
    )
    .replacen(
        r#""variables": {"#,
        r#""sensitive-variables": ["db_password"], "variables": { "db_password": "","#,
        1,
    );
    let tpl = s.write("t.json", &tpl);
    let args = [
        "-var-file",
        vars.to_str().unwrap(),
        "-var",
        &assignment,
        tpl.to_str().unwrap(),
    ];
    let mut running = Running::spawn(s.bake(lab, lab.moto_url(), &args));
    running.wait_for("<sensitive>");
    running.signal("-KILL");
    let (_, shown) = running.finish();
    assert_hidden("a killed run's output", &shown, &secret);
    let state = s.dir.join("state");
    let journals = files_under(&state);
    assert!(!journals.is_empty(), "no journal under {}", state.display());
    for (path, content) in &journals {
        assert_hidden(&path.display().to_string(), content, &secret);
        assert!(content.contains("db_password=<sensitive>"), "{content}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let dir = path.parent().unwrap();
        let dir_mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700, "{}", dir.display());
    }
    let cleanup = s.run(lab, lab.moto_url(), &["cleanup"]);
    let cleaned = text(&cleanup);
    assert!(cleanup.status.success(), "{cleaned}");
    assert_hidden("bake cleanup", &cleaned, &secret);

    // An error that quotes the secret (a script path made of it) is masked too.
    let s = Scratch::new(lab, "secrets-error");
    let name = lab.unique("secrets-error");
    let tpl = template(
        &name,
        "",
        r#"[{"type":"shell","scripts":["{{user `db_password`}}"]}]"#,
    )
    .replacen(
        r#""variables": {"#,
        r#""sensitive-variables": ["db_password"], "variables": { "db_password": "","#,
        1,
    );
    let tpl = s.write("t.json", &tpl);
    let out = s.run(
        lab,
        lab.moto_url(),
        &[
            "-var-file",
            vars.to_str().unwrap(),
            "-var",
            &assignment,
            tpl.to_str().unwrap(),
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_hidden("the error", &shown, &secret);
    assert!(shown.contains("<sensitive>"), "{shown}");
    assert_nothing_left(&c, "after the secret bakes").await;
}

/// `-debug` keeps the temporary key as `ec2_<build>.pem` (0600) while the build runs, and deletes it
/// with the key pair: no key file survives the run.
#[tokio::test(flavor = "multi_thread")]
async fn the_debug_key_file_is_private_while_the_build_runs_and_gone_after() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "debug-key");
    let name = lab.unique("debug-key");
    let tpl = s.write(
        "t.json",
        &template(
            &name,
            r#", "skip_create_ami": true"#,
            r#"[{"type":"shell","inline":["echo provisioning", "sleep 2"]}]"#,
        ),
    );
    let vars = lab.var_file();
    let args = [
        "-debug",
        "-var-file",
        vars.to_str().unwrap(),
        tpl.to_str().unwrap(),
    ];
    let mut running = Running::spawn(s.bake(lab, lab.moto_url(), &args));
    running.wait_for("provisioning");
    let key = s.dir.join("ec2_amazon-ebs.pem");
    let mode = std::fs::metadata(&key)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; output:\n{}",
                key.display(),
                running.seen.join("\n")
            )
        })
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let (code, shown) = running.finish();
    assert_eq!(code, Some(0), "{shown}");
    assert!(!key.exists(), "the debug key survived the run: {shown}");
    assert_nothing_left(&c, "after the -debug bake").await;
}
