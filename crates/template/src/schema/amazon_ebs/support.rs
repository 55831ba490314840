//! What bakery does with each amazon-ebs option the schema accepts: every option is applied by a step,
//! unless this table says it is refused at validate or deliberately ignored, and why. The table is the
//! one place that says so: `validate` enforces it (an error for a refused option, a warning for an
//! ignored one, each at the option's key), docs/options/amazon-ebs.md is generated from it, and
//! tests/options.rs fails when an accepted option is neither applied (shown by the request it changes on
//! the lab, or by a named test) nor listed here.

use crate::decode::{Decoder, Fields};
use crate::diagnostics::Source;
use crate::funcs::FuncContext;
use crate::json::{self, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How bakery treats an option it does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Setting it is an error at validate: the template expects something bakery cannot do.
    Refused,
    /// Setting it is a warning at validate: it changes nothing that matters to the AMI or to safety.
    Ignored,
}

/// One option bakery does not apply.
#[derive(Debug, Clone, Copy)]
pub struct NotApplied {
    /// The option (`assume_role.policy` for a nested one); `name=value` when only that value is
    /// refused.
    pub option: &'static str,
    pub treatment: Treatment,
    pub reason: &'static str,
    /// A JSON member that sets it, as a template would (the tests use it).
    pub example: &'static str,
}

use Treatment::{Ignored, Refused};

const fn refused(option: &'static str, reason: &'static str, example: &'static str) -> NotApplied {
    NotApplied {
        option,
        treatment: Refused,
        reason,
        example,
    }
}

const fn ignored(option: &'static str, reason: &'static str, example: &'static str) -> NotApplied {
    NotApplied {
        option,
        treatment: Ignored,
        reason,
        example,
    }
}

