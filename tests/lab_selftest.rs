//! The lab's acceptance test. moto stands in for EC2 and one OpenSSH sshd for every instance; like
//! cloud-init, the lab lets the login user in with the public key of any key pair moto holds. So: a key
//! pair created with aws-sdk-ec2 logs in with russh and runs a command; once deleted it no longer gets
//! in; a key moto never saw is refused. The server's host key is checked against the lab's, always.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::KeyType;
use bakery_lab::{Lab, RequestKind};
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{
    Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};

/// An EC2 client configured from the same values the lab exports to users (`Lab::aws_env`): tests
/// share one process, so they are passed to the loader rather than set in the environment.
async fn ec2(lab: &Lab) -> aws_sdk_ec2::Client {
    let env: HashMap<String, String> = lab.aws_env().into_iter().collect();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&env["AWS_ENDPOINT_URL"])
        .region(Region::new(env["AWS_REGION"].clone()))
        .credentials_provider(Credentials::new(
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "bakery-lab",
        ))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&config)
}

/// Accepts the lab sshd's own host keys and nothing else.
struct LabHostKeys(Vec<PublicKey>);

impl LabHostKeys {
    fn of(lab: &Lab) -> LabHostKeys {
        let keys = lab.host_public_keys();
        assert_eq!(
            keys.len(),
            2,
            "the lab sshd has an ed25519 and an ecdsa host key: {keys:?}"
        );
        LabHostKeys(
            keys.iter()
                .map(|k| PublicKey::from_openssh(k).expect("host key"))
                .collect(),
        )
    }
}

impl client::Handler for LabHostKeys {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self
                .0
                .iter()
                .any(|known| known.key_data() == key.key_data()),
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

/// Connects to the lab sshd and offers `key` for the login user: the session if it got in.
async fn login(lab: &Lab, key: PrivateKey) -> Option<Handle<LabHostKeys>> {
    let config = Arc::new(client::Config::default());
    let mut session = client::connect(
        config,
        (lab.ssh_host(), lab.ssh_port()),
        LabHostKeys::of(lab),
    )
    .await
    .expect("connect to the lab sshd and accept its host key");
    let auth = session
        .authenticate_publickey(
            lab.ssh_user(),
            PrivateKeyWithHashAlg::new(Arc::new(key), None),
        )
        .await
        .expect("public-key authentication exchange");
    auth.success().then_some(session)
}

/// Runs `command` in a new session: (stdout, exit status).
async fn run(session: &Handle<LabHostKeys>, command: &str) -> (String, Option<u32>) {
    let mut channel = session.channel_open_session().await.expect("open session");
    channel.exec(true, command).await.expect("exec");
    let (mut stdout, mut status) = (Vec::new(), None);
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    (String::from_utf8(stdout).expect("utf-8 output"), status)
}

/// Creates an ed25519 key pair in moto: its name and private key.
async fn create_key_pair(lab: &Lab, ec2: &aws_sdk_ec2::Client) -> (String, PrivateKey) {
    let name = lab.unique("lab-selftest");
    let created = ec2
        .create_key_pair()
        .key_name(&name)
        .key_type(KeyType::Ed25519)
        .send()
        .await
        .expect("CreateKeyPair");
    let material = created
        .key_material()
        .expect("CreateKeyPair returns the private key");
    let key = russh::keys::decode_secret_key(material, None).expect("OpenSSH private key");
    (name, key)
}

fn random_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("random ed25519 key")
}

#[tokio::test]
async fn moto_key_pair_logs_in_until_deleted() {
    let lab = Lab::shared();
    let ec2 = ec2(lab).await;
    let (name, key) = create_key_pair(lab, &ec2).await;

    let session = login(lab, key.clone())
        .await
        .expect("moto's key pair logs in");
    let (stdout, status) = run(&session, "id -un; echo hi; exit 3").await;
    assert_eq!(stdout, format!("{}\nhi\n", lab.ssh_user()));
    assert_eq!(status, Some(3));

    ec2.delete_key_pair()
        .key_name(&name)
        .send()
        .await
        .expect("DeleteKeyPair");
    assert!(
        login(lab, key).await.is_none(),
        "a deleted key pair must no longer get in"
    );
}

