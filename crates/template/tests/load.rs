//! Loading templates end to end: parsing, variables, decoding, validation,
//! late fields, secrets. Expectations come from Packer 1.6.6's observed
//! behaviour (see the comments) or from its source where noted.

use bakery_template::{
    Diagnostics, LateContext, LoadOptions, Loaded, PostProcessorConfig, ProvisionerConfig, load,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads `text` from a temporary file (relative paths in it resolve against
/// the crate directory, the test's working directory).
fn load_text(text: &str, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.json");
    std::fs::write(&path, text).unwrap();
    load(&path, opts)
}

fn errors(d: &Diagnostics) -> Vec<String> {
    d.errors().map(|e| e.message.clone()).collect()
}

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A valid amazon-ebs builder object with `extra` members spliced in.
fn ebs(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-12345678","instance_type":"t2.micro","ssh_username":"ubuntu","ami_name":"test-ami"{sep}{extra}}}"#
    )
}

fn only_build(l: &Loaded) -> &bakery_template::AmazonEbsConfig {
    assert_eq!(l.builds.len(), 1);
    l.builds[0].builder.as_amazon_ebs().unwrap()
}

#[test]
fn primal_loads_with_required_variables_given() {
    let o = LoadOptions {
        vars: vars(&[
            ("SOURCE_AMI", "ami-0abc"),
            ("VPC_ID", "vpc-1"),
            ("SUBNET_ID", "subnet-1"),
        ]),
        ..opts()
    };
    let l = load(&fixture("primal.json"), &o).unwrap_or_else(|d| panic!("{d}"));
    let c = only_build(&l);
    assert_eq!(c.run.source_ami.as_deref(), Some("ami-0abc"));
    assert_eq!(c.run.vpc_id.as_deref(), Some("vpc-1"));
    assert_eq!(c.run.instance_type.as_deref(), Some("t2.micro"));
    // "true" decodes to a boolean; the comma list drops the build region.
    assert_eq!(c.run.associate_public_ip_address, Some(true));
    assert_eq!(c.ami.ami_regions, ["us-west-1", "us-west-2"]);
    assert!(c.ami.ami_name.starts_with("primal-"));
    assert_eq!(l.builds[0].name, "amazon-ebs");
    assert_eq!(l.builds[0].provisioners.len(), 2);
    assert_eq!(l.builds[0].post_processors.len(), 1);
    // Packer's defaults.
    assert_eq!(c.comm.ssh_port, 22);
    assert_eq!(c.comm.ssh_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.comm.ssh_handshake_attempts, Some(10));
    assert_eq!(c.run.shutdown_behavior, "stop");
    // Unset: bakery picks a narrower default than Packer's 0.0.0.0/0 at build time.
    assert!(c.run.temporary_security_group_source_cidrs.is_empty());
    assert_eq!(c.access.max_retries, 10);
    assert_eq!(c.comm.ssh_file_transfer_method, "scp");
    assert_eq!(c.comm.ssh_keep_alive_interval, Some(Duration::from_secs(5)));
    // Unset: left to the AMI and the account (Packer 1.9.5 sent `optional`, which IMDSv2-enforced accounts refuse).
    assert_eq!(c.run.metadata_options.http_tokens, None);
}

#[test]
fn every_required_variable_is_reported_with_its_position() {
    let d = load(&fixture("primal.json"), &opts()).unwrap_err();
    let errs = errors(&d);
    assert_eq!(errs.len(), 3, "{errs:?}");
    for (e, name) in errs.iter().zip(["SOURCE_AMI", "VPC_ID", "SUBNET_ID"]) {
        assert!(
            e.starts_with(&format!("required variable not set: {name}")),
            "{e}"
        );
    }
    let first = d.errors().next().unwrap();
    assert_eq!((first.line, first.col), (Some(3), Some(5)));
    assert!(
        first
            .to_string()
            .contains("primal.json:3:5: required variable not set: SOURCE_AMI")
    );
}

#[test]
fn precedence_default_then_var_files_in_order_then_var() {
    let files = vec![fixture("vars-1.json"), fixture("vars-2.json")];
    // vars-1 sets SUBNET_ID to null: counts as set (to "").
    let l = load(
        &fixture("primal.json"),
        &LoadOptions {
            var_files: files.clone(),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.variables["SOURCE_AMI"], "ami-from-file2");
    assert_eq!(l.variables["VPC_ID"], "vpc-file1");
    assert_eq!(l.variables["SUBNET_ID"], "");
    assert_eq!(l.variables["NODE_VERSION"], "6.0.0");
    assert_eq!(l.variables["INSTANCE_TYPE"], "t2.micro");
    // Reversed files: the later file wins.
    let rev: Vec<PathBuf> = files.iter().rev().cloned().collect();
    let l = load(
        &fixture("primal.json"),
        &LoadOptions {
            var_files: rev,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.variables["SOURCE_AMI"], "ami-from-file1");
    // -var wins over every var-file, whatever the order.
    let o = LoadOptions {
        vars: vars(&[("SOURCE_AMI", "ami-cli"), ("undeclared", "kept")]),
        var_files: files,
        ..opts()
    };
    let l = load(&fixture("primal.json"), &o).unwrap();
    assert_eq!(l.variables["SOURCE_AMI"], "ami-cli");
    assert_eq!(l.variables["undeclared"], "kept");
    assert_eq!(only_build(&l).run.source_ami.as_deref(), Some("ami-cli"));
}

fn primal_loaded() -> Loaded {
    let o = LoadOptions {
        vars: vars(&[
            ("SOURCE_AMI", "ami-0abc"),
            ("VPC_ID", "vpc-1"),
            ("SUBNET_ID", "subnet-1"),
        ]),
        ..opts()
    };
    load(&fixture("primal.json"), &o).unwrap()
}

#[test]
fn late_fields_stay_unrendered_until_their_step() {
    let l = primal_loaded();
    let c = only_build(&l);
    let raw = c.ami.tags.raw();
    assert_eq!(raw["Name"], "primal {{ .SourceAMIName }}");
    assert_eq!(raw["Node"], "{{user `NODE_VERSION`}}");
    assert_eq!(
        c.ami.ami_description.as_ref().unwrap().raw(),
        "from {{ .SourceAMI }} in {{ .BuildRegion }}"
    );
    let step = LateContext {
        data: BTreeMap::from([
            ("SourceAMIName".to_string(), "ubuntu-16.04".to_string()),
            ("BuildRegion".to_string(), "us-east-1".to_string()),
            ("SourceAMI".to_string(), "ami-0abc".to_string()),
        ]),
        ..Default::default()
    };
    let tags = c.ami.tags.render(&step).unwrap();
    assert_eq!(tags["Name"], "primal ubuntu-16.04");
    assert_eq!(tags["Region"], "us-east-1");
    assert_eq!(tags["Node"], "4.2.1");
    assert_eq!(
        c.ami
            .ami_description
            .as_ref()
            .unwrap()
            .render(&step)
            .unwrap(),
        "from ami-0abc in us-east-1"
    );

    let ProvisionerConfig::Shell(sh) = &l.builds[0].provisioners[1] else {
        panic!("shell expected");
    };
    assert_eq!(
        sh.execute_command.raw(),
        "sudo -E sh -c '{{ .Vars }} {{ .Path }}'"
    );
    let run = LateContext {
        data: BTreeMap::from([
            ("Path".to_string(), "/tmp/script_1.sh".to_string()),
            ("Vars".to_string(), "A='1' ".to_string()),
        ]),
        build: BTreeMap::from([("ID".to_string(), "i-0123".to_string())]),
        ..Default::default()
    };
    assert_eq!(
        sh.execute_command.render(&run).unwrap(),
        "sudo -E sh -c 'A='1'  /tmp/script_1.sh'"
    );
    // User variables rendered when prepared; `build` kept for run time.
    assert_eq!(sh.environment_vars[0].raw(), "NODE_VERSION=4.2.1");
    assert_eq!(sh.environment_vars[1].raw(), "ID={{.ID}}");
    assert_eq!(sh.environment_vars[1].render(&run).unwrap(), "ID=i-0123");
    assert_eq!(sh.meta.pause_before, Some(Duration::from_secs(5)));
    assert_eq!(sh.meta.max_retries, 2);
    assert_eq!(sh.scripts, ["tests/fixtures/scripts/setup.sh"]);

    let PostProcessorConfig::Manifest(m) = &l.builds[0].post_processors[0][0] else {
        panic!("manifest expected");
    };
    assert_eq!(m.output, "manifest.json");
    assert!(m.strip_path);
    assert_eq!(m.custom_data["source_ami_name"].raw(), "{{.SourceAMIName}}");
    assert_eq!(m.custom_data["node"].raw(), "4.2.1");
    let art = LateContext {
        build: BTreeMap::from([("SourceAMIName".to_string(), "ubuntu-16.04".to_string())]),
        ..Default::default()
    };
    assert_eq!(
        m.custom_data["source_ami_name"].render(&art).unwrap(),
        "ubuntu-16.04"
    );
}

#[test]
fn shell_defaults_match_packer() {
    let l = load_text(
        &format!(
            r#"{{"builders":[{}],"provisioners":[{{"type":"shell","inline":"echo a, b"}}]}}"#,
            ebs("")
        ),
        &opts(),
    )
    .unwrap();
    let ProvisionerConfig::Shell(sh) = &l.builds[0].provisioners[0] else {
        panic!()
    };
    // A single string is a comma-separated list, as mapstructure decodes it.
    let lines: Vec<&str> = sh
        .inline
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.raw())
        .collect();
    assert_eq!(lines, ["echo a", " b"]);
    assert_eq!(
        sh.execute_command.raw(),
        "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
    );
    assert_eq!(sh.inline_shebang, "/bin/sh -e");
    assert_eq!(sh.remote_folder, "/tmp");
    assert!(sh.remote_path.starts_with("/tmp/script_") && sh.remote_path.ends_with(".sh"));
    assert_eq!(sh.env_var_format, "%s='%s' ");
    assert_eq!(sh.start_retry_timeout, Duration::from_secs(300));
    let ctx = LateContext {
        data: BTreeMap::from([
            ("Path".into(), "/tmp/s.sh".into()),
            ("Vars".into(), "A='1'".into()),
        ]),
        ..Default::default()
    };
    assert_eq!(
        sh.execute_command.render(&ctx).unwrap(),
        "chmod +x /tmp/s.sh; A='1' /tmp/s.sh"
    );
}

#[test]
fn weak_decoding_of_options() {
    let l = load_text(
        &format!(
            r#"{{"builders":[{}]}}"#,
            ebs(r#""ssh_pty":"1","ssh_port":"2222","encrypt_boot":"false","ena_support":"","ami_users":123456789012,"ami_groups":"all","force_deregister":1,"launch_block_device_mappings":{"device_name":"/dev/sda1","volume_size":"40","delete_on_termination":"true"},"run_tags":[{"a":"1"},{"b":2}],"ssh_timeout":"10m","aws_polling":{"delay_seconds":"5","max_attempts":"60"}"#)
        ),
        &opts(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let c = only_build(&l);
    assert!(c.comm.ssh_pty);
    assert_eq!(c.comm.ssh_port, 2222);
    assert_eq!(c.ami.encrypt_boot, Some(false));
    assert_eq!(c.ami.ena_support, None);
    assert_eq!(c.ami.ami_users, ["123456789012"]);
    assert_eq!(c.ami.ami_groups, ["all"]);
    assert!(c.ami.force_deregister);
    assert_eq!(c.launch_block_device_mappings.len(), 1);
    assert_eq!(c.launch_block_device_mappings[0].volume_size, 40);
    assert!(c.launch_block_device_mappings[0].delete_on_termination);
    assert_eq!(
        c.run.run_tags.raw(),
        BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    // ssh_timeout given: no handshake default.
    assert_eq!(c.comm.ssh_timeout, Some(Duration::from_secs(600)));
    assert_eq!(c.comm.ssh_handshake_attempts, None);
    let p = c.access.aws_polling.as_ref().unwrap();
    assert_eq!((p.delay_seconds, p.max_attempts), (Some(5), Some(60)));
}

#[test]
fn decoding_errors_name_the_option_and_position() {
    let text = format!(
        "{{\"builders\":[{}]}}",
        ebs(
            r#""associate_public_ip_address":"yes","ssh_port":"22x","ssh_timeout":"5 minutes","ami_nmae":"x""#
        )
    );
    let d = load_text(&text, &opts()).unwrap_err();
    let errs = errors(&d);
    assert!(errs.contains(&"builder 1 (amazon-ebs): cannot parse 'associate_public_ip_address' as bool: strconv.ParseBool: parsing \"yes\": invalid syntax".to_string()), "{errs:#?}");
    assert!(errs.contains(&"builder 1 (amazon-ebs): cannot parse 'ssh_port' as int: strconv.ParseInt: parsing \"22x\": invalid syntax".to_string()), "{errs:#?}");
    assert!(errs.contains(&"builder 1 (amazon-ebs): error decoding 'ssh_timeout': time: unknown unit \" minutes\" in duration \"5 minutes\"".to_string()), "{errs:#?}");
    assert!(errs.contains(&"builder 1 (amazon-ebs): unknown configuration key: 'ami_nmae'; did you mean 'ami_name'?".to_string()), "{errs:#?}");
    let unknown = d.errors().find(|e| e.message.contains("ami_nmae")).unwrap();
    let col = text.find("\"ami_nmae\"").unwrap() as u32 + 1;
    assert_eq!((unknown.line, unknown.col), (Some(1), Some(col)));
}

#[test]
fn unknown_keys_are_reported_even_when_rendering_fails() {
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"shell","inline":["{{{{ env `X` }}}}"],"scirpt":"x"}}]}}"#,
        ebs(r#""ami_description":"{{ nope }}","ssh_pasword":"x""#)
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("builder 1 (amazon-ebs): invalid 'ami_description': template: root:1: function \"nope\" not defined"));
    assert_eq!(
        errs[1],
        "builder 1 (amazon-ebs): unknown configuration key: 'ssh_pasword'; did you mean 'ssh_password'?"
    );
    assert!(errs[2].starts_with("build \"amazon-ebs\": provisioner 1 (shell): render 'inline'"));
    assert_eq!(
        errs[3],
        "build \"amazon-ebs\": provisioner 1 (shell): unknown configuration key: 'scirpt'; did you mean 'script'?"
    );
}

#[test]
fn renamed_keys_are_accepted_with_a_warning_naming_the_replacement() {
    let l = load_text(
        &format!(
            r#"{{"builders":[{}]}}"#,
            ebs(r#""ssh_wait_timeout":"7m","ssh_private_ip":true,"shutdown_behaviour":"terminate","enhanced_networking":true,"temporary_security_group_source_cidr":"10.0.0.0/8""#)
        ),
        &opts(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let c = only_build(&l);
    assert_eq!(c.comm.ssh_timeout, Some(Duration::from_secs(420)));
    assert_eq!(c.run.ssh_interface.map(|i| i.as_str()), Some("private_ip"));
    assert_eq!(c.run.shutdown_behavior, "terminate");
    assert_eq!(c.ami.ena_support, Some(true));
    assert_eq!(c.run.temporary_security_group_source_cidrs, ["10.0.0.0/8"]);
    let w: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(w.len(), 5, "{w:#?}");
    assert!(
        w.iter()
            .any(|m| m.contains("'ssh_wait_timeout' is deprecated") && m.contains("ssh_timeout"))
    );
    assert!(
        w.iter()
            .any(|m| m.contains("'shutdown_behaviour'") && m.contains("shutdown_behavior"))
    );
    assert!(
        w.iter()
            .any(|m| m.contains("'enhanced_networking'") && m.contains("ena_support"))
    );
}

#[test]
fn validation_errors_are_all_reported_at_once() {
    let text = r#"{"builders":[{"type":"amazon-ebs","ami_name":"x:","source_ami_filter":{"filters":{"name":"u"}},"shutdown_behavior":"halt"}],
        "provisioners":[{"type":"shell"},{"type":"file","source":"does/not/exist"},{"type":"shell","inline":["x"],"script":"tests/fixtures/scripts/setup.sh"}]}"#;
    let errs = errors(&load_text(text, &opts()).unwrap_err());
    let expect = [
        "builder 1 (amazon-ebs): ami_name must be between 3 and 128 characters long",
        "builder 1 (amazon-ebs): For security reasons, your source AMI filter must declare an owner.",
        "builder 1 (amazon-ebs): either instance_type or spot_instance_types must be specified",
        "builder 1 (amazon-ebs): shutdown_behavior only accepts 'stop' or 'terminate' values.",
        "builder 1 (amazon-ebs): An ssh_username must be specified\n  Note: some builders used to default ssh_username to \"root\".",
        "build \"amazon-ebs\": provisioner 1 (shell): Either a script file or inline script must be specified.",
        "build \"amazon-ebs\": provisioner 2 (file): Bad source 'does/not/exist': stat does/not/exist: no such file or directory",
        "build \"amazon-ebs\": provisioner 2 (file): Destination must be specified.",
        "build \"amazon-ebs\": provisioner 3 (shell): Only a script file or an inline script can be specified, not both.",
    ];
    for e in expect {
        assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
    }
    assert!(
        errs.iter()
            .any(|x| x.starts_with("builder 1 (amazon-ebs): AMIName should only contain"))
    );
}

#[test]
fn ami_name_length_and_characters() {
    for (name, ok) in [
        ("ab", false),
        ("abc", true),
        (&"a".repeat(128), true),
        (&"a".repeat(129), false),
        ("a (b) [c] ./-'@_", true),
        ("a*b", false),
    ] {
        let r = load_text(
            &format!(r#"{{"builders":[{}]}}"#, ebs("").replace("test-ami", name)),
            &opts(),
        );
        assert_eq!(
            r.is_ok(),
            ok,
            "{name}: {:?}",
            r.err().map(|d| d.to_string())
        );
    }
}

#[test]
fn multi_build_only_except_override_and_chains() {
    // docker is not supported: an error unless the build is skipped, as
    // Packer lets -only/-except skip builds.
    let d = load(&fixture("multi.json"), &opts()).unwrap_err();
    let errs = errors(&d);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("unsupported builder type 'docker': bakery supports amazon-ebs"),
        "{}",
        errs[0]
    );

    let l = load(
        &fixture("multi.json"),
        &LoadOptions {
            except: vec!["docker".into()],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.builds.len(), 2);
    let app = &l.builds[0];
    let worker = &l.builds[1];
    // Build names render; provisioner only/except match the raw name.
    assert_eq!(app.name, "app-{{user `env`}}");
    assert_eq!(app.rendered_name, "app-prod");
    let inline = |p: &ProvisionerConfig| match p {
        ProvisionerConfig::Shell(s) => s
            .inline
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.raw().to_string())
            .collect::<Vec<_>>(),
        _ => panic!(),
    };
    let app_lines: Vec<Vec<String>> = app.provisioners.iter().map(inline).collect();
    assert_eq!(
        app_lines,
        [
            vec!["echo app"],
            vec!["echo not worker"],
            vec!["echo app-prod"]
        ]
    );
    let worker_lines: Vec<Vec<String>> = worker.provisioners.iter().map(inline).collect();
    assert_eq!(worker_lines, [vec!["echo overridden"]]);
    match &worker.provisioners[0] {
        ProvisionerConfig::Shell(s) => assert_eq!(s.remote_folder, "/var/tmp"),
        _ => panic!(),
    }
    // Post-processor only: chain-b runs for worker only.
    assert_eq!(
        app.post_processors.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(
        worker
            .post_processors
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let c = worker.builder.as_amazon_ebs().unwrap();
    let f = c.run.source_ami_filter.as_ref().unwrap();
    assert_eq!(f.owners, ["099720109477"]);
    assert!(f.most_recent);

    // -only takes the rendered build name (Packer) or the raw one.
    let l = load(
        &fixture("multi.json"),
        &LoadOptions {
            only: vec!["app-prod".into()],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.builds.len(), 1);
    assert_eq!(l.builds[0].rendered_name, "app-prod");
    let l = load(
        &fixture("multi.json"),
        &LoadOptions {
            only: vec!["worker".into()],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.builds[0].name, "worker");

    // -except naming a post-processor drops it and the rest of its chain.
    let l = load(
        &fixture("multi.json"),
        &LoadOptions {
            except: vec!["docker".into(), "chain-a".into()],
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        l.builds[1]
            .post_processors
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn only_except_on_unknown_builders_and_both_at_once() {
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"shell","inline":["x"],"only":["amazon-eb"]}},{{"type":"shell","inline":["x"],"only":["amazon-ebs"],"except":["amazon-ebs"]}}]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    assert!(errs[0].starts_with("provisioner 1: 'only' specified builder 'amazon-eb' not found; did you mean 'amazon-ebs'?"), "{errs:?}");
    assert_eq!(
        errs[1],
        "provisioner 2: only one of 'only' or 'except' may be specified"
    );
}

#[test]
fn syntax_errors_show_line_column_and_caret() {
    let d = load(&fixture("syntax-error.json"), &opts()).unwrap_err();
    let e = d.errors().next().unwrap();
    assert_eq!(
        e.message,
        "error parsing JSON: invalid character '\"' after object key:value pair"
    );
    assert_eq!((e.line, e.col), (Some(5), Some(6)));
    let shown = e.to_string();
    assert!(
        shown.ends_with("    5 |      \"ami_name\": \"x\"}\n             ^"),
        "{shown}"
    );
}

#[test]
fn duplicate_keys_anywhere_are_errors() {
    let text = r#"{"builders":[{"type":"amazon-ebs","region":"a","region":"b","tags":{"x":"1","x":"2"}}],"builders":[]}"#;
    let errs = errors(&load_text(text, &opts()).unwrap_err());
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs[0].starts_with("template has duplicate field: region"));
    assert!(errs[1].starts_with("template has duplicate field: x"));
    assert!(errs[2].starts_with("template has duplicate field: builders"));
}

#[test]
fn unknown_root_keys_comments_and_push() {
    let text = format!(
        r#"{{"_comment":"ok","push":{{"name":"x"}},"description":"d","buidlers":[],"builders":[{}]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    assert_eq!(
        errs,
        ["Unknown root level key in template: 'buidlers'; did you mean 'builders'?"]
    );
}

#[test]
fn unsupported_plugin_types_list_the_supported_ones() {
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"puppet-masterless","manifest_file":"x"}}],"post-processors":["vagrant"]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    assert_eq!(
        errs,
        [
            "build \"amazon-ebs\": provisioner 1 (puppet-masterless): unsupported provisioner type 'puppet-masterless': bakery supports ansible, ansible-local, file, goss, shell, shell-local",
            "post-processor 1.1 (vagrant): unsupported post-processor type 'vagrant': bakery supports manifest, shell-local",
        ]
    );
}

#[test]
fn env_is_only_allowed_in_variable_defaults() {
    let text = format!(
        r#"{{"variables":{{"home":"{{{{env `HOME`}}}}"}},"builders":[{}]}}"#,
        ebs(r#""ami_description":"{{user `home`}}","ssh_username":"u-{{env `HOME`}}""#)
            .replace(r#""ssh_username":"ubuntu","#, "")
    );
    let d = load_text(&text, &opts()).unwrap_err();
    let e = d.errors().next().unwrap();
    assert_eq!(
        e.message,
        "builder 1 (amazon-ebs): render 'ssh_username': template: root:1:4: executing \"root\" at <env `HOME`>: error calling env: env vars are not allowed here"
    );
    // The column points at `env` inside the JSON string.
    let col = text.find("u-{{env").unwrap() as u32 + 1 + 4;
    assert_eq!(e.col, Some(col));
}

#[test]
fn functions_pipes_and_time_in_a_template() {
    let text = format!(
        r#"{{"variables":{{"prefix":"My App: v1"}},"builders":[{}]}}"#,
        ebs(r#""ami_name":"{{user `prefix` | clean_resource_name}} {{isotime `2006-01-02`}} {{ split (user `prefix`) `: ` 1 | upper }} {{timestamp}}""#)
            .replace(r#""ami_name":"test-ami","#, "")
    );
    let l = load_text(&text, &opts()).unwrap_or_else(|d| panic!("{d}"));
    let name = &only_build(&l).ami.ami_name;
    let clock = bakery_template::gotime::Clock::init_time();
    assert_eq!(
        *name,
        format!(
            "My App- v1 {} V1 {}",
            clock.format_go("2006-01-02"),
            clock.unix_secs
        )
    );
}

#[test]
fn clean_ami_name_is_accepted_with_a_deprecation_warning() {
    let text = format!(
        r#"{{"builders":[{}]}}"#,
        ebs(r#""ami_name":"{{ `a:b` | clean_ami_name }}""#)
            .replace(r#""ami_name":"test-ami","#, "")
    );
    let l = load_text(&text, &opts()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(only_build(&l).ami.ami_name, "a-b");
    assert!(l.warnings.iter().any(|w| {
        w.message
            .contains("clean_ami_name was removed in Packer 1.5")
    }));
}

#[test]
fn undeclared_user_variables_render_empty_outside_variables() {
    let text = format!(
        r#"{{"builders":[{}]}}"#,
        ebs(r#""ami_description":"x","ami_name":"abc{{user `nope`}}""#)
            .replace(r#""ami_name":"test-ami","#, "")
    );
    let l = load_text(&text, &opts()).unwrap();
    assert_eq!(only_build(&l).ami.ami_name, "abc");
}

#[test]
fn variable_defaults_refer_to_other_variables_and_template_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"variables":{{"b":"{{{{user `a`}}}}-b","a":"A","dir":"{{{{template_dir}}}}"}},"builders":[{}]}}"#,
            ebs("")
        ),
    )
    .unwrap();
    let l = load(&path, &opts()).unwrap();
    assert_eq!(l.variables["b"], "A-b");
    assert_eq!(Path::new(&l.variables["dir"]), dir.path());
    assert!(Path::new(&l.variables["dir"]).is_absolute());
}

#[test]
fn min_packer_version_is_checked_against_1_6_6() {
    let ok = format!(
        r#"{{"min_packer_version":"1.5.0","builders":[{}]}}"#,
        ebs("")
    );
    assert!(load_text(&ok, &opts()).is_ok());
    let too_new = format!(
        r#"{{"min_packer_version":"1.7.0","builders":[{}]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&too_new, &opts()).unwrap_err());
    assert!(
        errs[0].starts_with("This template requires Packer version 1.7.0 or higher; using 1.6.6")
    );
}

#[test]
fn sensitive_values_are_masked_in_errors_and_known_to_secrets() {
    let text = format!(
        r#"{{"variables":{{"pw":"hunter2-secret"}},"sensitive-variables":["pw"],"builders":[{}]}}"#,
        ebs(r#""ami_name":"{{user `pw`}}:bad""#).replace(r#""ami_name":"test-ami","#, "")
    );
    let d = load_text(&text, &opts()).unwrap_err();
    let shown = d.to_string();
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(shown.contains("<sensitive>:bad"), "{shown}");

    let text = format!(
        r#"{{"variables":{{"pw":"hunter2-secret"}},"sensitive-variables":["pw"],"builders":[{}]}}"#,
        ebs(r#""secret_key":"SK-123","access_key":"AK-123""#)
    );
    let l = load_text(&text, &opts()).unwrap();
    assert_eq!(
        l.secrets.mask("pw=hunter2-secret key=SK-123 id=AK-123"),
        "pw=<sensitive> key=<sensitive> id=<sensitive>"
    );
}

#[test]
fn build_function_is_late_in_provisioners_and_an_error_in_builders() {
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"shell","inline":["echo {{{{ build `ID` }}}} {{{{ build `SourceAMI` }}}}"]}}]}}"#,
        ebs("")
    );
    let l = load_text(&text, &opts()).unwrap();
    let ProvisionerConfig::Shell(s) = &l.builds[0].provisioners[0] else {
        panic!()
    };
    let line = &s.inline.as_ref().unwrap()[0];
    assert_eq!(line.raw(), "echo {{.ID}} {{.SourceAMI}}");
    let ctx = LateContext {
        build: BTreeMap::from([
            ("ID".into(), "i-1".into()),
            ("SourceAMI".into(), "ami-9".into()),
        ]),
        ..Default::default()
    };
    assert_eq!(line.render(&ctx).unwrap(), "echo i-1 ami-9");

    let bad = format!(
        r#"{{"builders":[{}]}}"#,
        ebs(r#""ami_description":"d","vpc_id":"{{ build `ID` }}""#)
    );
    let errs = errors(&load_text(&bad, &opts()).unwrap_err());
    assert!(errs[0].ends_with("error calling build: Error validating build variable: the given variable ID will not be passed into your plugin."), "{errs:?}");
}

#[test]
fn syntax_only_parses_without_variables_or_builds() {
    let l = load(
        &fixture("primal.json"),
        &LoadOptions {
            syntax_only: true,
            ..opts()
        },
    )
    .unwrap();
    assert!(l.builds.is_empty());
    assert!(
        load(
            &fixture("syntax-error.json"),
            &LoadOptions {
                syntax_only: true,
                ..opts()
            }
        )
        .is_err()
    );
}

#[test]
fn post_processor_meta_is_strict_and_keep_input_artifact_kept() {
    let text = format!(
        r#"{{"builders":[{}],"post-processors":[{{"type":"manifest","keep_input_artifact":"true"}}]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    assert_eq!(
        errs,
        [
            "post-processor 1.1: 'keep_input_artifact' expected type 'bool', got unconvertible type 'string', value: 'true'"
        ]
    );
    let text = format!(
        r#"{{"builders":[{}],"post-processors":[{{"type":"manifest","keep_input_artifact":true}}]}}"#,
        ebs("")
    );
    let l = load_text(&text, &opts()).unwrap();
    assert_eq!(
        l.builds[0].post_processors[0][0].keep_input_artifact(),
        Some(true)
    );
}

#[test]
fn error_cleanup_provisioner_is_decoded() {
    let text = format!(
        r#"{{"builders":[{}],"error-cleanup-provisioner":{{"type":"shell-local","inline":["echo cleanup"]}}}}"#,
        ebs("")
    );
    let l = load_text(&text, &opts()).unwrap();
    match l.builds[0].error_cleanup_provisioner.as_ref().unwrap() {
        ProvisionerConfig::ShellLocal(s) => {
            assert_eq!(s.inline.as_ref().unwrap()[0].raw(), "echo cleanup");
            let cmd: Vec<&str> = s.execute_command.iter().map(|t| t.raw()).collect();
            assert_eq!(cmd, ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn var_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"SOURCE_AMI": 5}"#).unwrap();
    let d = load(
        &fixture("primal.json"),
        &LoadOptions {
            var_files: vec![bad, dir.path().join("none.json")],
            ..opts()
        },
    )
    .unwrap_err();
    let errs = errors(&d);
    assert!(
        errs[0].contains("json: cannot unmarshal number into Go value of type string"),
        "{errs:?}"
    );
    assert!(
        errs[1].ends_with("none.json: no such file or directory"),
        "{errs:?}"
    );
}

/// As Packer's "Failed to prepare build": a provisioner is checked for each build it runs in, with that
/// build's `override` merged in, and its errors name the build; a provisioner limited to another build is
/// checked for that one only; an override's `null` sets nothing (Packer keeps `inline` and reports both).
#[test]
fn provisioner_errors_name_the_build_they_arise_in() {
    let text = r#"{"builders":[
        {"type":"amazon-ebs","name":"one","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"admin","ami_name":"pv-one"},
        {"type":"amazon-ebs","name":"two","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"admin","ami_name":"pv-two"}],
      "provisioners":[
        {"type":"shell","script":"missing-{{build_name}}.sh","only":["two"]},
        {"type":"shell","inline":["x"],"override":{"one":{"script":"nope.sh","inline":null}}}]}"#;
    let errs = errors(&load_text(text, &opts()).unwrap_err());
    let expect = [
        "build \"one\": provisioner 2 (shell): Only a script file or an inline script can be specified, not both.",
        "build \"one\": provisioner 2 (shell): Bad script 'nope.sh': stat nope.sh: no such file or directory",
        "build \"two\": provisioner 1 (shell): Bad script 'missing-two.sh': stat missing-two.sh: no such file or directory",
    ];
    for e in expect {
        assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

/// ansible: Packer's defaults, every applied option decoded, late fields left for run time, the proxy's
/// options ignored with a warning at their key, `use_proxy: true` refused with the reason.
#[test]
fn ansible_options_decode_with_packers_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("site.yml");
    std::fs::write(&playbook, "- hosts: all\n").unwrap();
    let pb = playbook.display();
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"ansible","playbook_file":"{pb}"}}]}}"#,
        ebs("")
    );
    let l = load_text(&text, &opts()).unwrap();
    let ProvisionerConfig::Ansible(a) = &l.builds[0].provisioners[0] else {
        panic!("not ansible");
    };
    assert_eq!(a.command, "ansible-playbook");
    assert_eq!(a.host_alias, "default");
    assert_eq!(a.galaxy_command, "ansible-galaxy");
    assert_eq!(a.user, None);
    assert_eq!(a.use_proxy, None);
    assert!(a.extra_arguments.is_empty() && a.groups.is_empty());

    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"ansible","playbook_file":"{pb}","command":"/opt/ap",
            "extra_arguments":["-e","id={{{{ build `ID` }}}}"],"ansible_env_vars":["A=1","H={{{{ .Host }}}}"],
            "groups":"web,db","empty_groups":["none"],"host_alias":"box","user":"deploy","use_proxy":false,
            "ansible_ssh_extra_args":["-o X=1"],"inventory_directory":"{d}","keep_inventory_file":true,
            "inventory_file_template":"{{{{ .HostAlias }}}} ansible_host={{{{ .Host }}}}\n","skip_version_check":true,
            "use_sftp":true,"galaxy_force_install":true,"roles_path":"r","collections_path":"c",
            "local_port":2200,"sftp_command":"/usr/lib/sftp-server"}}]}}"#,
        ebs(""),
        d = dir.path().display()
    );
    let l = load_text(&text, &opts()).unwrap();
    let ProvisionerConfig::Ansible(a) = &l.builds[0].provisioners[0] else {
        panic!("not ansible");
    };
    assert_eq!(a.command, "/opt/ap");
    assert_eq!(
        a.extra_arguments[1].raw(),
        "id={{ build `ID` }}",
        "rendered late"
    );
    assert_eq!(a.ansible_env_vars[1].raw(), "H={{ .Host }}");
    assert_eq!(a.groups, ["web", "db"]);
    assert_eq!(
        (a.host_alias.as_str(), a.user.as_deref()),
        ("box", Some("deploy"))
    );
    assert_eq!(a.use_proxy, Some(false));
    assert!(a.keep_inventory_file && a.skip_version_check && a.use_sftp && a.galaxy_force_install);
    assert_eq!(a.local_port, Some(2200));
    let w: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        w.iter()
            .any(|m| m.contains("local_port is ignored: it configures Packer's local SSH proxy"))
            && w.iter().any(|m| m.contains("sftp_command is ignored")),
        "{w:?}"
    );

    // Refused and invalid.
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"ansible","playbook_file":"{pb}","use_proxy":true}},
            {{"type":"ansible"}},{{"type":"ansible","playbook_file":"{d}","galaxy_file":"/nonexistent/req.yml","inventory_directory":"{pb}","ansible_env_vars":["NOEQUALS"]}}]}}"#,
        ebs(""),
        d = dir.path().display()
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(
        has("use_proxy: true is not supported: bakery never runs Packer's local SSH proxy"),
        "{errs:?}"
    );
    assert!(has("playbook_file must be specified."), "{errs:?}");
    assert!(
        has(&format!(
            "playbook_file: {} must point to a file",
            dir.path().display()
        )),
        "{errs:?}"
    );
    assert!(
        has("galaxy_file: /nonexistent/req.yml is invalid: stat /nonexistent/req.yml"),
        "{errs:?}"
    );
    assert!(
        has("inventory_directory:") && has("must point to a directory"),
        "{errs:?}"
    );
    assert!(
        has("ansible_env_vars: \"NOEQUALS\" is not in the format KEY=VALUE"),
        "{errs:?}"
    );
}