/// Every accepted option bakery does not apply, in the order of docs/options/amazon-ebs.md. A block's entry covers
/// its nested options.
pub const NOT_APPLIED: &[NotApplied] = &[
    // Connection: what bakery cannot do, so a template that needs it fails before anything is created.
    refused(
        "communicator=winrm",
        "bakery connects over SSH only (Linux images); build Windows images with Packer",
        r#""communicator": "winrm", "winrm_username": "Administrator""#,
    ),
    refused(
        "communicator=docker",
        "an amazon-ebs instance is reached over SSH; docker is not a communicator for it",
        r#""communicator": "docker""#,
    ),
    refused(
        "communicator=dockerWindowsContainer",
        "an amazon-ebs instance is reached over SSH; docker is not a communicator for it",
        r#""communicator": "dockerWindowsContainer""#,
    ),
    refused(
        "ssh_interface=session_manager",
        "SSM session tunnels are not implemented; reach the instance over SSH (public_ip, private_ip, \
         public_dns, private_dns, ipv6) or through ssh_bastion_host",
        r#""ssh_interface": "session_manager", "iam_instance_profile": "ssm""#,
    ),
    refused(
        "ssh_certificate_file",
        "bakery's SSH client does not offer certificates; use ssh_private_key_file or the temporary key pair",
        r#""ssh_certificate_file": "id-cert.pub""#,
    ),
    refused(
        "ssh_bastion_certificate_file",
        "bakery's SSH client does not offer certificates; use ssh_bastion_private_key_file",
        r#""ssh_bastion_host": "b.example", "ssh_bastion_certificate_file": "b-cert.pub""#,
    ),
    refused(
        "ssh_bastion_interactive",
        "keyboard-interactive authentication needs a terminal bakery does not hold; use a key",
        r#""ssh_bastion_host": "b.example", "ssh_bastion_interactive": true"#,
    ),
    refused(
        "ssh_proxy_host",
        "connecting through a SOCKS5 proxy is not implemented; use ssh_bastion_host",
        r#""ssh_proxy_host": "proxy.example""#,
    ),
    refused(
        "ssh_proxy_port",
        "connecting through a SOCKS5 proxy is not implemented; use ssh_bastion_host",
        r#""ssh_proxy_port": 1080"#,
    ),
    refused(
        "ssh_proxy_username",
        "connecting through a SOCKS5 proxy is not implemented; use ssh_bastion_host",
        r#""ssh_proxy_username": "u""#,
    ),
    refused(
        "ssh_proxy_password",
        "connecting through a SOCKS5 proxy is not implemented; use ssh_bastion_host",
        r#""ssh_proxy_password": "p""#,
    ),
    refused(
        "ssh_local_tunnels",
        "SSH port forwarding is not implemented",
        r#""ssh_local_tunnels": ["8080:localhost:80"]"#,
    ),
    refused(
        "ssh_remote_tunnels",
        "SSH port forwarding is not implemented",
        r#""ssh_remote_tunnels": ["8080:localhost:80"]"#,
    ),
    refused(
        "ssh_ciphers",
        "bakery's SSH client negotiates from its own modern set and cannot be narrowed to a list; \
         remove the option",
        r#""ssh_ciphers": ["aes128-gcm@openssh.com"]"#,
    ),
    refused(
        "ssh_key_exchange_algorithms",
        "bakery's SSH client negotiates from its own modern set and cannot be narrowed to a list; \
         remove the option",
        r#""ssh_key_exchange_algorithms": ["curve25519-sha256"]"#,
    ),
    // The instance and the image: what would change the result and is not implemented.
    refused(
        "fast_launch",
        "Windows fast launch only applies to Windows AMIs, which bakery does not build",
        r#""fast_launch": {"enable_fast_launch": true}"#,
    ),
    refused(
        "skip_save_build_region",
        "keeping only the region copies is not implemented; deregister the build region's AMI afterwards",
        r#""skip_save_build_region": true, "ami_regions": ["us-west-2"]"#,
    ),
    refused(
        "no_ephemeral",
        "removing the source AMI's instance-store mappings is not implemented; map them with no_device \
         in launch_block_device_mappings and ami_block_device_mappings",
        r#""no_ephemeral": true"#,
    ),
    refused(
        "block_duration_minutes",
        "AWS no longer offers spot instances with a defined duration (spot blocks)",
        r#""spot_price": "auto", "block_duration_minutes": 60"#,
    ),
    // Credentials: what bakery cannot pass on, or would weaken.
    refused(
        "assume_role.transitive_tag_keys",
        "the SDK's role provider cannot send transitive tag keys",
        r#""assume_role": {"role_arn": "arn:aws:iam::123456789012:role/r", "transitive_tag_keys": ["team"]}"#,
    ),
    refused(
        "mfa_code",
        "MFA codes are not taken from templates; use a profile whose credentials were obtained with MFA",
        r#""mfa_code": "123456""#,
    ),
    refused(
        "insecure_skip_tls_verify",
        "bakery always checks the endpoint's TLS certificate",
        r#""insecure_skip_tls_verify": true"#,
    ),
    refused(
        "vault_aws_engine",
        "bakery does not read Vault; provide credentials through the AWS environment, a profile or \
         access_key/secret_key",
        r#""vault_aws_engine": {"name": "bakery"}"#,
    ),
    // Ignored: the option asks for nothing bakery leaves undone, or only matters with something refused.
    ignored(
        "ami_virtualization_type",
        "CreateImage keeps the builder instance's virtualization type, as Packer's amazon-ebs does",
        r#""ami_virtualization_type": "hvm""#,
    ),
    ignored(
        "skip_ami_run_tags",
        "bakery never copies run_tags onto the AMI (it gets tags)",
        r#""skip_ami_run_tags": true"#,
    ),
    ignored(
        "spot_price_auto_product",
        "deprecated by Packer; the spot price needs no product",
        r#""spot_price_auto_product": "Linux/UNIX""#,
    ),
    ignored(
        "temporary_key_pair_bits",
        "EC2 generates the temporary key pair (RSA 2048 or ED25519, temporary_key_pair_type)",
        r#""temporary_key_pair_bits": 4096"#,
    ),
    ignored(
        "temporary_security_group_source_public_ip",
        "bakery always narrows the temporary group to this machine's address on the route it connects \
         by (docs/security.md); temporary_security_group_source_cidrs sets it exactly",
        r#""temporary_security_group_source_public_ip": true"#,
    ),
    ignored(
        "ssh_file_transfer_method",
        "bakery sends files as one tar stream over its SSH connection; the files and modes that land are \
         the same as with scp or sftp",
        r#""ssh_file_transfer_method": "sftp""#,
    ),
    ignored(
        "ssh_disable_agent_forwarding",
        "bakery never forwards the SSH agent",
        r#""ssh_disable_agent_forwarding": true"#,
    ),
    ignored(
        "ssh_read_write_timeout",
        "bakery keeps the connection alive (ssh_keep_alive_interval) and waits silent commands out; a \
         dead connection is noticed by the keep-alive",
        r#""ssh_read_write_timeout": "5m""#,
    ),
    ignored(
        "ssh_public_key",
        "set by Packer itself for its provisioners, not by templates",
        r#""ssh_public_key": "ssh-ed25519 AAAA""#,
    ),
    ignored(
        "ssh_private_key",
        "set by Packer itself for its provisioners, not by templates",
        r#""ssh_private_key": "-----BEGIN""#,
    ),
    ignored(
        "pause_before_ssm",
        "only used with ssh_interface session_manager, which bakery refuses",
        r#""pause_before_ssm": "30s""#,
    ),
    ignored(
        "session_manager_port",
        "only used with ssh_interface session_manager, which bakery refuses",
        r#""session_manager_port": 8722"#,
    ),
    ignored(
        "windows_password_timeout",
        "only used with the winrm communicator, which bakery refuses",
        r#""windows_password_timeout": "30m""#,
    ),
    ignored(
        "winrm_host",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_host": "h""#,
    ),
    ignored(
        "winrm_insecure",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_insecure": true"#,
    ),
    ignored(
        "winrm_no_proxy",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_no_proxy": true"#,
    ),
    ignored(
        "winrm_password",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_password": "p""#,
    ),
    ignored(
        "winrm_port",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_port": 5986"#,
    ),
    ignored(
        "winrm_timeout",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_timeout": "30m""#,
    ),
    ignored(
        "winrm_use_ntlm",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_use_ntlm": true"#,
    ),
    ignored(
        "winrm_use_ssl",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_use_ssl": true"#,
    ),
    ignored(
        "winrm_username",
        "only used with the winrm communicator, which bakery refuses",
        r#""winrm_username": "Administrator""#,
    ),
    ignored(
        "decode_authorization_messages",
        "errors keep AWS's encoded authorization message; decode it with `aws sts \
         decode-authorization-message`",
        r#""decode_authorization_messages": true"#,
    ),
    ignored(
        "skip_metadata_api_check",
        "bakery never asks the instance metadata service to check credentials",
        r#""skip_metadata_api_check": true"#,
    ),
    ignored(
        "skip_credential_validation",
        "bakery makes no separate STS check of the credentials; the first call shows them wrong",
        r#""skip_credential_validation": true"#,
    ),
    ignored(
        "skip_region_validation",
        "bakery does not check region names against a list; AWS refuses an unknown one",
        r#""skip_region_validation": true"#,
    ),
    ignored(
        "skip_profile_validation",
        "bakery does not check the instance profile before launch; RunInstances refuses an unknown one",
        r#""skip_profile_validation": true"#,
    ),
];

