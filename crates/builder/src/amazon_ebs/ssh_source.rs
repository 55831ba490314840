//! Where the temporary security group lets SSH in from: the address this machine's connection really
//! arrives from, decided by the route bake will take to the instance.
//!
//! 1. `temporary_security_group_source_cidrs`, when given, exactly.
//! 2. A bastion: the VPC's CIDR blocks (the connection comes from the bastion, inside the network).
//! 3. The **public route** — `ssh_interface` public_ip/public_dns, an `ssh_host` with a public address or a
//!    name, or no interface and an instance that gets a public address (`associate_public_ip_address`, else
//!    the subnet's `MapPublicIpOnLaunch`; a default VPC's subnets map one) — this machine's public
//!    address, asked over HTTPS (`bakery_core::checkip`, through `HTTPS_PROXY`): IPv4 as a /32 rule, IPv6
//!    as a /128 rule.
//! 4. The **private route** — `ssh_interface` private_ip/private_dns, a private or loopback `ssh_host`, or
//!    an instance without a public address — the address this machine sends from on its route to the
//!    instance's network (the kernel's choice for the subnet, or the `ssh_host`; no packet is sent): right
//!    for a runner in the same VPC, a peered VPC, behind a transit gateway or a VPN, where the VPC's own
//!    range is not.
//!
//! 5. **IPv6** — `ssh_interface: ipv6`: this machine's IPv6 address on the route to the instance's IPv6
//!    address, as a /128 rule added once the launched instance has that address.
//!
//! If a public route was chosen and the launched instance has no public address after all, the private
//! route's address is authorized too before connecting (`security_group::authorize_for_launched`). Every choice is said
//! in the log with its reason. Nothing is ever opened to the world by default.

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
use bakery_core::pipeline::StepError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The route bake takes to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `temporary_security_group_source_cidrs`.
    Explicit(Vec<String>),
    /// Through a bastion inside the network.
    Bastion,
    /// To the instance's public address.
    Public,
    /// To a private address: `ssh_host`'s, or one of the instance's network (unknown before launch).
    Private(Option<IpAddr>),
    /// `ssh_interface: ipv6`: to the instance's IPv6 address, from this machine's IPv6 address on the route
    /// to it (authorized once the launched instance has its address).
    Ipv6,
}

/// What the subnet says, when bake asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetFacts {
    /// `MapPublicIpOnLaunch`.
    pub maps_public_ip: Option<bool>,
    /// Its IPv4 CIDR.
    pub cidr: Option<String>,
}

/// True for addresses only reachable inside a network (RFC 1918, loopback, link-local, ULA, CGNAT).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Whether the decision needs the subnet's facts (no explicit answer in the template).
pub fn needs_subnet(cfg: &bakery_template::schema::AmazonEbsConfig) -> bool {
    matches!(decide(cfg, None).0, Route::Public)
        && cfg.run.ssh_interface.is_none()
        && cfg.comm.ssh_host.as_deref().is_none_or(str::is_empty)
        && cfg.run.associate_public_ip_address.is_none()
}

/// The route, and why, from the template and (when asked) the subnet.
pub fn decide(
    cfg: &bakery_template::schema::AmazonEbsConfig,
    subnet: Option<&SubnetFacts>,
) -> (Route, String) {
    let cidrs: Vec<String> = cfg
        .run
        .temporary_security_group_source_cidrs
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    if !cidrs.is_empty() {
        return (
            Route::Explicit(cidrs),
            "temporary_security_group_source_cidrs".into(),
        );
    }
    if cfg
        .comm
        .ssh_bastion_host
        .as_deref()
        .is_some_and(|h| !h.is_empty())
    {
        return (
            Route::Bastion,
            "the connection comes from the bastion, inside the VPC".into(),
        );
    }
    if let Some(h) = cfg.comm.ssh_host.as_deref().filter(|h| !h.is_empty()) {
        return match h.parse::<IpAddr>() {
            Ok(ip) if is_private(ip) => (
                Route::Private(Some(ip)),
                format!("ssh_host {h} is a private address"),
            ),
            Ok(_) => (Route::Public, format!("ssh_host {h} is a public address")),
            Err(_) => (
                Route::Public,
                format!("ssh_host {h} is a name; assumed reached over the internet"),
            ),
        };
    }
    match cfg.run.ssh_interface.map(|i| i.as_str()) {
        Some("private_ip" | "private_dns") => {
            return (Route::Private(None), "ssh_interface is private".into());
        }
        Some("public_ip" | "public_dns") => {
            return (Route::Public, "ssh_interface is public".into());
        }
        Some("ipv6") => {
            return (
                Route::Ipv6,
                "ssh_interface is ipv6: this machine's IPv6 address on the route to the instance's, authorized once the instance has one".into(),
            );
        }
        _ => {}
    }
    match cfg.run.associate_public_ip_address {
        Some(true) => (
            Route::Public,
            "associate_public_ip_address gives the instance a public address".into(),
        ),
        Some(false) => (
            Route::Private(None),
            "associate_public_ip_address: false, the instance has no public address".into(),
        ),
        None => match subnet.and_then(|s| s.maps_public_ip) {
            Some(true) => (
                Route::Public,
                "the subnet gives instances a public address".into(),
            ),
            Some(false) => (
                Route::Private(None),
                "the subnet gives instances no public address".into(),
            ),
            None => (
                Route::Public,
                "a default VPC's subnet gives instances a public address".into(),
            ),
        },
    }
}

/// The address this machine sends from on its route to `target` (no packet is sent: a UDP socket's
/// `connect` only asks the kernel's routing table).
pub fn local_source_for(target: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match target {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect((target, 22)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// An address inside `cidr` (its fourth: AWS reserves the first four of a subnet), to route towards.
fn address_in(cidr: &str) -> Option<IpAddr> {
    let (net, _) = cidr.split_once('/')?;
    match net.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(4)))),
        v6 => Some(v6),
    }
}

/// `ip` as a one-address CIDR.
pub fn host_cidr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// The ingress rule for `cidrs` on `port`, IPv4 and IPv6 ranges apart.
pub fn permission(port: i32, cidrs: &[String]) -> IpPermission {
    let (v6, v4): (Vec<&String>, Vec<&String>) = cidrs.iter().partition(|c| c.contains(':'));
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .set_ip_ranges(
            Some(
                v4.iter()
                    .map(|c| IpRange::builder().cidr_ip(*c).build())
                    .collect(),
            )
            .filter(|v: &Vec<_>| !v.is_empty()),
        )
        .set_ipv6_ranges(
            Some(
                v6.iter()
                    .map(|c| Ipv6Range::builder().cidr_ipv6(*c).build())
                    .collect(),
            )
            .filter(|v: &Vec<_>| !v.is_empty()),
        )
        .build()
}

/// The private route's source: towards `target`, else the subnet's network, else the VPC's.
pub fn private_source(
    target: Option<IpAddr>,
    subnet_cidr: Option<&str>,
    vpc_cidrs: &[String],
) -> Result<String, StepError> {
    let towards = target
        .or_else(|| subnet_cidr.and_then(address_in))
        .or_else(|| vpc_cidrs.first().and_then(|c| address_in(c)))
        .ok_or_else(|| {
            StepError::msg(
                "could not tell the instance's network to find this machine's address on the route to it; set temporary_security_group_source_cidrs",
            )
        })?;
    let src = local_source_for(towards).ok_or_else(|| {
        StepError::msg(format!(
            "this machine has no route to {towards} (the instance's network); set temporary_security_group_source_cidrs"
        ))
    })?;
    Ok(host_cidr(src))
}