/// ansible-local: Packer's defaults and `Prepare` checks.
#[test]
fn ansible_local_options_decode_with_packers_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("site.yml");
    std::fs::write(&playbook, "- hosts: all\n").unwrap();
    let pb = playbook.display();
    let d = dir.path().display();
    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"ansible-local","playbook_file":"{pb}","playbook_dir":"{d}",
            "inventory_groups":"a,b","role_paths":["{d}"],"clean_staging_directory":true,"extra_arguments":["-v"]}}]}}"#,
        ebs("")
    );
    let l = load_text(&text, &opts()).unwrap();
    let ProvisionerConfig::AnsibleLocal(a) = &l.builds[0].provisioners[0] else {
        panic!("not ansible-local");
    };
    assert_eq!(
        a.command,
        "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook"
    );
    assert!(
        a.staging_directory
            .starts_with("/tmp/packer-provisioner-ansible-local/"),
        "{}",
        a.staging_directory
    );
    assert_eq!(a.inventory_groups, ["a", "b"]);
    assert!(a.clean_staging_directory);
    assert_eq!(a.galaxy_command, "ansible-galaxy");

    let text = format!(
        r#"{{"builders":[{}],"provisioners":[{{"type":"ansible-local"}},
            {{"type":"ansible-local","playbook_file":"{pb}","playbook_files":["{pb}"],"group_vars":"{pb}","role_paths":["/nonexistent"]}}]}}"#,
        ebs("")
    );
    let errs = errors(&load_text(&text, &opts()).unwrap_err());
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(
        has("Either playbook_file or playbook_files must be specified"),
        "{errs:?}"
    );
    assert!(
        has("Either playbook_file or playbook_files can be specified, not both"),
        "{errs:?}"
    );
    assert!(
        has(&format!("group_vars: {pb} must point to a directory")),
        "{errs:?}"
    );
    assert!(has("role_paths: /nonexistent is invalid"), "{errs:?}");
}