/// The entry for `option` set to `value` (a `name=value` entry first, then the option's own).
pub fn lookup(option: &str, value: Option<&str>) -> Option<&'static NotApplied> {
    NOT_APPLIED
        .iter()
        .find(|n| {
            n.option
                .split_once('=')
                .is_some_and(|(o, v)| o == option && Some(v) == value)
        })
        .or_else(|| NOT_APPLIED.iter().find(|n| n.option == option))
}

/// Every option name the amazon-ebs schema accepts, nested ones as `block.option`: found by decoding
/// a builder whose every block is present, until no new block shows up.
pub fn accepted_options() -> BTreeSet<String> {
    let mut blocks: BTreeSet<String> = BTreeSet::new();
    loop {
        let (accepted, _) = decode_probe(&probe_document(&blocks));
        let new_blocks: BTreeSet<String> = accepted
            .iter()
            .filter(|name| !blocks.contains(*name))
            .filter(|name| {
                // A block: an option that, set to an object, is decoded as one (its members show up).
                let mut with = blocks.clone();
                with.insert((*name).clone());
                let (again, _) = decode_probe(&probe_document(&with));
                again.iter().any(|o| o.starts_with(&format!("{name}.")))
            })
            .cloned()
            .collect();
        if new_blocks.is_empty() {
            return accepted;
        }
        blocks.extend(new_blocks);
    }
}

