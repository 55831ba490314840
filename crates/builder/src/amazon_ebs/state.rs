//! The typed state one amazon-ebs build carries through its steps, and the context every step reads.

use crate::journal::{Entry, Event, Journal};
use crate::resource::Kind;
use bakery_core::aws::Clients;
use bakery_core::aws_err::AwsError;
use bakery_core::pipeline::InFlight;
use bakery_core::poll::ec2::{Ec2Waits, WaitRegistry};
use bakery_core::poll::{PollOverrides, Poller};
use bakery_core::ui::Ui;
use bakery_template::late::LateContext;
use bakery_template::schema::AmazonEbsConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every step reads; nothing in here changes during the build.
pub struct Ctx {
    /// The rendered build name (output prefix, `PACKER_BUILD_NAME`).
    pub name: String,
    /// The build as loaded (provisioners, post-processors).
    pub build: bakery_template::Build,
    /// The builder's options.
    pub cfg: Arc<AmazonEbsConfig>,
    /// The one SDK config of the run (other regions' clients derive from it).
    pub sdk: aws_config::SdkConfig,
    /// The build region's clients.
    pub clients: Clients,
    /// Output.
    pub ui: Ui,
    /// The run journal; None in a dry run, which creates nothing.
    pub journal: Option<Arc<Journal>>,
    /// The run id (tags, names).
    pub run_id: String,
    /// Cancelled on the first interrupt.
    pub cancel: CancellationToken,
    /// Cancelled on the second interrupt (cleanup gives up).
    pub cancel_cleanup: CancellationToken,
    /// `-force`: deregister an AMI with the same name first.
    pub force: bool,
    /// `-debug`: keep the temporary private key as `ec2_<build>.pem`.
    pub debug: bool,
    /// `--host-key-check` / `BAKERY_HOST_KEY_CHECK`: how the instance's SSH host key is checked.
    pub host_key_check: super::console_keys::HostKeyCheck,
    /// `aws_polling` / environment overrides.
    pub poll: PollOverrides,
    /// Run the `error-cleanup-provisioner` when provisioning fails.
    pub error_cleanup: bool,
    /// The run's create calls in flight (shared with the pipeline, which settles them on an interrupt).
    pub in_flight: Arc<InFlight>,
    /// The run's batched EC2 looks, shared by all its builds (one Describe call per tick for all of them).
    pub waits: Arc<WaitRegistry>,
}

impl Ctx {
    /// The build region.
    pub fn region(&self) -> &str {
        &self.clients.region
    }

    /// The clients of `region` (copies, attributes), through `custom_endpoint_ec2` when set.
    pub fn clients_in(&self, region: &str) -> Clients {
        Clients::for_region(
            &self.sdk,
            Some(region),
            self.cfg
                .access
                .custom_endpoint_ec2
                .as_deref()
                .filter(|s| !s.is_empty()),
        )
    }

    /// A poller with the overrides applied.
    pub fn poller(&self, base: Poller) -> Poller {
        base.with_overrides(self.poll)
    }

    /// The batched looks of `clients`' EC2 client (the build region's or a copy region's). Builds share
    /// them when they reach EC2 the same way: the region, the endpoint and the whole access block.
    pub fn ec2_waits(&self, clients: &Clients) -> Ec2Waits {
        let key = format!(
            "{} {:?} {:?}",
            clients.region,
            self.sdk.endpoint_url(),
            self.cfg.access
        );
        self.waits.ec2(&key, &clients.ec2)
    }

    fn record(&self, event: Event, kind: Kind, region: &str, id: &str) {
        if let Some(j) = &self.journal {
            j.record(event, kind, region, id, &self.name);
        }
    }

    /// Records a created resource in the journal.
    pub fn created(&self, kind: Kind, region: &str, id: &str) {
        self.record(Event::Created, kind, region, id);
    }

    /// Sends one create call as an intent first: journals (fsynced) what is about to be made, where, and
    /// with which client token, and holds the run's in-flight guard while the call is out, so that an
    /// interrupt lets it answer instead of dropping it. The caller records the id with [`Ctx::created`]
    /// before its next `.await`. An AWS refusal is journaled as such; an answer that never came leaves the
    /// intent for `bake cleanup`, which finds what it made by bakery's tags.
    pub async fn create<T>(
        &self,
        kind: Kind,
        region: &str,
        token: Option<&str>,
        call: impl std::future::Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        let _in_flight = self.in_flight.enter();
        let entry = |event| Entry {
            event,
            kind,
            region: region.to_string(),
            id: String::new(),
            build: self.name.clone(),
            token: token.map(str::to_string),
        };
        if let Some(j) = &self.journal {
            j.append(&entry(Event::Intent));
        }
        let r = call.await;
        if let (Err(e), Some(j)) = (&r, &self.journal)
            && e.is_refusal()
        {
            j.append(&entry(Event::Refused));
        }
        r
    }