#[tokio::test]
async fn key_that_moto_does_not_hold_is_refused() {
    let lab = Lab::shared();
    let ec2 = ec2(lab).await;
    // moto holds a key pair, so the keys command answers with at least one key...
    let (name, held) = create_key_pair(lab, &ec2).await;
    assert!(
        login(lab, random_key()).await.is_none(),
        "a key moto does not hold must be refused"
    );
    // ...and that one does get in, so the refusal above is about the key, not a broken sshd.
    assert!(login(lab, held).await.is_some(), "moto's key pair logs in");
    ec2.delete_key_pair()
        .key_name(&name)
        .send()
        .await
        .expect("DeleteKeyPair");
}

#[tokio::test]
async fn harness_authorized_key_logs_in() {
    let lab = Lab::shared();
    let key = random_key();
    assert!(
        login(lab, key.clone()).await.is_none(),
        "not yet authorized"
    );
    lab.authorize_key(&key.public_key().to_openssh().expect("OpenSSH public key"));
    let session = login(lab, key).await.expect("an authorized key logs in");
    assert_eq!(run(&session, "echo ok").await, ("ok\n".to_owned(), Some(0)));
}

#[tokio::test]
async fn requests_are_counted_by_action() {
    let lab = Lab::shared();
    let _serial = crate::common::SERIAL.lock().await;
    let ec2 = ec2(lab).await;
    // No other test here calls DescribeRegions, so its count moves only with this test.
    let before = lab
        .request_counts()
        .get("DescribeRegions")
        .copied()
        .unwrap_or(0);
    for _ in 0..2 {
        ec2.describe_regions()
            .send()
            .await
            .expect("DescribeRegions");
    }
    assert_eq!(
        lab.request_counts().get("DescribeRegions").copied(),
        Some(before + 2)
    );
    let kind = RequestKind {
        service: "ec2".into(),
        action: "DescribeRegions".into(),
    };
    assert_eq!(
        lab.request_counts_by_service().get(&kind).copied(),
        Some(before + 2)
    );
}

/// Socket inodes held by the lab's processes.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("lab process is running");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// (local address as in /proc/net/tcp*, inode) of every listening TCP socket.
fn listeners(table: &str) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.get(3) == Some(&"0A")).then(|| (f[1].to_owned(), f[9].parse().unwrap_or(0)))
        })
        .collect()
}

#[test]
fn lab_listens_on_loopback_only() {
    let lab = Lab::shared();
    let pids = lab.pids();
    let names: Vec<&str> = pids.iter().map(|(name, _)| name.as_str()).collect();
    if lab.has_ssh_front() {
        // The realism layer's SSH front runs inside moto's process, before two sshds.
        assert_eq!(names, ["moto", "sshd", "sshd-boot", "watch"]);
    } else {
        assert_eq!(names, ["moto", "sshd", "watch"]);
    }
    let inodes: BTreeSet<u64> = pids
        .iter()
        .flat_map(|(_, pid)| socket_inodes(*pid))
        .collect();

    let v6: Vec<_> = listeners("tcp6")
        .into_iter()
        .filter(|(_, i)| inodes.contains(i))
        .collect();
    assert!(v6.is_empty(), "lab listens on IPv6: {v6:?}");
    let mut ports = BTreeSet::new();
    for (addr, inode) in listeners("tcp") {
        if inodes.contains(&inode) {
            let (ip, port) = addr.split_once(':').expect("ADDR:PORT");
            assert_eq!(
                ip, "0100007F",
                "a lab process listens on {addr}, not 127.0.0.1"
            );
            ports.insert(u16::from_str_radix(port, 16).expect("hex port"));
        }
    }
    assert_eq!(ports, lab.listening_ports(), "the lab's listeners");
    assert_eq!(
        ports.len(),
        if lab.has_ssh_front() { 4 } else { 2 },
        "moto and the SSH port, and with the SSH front the two sshds behind it: {ports:?}"
    );
}