/// A builder object with each of `blocks` set to an empty object (nested through their parents).
fn probe_document(blocks: &BTreeSet<String>) -> String {
    #[derive(Default)]
    struct Tree(std::collections::BTreeMap<String, Tree>);
    impl Tree {
        fn text(&self) -> String {
            let members: Vec<String> = self
                .0
                .iter()
                .map(|(k, v)| format!("\"{k}\": {}", v.text()))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
    }
    let mut root = Tree::default();
    for b in blocks {
        let mut node = &mut root;
        for part in b.split('.') {
            node = node.0.entry(part.to_owned()).or_default();
        }
    }
    root.text()
}

fn decode_probe(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let parsed = json::parse(text).expect("the probe document is JSON");
    let source = Source::new("probe.json", text.to_owned());
    let mut d = Decoder::new(&source, "");
    let cx = Arc::new(FuncContext {
        amazon: true,
        ..Default::default()
    });
    let Value::Object(members) = &parsed.value.value else {
        unreachable!("the probe is an object")
    };
    let mut f = Fields::new(members, parsed.value.pos, "");
    super::decode(&mut d, &mut f, &cx);
    d.finish(&f);
    let messages = d.diags.iter().map(|x| x.message.clone()).collect();
    (d.accepted, messages)
}

/// Refuses (error) or warns about every option the template set that bakery does not apply, at the
/// option's key. Call after the builder is decoded and [`Decoder::finish`]ed.
pub fn check_present(d: &mut Decoder) {
    for (option, set) in std::mem::take(&mut d.present) {
        let Some(entry) = lookup(&option, set.scalar.as_deref()) else {
            continue;
        };
        let shown = match entry.option.split_once('=') {
            Some((o, v)) => format!("{o} \"{v}\""),
            None => entry.option.to_owned(),
        };
        match entry.treatment {
            Refused => d.err(
                set.pos,
                format!("{shown} is not supported by bakery: {}", entry.reason),
            ),
            Ignored => d.warn(
                set.pos,
                format!("{shown} is ignored by bakery: {}", entry.reason),
            ),
        }
    }
}

/// The option-support table as Markdown (docs/options/amazon-ebs.md shows it).
pub fn markdown_table() -> String {
    let mut out = String::from("| option | bakery | why |\n| --- | --- | --- |\n");
    for n in NOT_APPLIED {
        let shown = match n.option.split_once('=') {
            Some((o, v)) => format!("`{o}: {v}`"),
            None => format!("`{}`", n.option),
        };
        let what = match n.treatment {
            Refused => "refused (error)",
            Ignored => "ignored (warning)",
        };
        out.push_str(&format!("| {shown} | {what} | {} |\n", n.reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_template};
    use crate::template::parse_text;
    use std::path::Path;

    /// Loads a one-builder template with `extra` members; the diagnostics (errors, else warnings).
    fn diagnostics(extra: &str) -> (bool, Vec<crate::diagnostics::Diagnostic>) {
        let text = format!(
            "{{\"builders\": [{{\"type\": \"amazon-ebs\", \"region\": \"us-east-1\",\n\"source_ami\": \"ami-12345678\", \"instance_type\": \"t3.micro\",\n\"ssh_username\": \"ec2-user\", \"ami_name\": \"support-test\",\n{extra}}}]}}"
        );
        let tpl = parse_text(
            Path::new("/t/support.json"),
            Path::new("support.json"),
            text,
        )
        .expect("parses");
        match load_template(tpl, &LoadOptions::default()) {
            Ok(loaded) => (false, loaded.warnings),
            Err(d) => (true, d.0),
        }
    }

    #[test]
    fn every_listed_option_is_one_the_schema_accepts_and_listed_once() {
        let accepted = accepted_options();
        let mut seen = BTreeSet::new();
        for n in NOT_APPLIED {
            let option = n.option.split_once('=').map_or(n.option, |(o, _)| o);
            assert!(
                accepted.contains(option),
                "{option} is not an amazon-ebs option"
            );
            assert!(seen.insert(n.option), "{} is listed twice", n.option);
        }
    }

    #[test]
    fn each_refused_option_is_an_error_and_each_ignored_one_a_warning_at_its_key() {
        for n in NOT_APPLIED {
            let option = n.option.split_once('=').map_or(n.option, |(o, _)| o);
            let leaf = option.rsplit('.').next().unwrap_or(option);
            let (failed, diags) = diagnostics(n.example);
            let verb = match n.treatment {
                Refused => "is not supported by bakery",
                Ignored => "is ignored by bakery",
            };
            let hit = diags
                .iter()
                .find(|d| d.message.contains(verb) && d.message.contains(option))
                .unwrap_or_else(|| panic!("{}: no \"{verb}\" diagnostic in {diags:#?}", n.option));
            assert_eq!(failed, n.treatment == Refused, "{}: {diags:#?}", n.option);
            assert!(
                hit.message.contains(n.reason),
                "{}: {}",
                n.option,
                hit.message
            );
            // At the option's own key, on the line the example is on.
            assert_eq!(hit.line, Some(4), "{}: {hit:?}", n.option);
            let snippet = hit.snippet.as_deref().unwrap_or_default();
            assert!(snippet.contains(leaf), "{}: {snippet}", n.option);
        }
    }

    #[test]
    fn a_default_value_or_another_value_of_a_refused_value_is_not_refused() {
        let (failed, diags) = diagnostics(r#""fast_launch": {}, "ssh_proxy_port": 0"#);
        assert!(!failed, "{diags:#?}");
        let (failed, diags) = diagnostics(r#""ssh_interface": "private_ip""#);
        assert!(!failed, "{diags:#?}");
        let (failed, diags) = diagnostics(r#""communicator": "none""#);
        assert!(!failed, "{diags:#?}");
    }

    #[test]
    fn discovery_finds_nested_options() {
        let accepted = accepted_options();
        for o in [
            "assume_role.policy",
            "source_ami_filter.owners",
            "placement.tenancy",
            "region",
        ] {
            assert!(accepted.contains(o), "{o} not found in {accepted:?}");
        }
        assert!(accepted.len() > 150, "{}", accepted.len());
    }
}