    /// An idempotency token for one create call of this build: one per run, shown build name
    /// (`--each-var-file` runs share the template's build name, so that alone would hand every run the
    /// first one's resource) and call site (`what`; empty for RunInstances), ≤ 64 characters as EC2 wants.
    pub fn client_token(&self, what: &str) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut h);
        if !what.is_empty() {
            what.hash(&mut h);
        }
        format!("{}-{:016x}", self.run_id, h.finish())
    }

    /// Records a removed resource in the journal.
    pub fn removed(&self, kind: Kind, region: &str, id: &str) {
        self.record(Event::Removed, kind, region, id);
    }

    /// Records a resource kept as the build's result.
    pub fn kept(&self, kind: Kind, region: &str, id: &str) {
        self.record(Event::Kept, kind, region, id);
    }

    /// Bakery's ownership tags for a resource of this build; a temporary resource also carries its
    /// creation time (`bakery:created`), so `bake cleanup --older-than` can tell a stray from a live
    /// run's on another machine.
    pub fn ownership_tags(&self, role: &str) -> Vec<(String, String)> {
        let mut tags = bakery_core::tags::ownership(&self.run_id, &self.build.name, role);
        if crate::resource::TEMPORARY_ROLES.contains(&role) {
            tags.push((
                crate::resource::CREATED_TAG.to_string(),
                crate::resource::now_tag(),
            ));
        }
        tags
    }

    /// A name for temporary resources: unique per run and build, recognisably bakery's.
    pub fn temp_name(&self) -> String {
        let short: String = self
            .run_id
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(12)
            .collect();
        let build: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("bakery_{short}_{build}")
    }
}

/// The source AMI, as `{{.SourceAMI*}}` exposes it.
#[derive(Debug, Clone, Default)]
pub struct SourceImage {
    /// `ami-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Owner account id.
    pub owner: String,
    /// Owner alias (`amazon`, ...) or empty.
    pub owner_alias: String,
    /// Creation date as AWS reports it.
    pub creation_date: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its root device name (`/dev/xvda`).
    pub root_device_name: Option<String>,
}

/// How the build logs in.
#[derive(Clone)]
pub enum SshKey {
    /// A private key (temporary or `ssh_private_key_file`), with the EC2 key pair name to launch with.
    Private {
        /// Key pair name passed to RunInstances (None: the AMI/user data provides access).
        key_name: Option<String>,
        /// OpenSSH/PEM private key.
        pem: String,
    },
    /// ssh-agent, with an optional key pair name.
    Agent {
        /// Key pair name passed to RunInstances.
        key_name: Option<String>,
    },
    /// `ssh_password`.
    Password(String),
}

impl SshKey {
    /// The key pair name RunInstances gets.
    pub fn key_name(&self) -> Option<&str> {
        match self {
            SshKey::Private { key_name, .. } | SshKey::Agent { key_name } => key_name.as_deref(),
            SshKey::Password(_) => None,
        }
    }
}

/// The builder instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceInfo {
    /// `i-…`.
    pub id: String,
    /// Public address, if any.
    pub public_ip: Option<String>,
    /// Private address.
    pub private_ip: Option<String>,
    /// Public DNS name, if any.
    pub public_dns: Option<String>,
    /// Private DNS name.
    pub private_dns: Option<String>,
    /// IPv6 address, if any.
    pub ipv6: Option<String>,
    /// Its availability zone.
    pub az: Option<String>,
}

/// The typed state of one build.
#[derive(Default)]
pub struct State {
    /// Set by the source AMI step.
    pub source: Option<SourceImage>,
    /// Set by the network step (may stay None: the default VPC).
    pub vpc_id: Option<String>,
    /// The VPC's CIDR blocks, when known (temporary security group default).
    pub vpc_cidrs: Vec<String>,
    /// Set by the network step.
    pub subnet_id: Option<String>,
    /// The subnet's IPv4 CIDR, when looked up (the private route's network).
    pub subnet_cidr: Option<String>,
    /// The route bake takes to the instance, as the security group step decided it.
    pub ssh_route: Option<super::ssh_source::Route>,
    /// Set by the key pair step.
    pub key: Option<SshKey>,
    /// Set by the security group step.
    pub security_group_ids: Vec<String>,
    /// The temporary group the security group step created, until its cleanup deletes it (that deletion
    /// waits for the instance's network interface to go, which is the wait for termination).
    pub temporary_security_group: Option<String>,
    /// The temporary key pair's name, while it exists (set by the key pair step).
    pub temporary_key_pair: Option<String>,
    /// The instance profile the builder launches with (set by the instance profile step): the template's
    /// `iam_instance_profile`, or the temporary one it created.
    pub iam_instance_profile: Option<String>,
    /// The builder instance: its id from the moment it is launched until its cleanup terminates it, its
    /// addresses once it runs.
    pub instance: Option<InstanceInfo>,
    /// The SSH connection, open from the connect step until cleanup.
    pub comm: Option<bakery_ssh::Communicator>,
    /// AMI ids by region (the build region and the copies).
    pub amis: BTreeMap<String, String>,
    /// Snapshot ids by region.
    pub snapshots: BTreeMap<String, Vec<String>>,
    /// Data for late templates (`{{.BuildRegion}}`, `{{.SourceAMI}}`, `{{build `ID`}}`...).
    pub late: LateContext,
}

/// A validated amazon-ebs configuration with `extra` members (`,"key":value...`) on top of a minimal
/// builder, for unit tests.
#[cfg(test)]
pub fn test_config(extra: &str) -> bakery_template::schema::AmazonEbsConfig {
    let text = format!(
        r#"{{"builders":[{{"type":"amazon-ebs","region":"us-east-1","source_ami":"ami-1","instance_type":"t3.micro","ssh_username":"admin","ami_name":"x-{{{{timestamp}}}}"{extra}}}]}}"#
    );
    let p = std::path::Path::new("/t/template.json");
    let tpl = bakery_template::template::parse_text(p, p, text).expect("parses");
    let loaded = bakery_template::load::load_template(tpl, &Default::default()).expect("valid");
    loaded.builds[0]
        .builder
        .as_amazon_ebs()
        .expect("amazon-ebs")
        .clone()
}
