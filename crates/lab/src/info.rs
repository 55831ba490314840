//! `lab.info`: the `key=value` lines `lab/up` writes once the lab is up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::LabError;

/// What a running lab tells its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabInfo {
    pub moto_url: String,
    pub ssh_host: String,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub source_ami: String,
    /// The realism profile the lab started with (`off` for a lab written before the realism layer).
    pub realism: String,
    /// Whether the advertised SSH port is the realism layer's SSH front.
    pub ssh_front: bool,
    /// With the SSH front: the port of the sshd behind it.
    pub sshd_port: Option<u16>,
    /// With the SSH front: the port of the first-boot sshd behind it (other host keys).
    pub boot_sshd_port: Option<u16>,
    /// A recording lab (`lab/up --recording`): the instance stand-in's state dir (`commands.jsonl`,
    /// `root/`).
    pub recording: Option<PathBuf>,
}

impl LabInfo {
    pub fn read(path: &Path) -> Result<LabInfo, LabError> {
        let text = std::fs::read_to_string(path).map_err(|e| LabError::BadInfo {
            path: path.to_owned(),
            detail: format!("cannot read: {e}"),
        })?;
        LabInfo::parse(&text).map_err(|detail| LabError::BadInfo {
            path: path.to_owned(),
            detail,
        })
    }

    pub fn parse(text: &str) -> Result<LabInfo, String> {
        let fields: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |key: &str| {
            fields
                .get(key)
                .map(|v| v.to_string())
                .ok_or_else(|| format!("no `{key}=` line"))
        };
        let ssh_port = get("ssh_port")?;
        let optional_port = |key: &str| match fields.get(key) {
            None => Ok(None),
            Some(port) => port
                .parse()
                .map(Some)
                .map_err(|_| format!("{key} `{port}` is not a port")),
        };
        let sshd_port = optional_port("sshd_port")?;
        let boot_sshd_port = optional_port("boot_sshd_port")?;
        Ok(LabInfo {
            moto_url: get("moto_url")?,
            ssh_host: get("ssh_host")?,
            ssh_port: ssh_port
                .parse()
                .map_err(|_| format!("ssh_port `{ssh_port}` is not a port"))?,
            ssh_user: get("ssh_user")?,
            region: get("region")?,
            access_key: get("access_key")?,
            secret_key: get("secret_key")?,
            source_ami: get("source_ami")?,
            realism: get("realism").unwrap_or_else(|_| "off".to_owned()),
            ssh_front: fields.get("ssh_front") == Some(&"1"),
            sshd_port,
            boot_sshd_port,
            recording: fields.get("recording").map(PathBuf::from),
        })
    }
}

/// Where `lab.info` lives in a state dir.
pub fn info_path(dir: &Path) -> PathBuf {
    dir.join("lab.info")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "dir=/x\nmoto_url=http://127.0.0.1:4000\nssh_host=127.0.0.1\nssh_port=2222\n\
        ssh_user=admin\nregion=us-east-1\naccess_key=a\nsecret_key=s\nsource_ami=ami-785db401\n";

    #[test]
    fn parses_what_lab_up_writes() {
        let info = LabInfo::parse(SAMPLE).unwrap();
        assert_eq!(info.moto_url, "http://127.0.0.1:4000");
        assert_eq!(info.ssh_port, 2222);
        assert_eq!(info.ssh_user, "admin");
        assert_eq!(info.source_ami, "ami-785db401");
        assert_eq!(info.realism, "off");
        assert!(!info.ssh_front);
        let front = LabInfo::parse(&format!(
            "{SAMPLE}realism=boot\nrealism_seed=3\nssh_front=1\nsshd_port=1\nboot_sshd_port=2\n"
        ))
        .unwrap();
        assert_eq!(front.realism, "boot");
        assert!(front.ssh_front);
        assert_eq!(front.sshd_port, Some(1));
        assert_eq!(front.boot_sshd_port, Some(2));
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        let no_user = SAMPLE.replace("ssh_user=admin\n", "");
        assert_eq!(LabInfo::parse(&no_user).unwrap_err(), "no `ssh_user=` line");
        let bad_port = SAMPLE.replace("ssh_port=2222", "ssh_port=99999");
        assert_eq!(
            LabInfo::parse(&bad_port).unwrap_err(),
            "ssh_port `99999` is not a port"
        );
    }
}
