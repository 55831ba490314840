//! `BAKERY_SSH_HOST` / `BAKERY_SSH_PORT`: where every build connects, whatever the template says — for
//! running a template unchanged against a stand-in (the lab's instances are one sshd on 127.0.0.1), or
//! through a port forward. Environment, not flags, so that it passes through a pipeline's Makefile
//! (`PACKER_BINARY=bake make k8s`) as `AWS_ENDPOINT_URL` does. Each build says when it is in effect.

/// The variable that replaces every build's `ssh_host`.
pub const SSH_HOST_ENV: &str = "BAKERY_SSH_HOST";
/// The variable that replaces every build's `ssh_port`.
pub const SSH_PORT_ENV: &str = "BAKERY_SSH_PORT";

/// Where builds connect instead of the template's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshOverride {
    /// Replaces `ssh_host` (and the address `ssh_interface` would pick).
    pub host: Option<String>,
    /// Replaces `ssh_port`.
    pub port: Option<u16>,
}

impl SshOverride {
    /// From the variables' values (empty means unset); the error names the variable and its value.
    pub fn from_values(host: Option<String>, port: Option<String>) -> Result<Self, String> {
        let host = host.map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
        let port = match port.map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|n| *n != 0)
                    .ok_or_else(|| format!("{SSH_PORT_ENV}={p:?}: expected a port, 1 to 65535"))?,
            ),
        };
        Ok(SshOverride { host, port })
    }

    /// From this process's environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_values(
            std::env::var(SSH_HOST_ENV).ok(),
            std::env::var(SSH_PORT_ENV).ok(),
        )
    }

    /// Whether anything is overridden.
    pub fn is_set(&self) -> bool {
        self.host.is_some() || self.port.is_some()
    }

    /// Applies it to a build's communicator options; the line the build shows, when it changed anything.
    pub fn apply(
        &self,
        comm: &mut bakery_template::schema::amazon_ebs::CommunicatorConfig,
    ) -> Option<String> {
        if !self.is_set() {
            return None;
        }
        if let Some(h) = &self.host {
            comm.ssh_host = Some(h.clone());
        }
        if let Some(p) = self.port {
            comm.ssh_port = p;
        }
        Some(format!(
            "Connecting to {}:{} ({SSH_HOST_ENV}/{SSH_PORT_ENV}), not the address the template gives",
            comm.ssh_host
                .as_deref()
                .unwrap_or("<the instance's address>"),
            comm.ssh_port
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_empty_means_unset() {
        assert_eq!(
            SshOverride::from_values(Some("127.0.0.1".into()), Some("2222".into())),
            Ok(SshOverride {
                host: Some("127.0.0.1".into()),
                port: Some(2222)
            })
        );
        assert!(
            !SshOverride::from_values(Some(" ".into()), Some(String::new()))
                .unwrap()
                .is_set()
        );
        let e = SshOverride::from_values(None, Some("22x".into())).unwrap_err();
        assert!(e.contains("BAKERY_SSH_PORT=\"22x\""), "{e}");
        assert!(SshOverride::from_values(None, Some("0".into())).is_err());
    }

    #[test]
    fn apply_replaces_host_and_port_and_says_so() {
        let mut comm = crate::amazon_ebs::state::test_config("").comm;
        let o = SshOverride::from_values(None, Some("40022".into())).unwrap();
        let line = o.apply(&mut comm).unwrap();
        assert_eq!(comm.ssh_port, 40022);
        assert!(
            line.contains(":40022 (BAKERY_SSH_HOST/BAKERY_SSH_PORT)"),
            "{line}"
        );
        assert_eq!(SshOverride::default().apply(&mut comm), None);
    }
}
