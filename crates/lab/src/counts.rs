//! moto's request counts, kept by the lab's moto launcher (lab/py/moto_lab.py) at
//! `/bakery-lab/requests`: one `service<TAB>action<TAB>count` line per pair. Plain HTTP/1.0 over a
//! std socket (moto answers one request per connection anyway).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::error::LabError;

const PATH: &str = "/bakery-lab/requests";

/// One counted request kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKind {
    /// The SigV4 signing name (`ec2`, `autoscaling`, `elasticloadbalancing`, `ssm`, ...), `-` if unsigned.
    pub service: String,
    /// The Action (query protocol), the X-Amz-Target operation (JSON protocol) or `METHOD /path` (REST).
    pub action: String,
}

pub fn fetch(host_port: &str) -> Result<BTreeMap<RequestKind, u64>, LabError> {
    parse(&request(host_port, "GET")?)
}

pub fn reset(host_port: &str) -> Result<(), LabError> {
    request(host_port, "DELETE").map(drop)
}

fn request(host_port: &str, method: &str) -> Result<String, LabError> {
    let moto = |detail: String| LabError::Moto { detail };
    let mut conn =
        TcpStream::connect(host_port).map_err(|e| moto(format!("connect {host_port}: {e}")))?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    // A `bakery-lab` User-Agent keeps the harness's own requests out of the counts.
    let req = format!(
        "{method} {PATH} HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: bakery-lab-harness\r\n\r\n"
    );
    let mut response = String::new();
    conn.write_all(req.as_bytes())
        .and_then(|()| conn.read_to_string(&mut response))
        .map_err(|e| moto(format!("{method} {PATH}: {e}")))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') {
        return Err(moto(format!(
            "{method} {PATH} answered `{}`",
            head.lines().next().unwrap_or("")
        )));
    }
    Ok(body.to_owned())
}

fn parse(body: &str) -> Result<BTreeMap<RequestKind, u64>, LabError> {
    let mut counts = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.split('\t');
        let (Some(service), Some(action), Some(n), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(LabError::Moto {
                detail: format!("bad count line `{line}`"),
            });
        };
        let n = n.parse().map_err(|_| LabError::Moto {
            detail: format!("bad count in `{line}`"),
        })?;
        counts.insert(
            RequestKind {
                service: service.to_owned(),
                action: action.to_owned(),
            },
            n,
        );
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_count_lines() {
        let counts = parse("ec2\tDescribeImages\t4\nautoscaling\tDescribeTags\t1\n").unwrap();
        let kind = |s: &str, a: &str| RequestKind {
            service: s.into(),
            action: a.into(),
        };
        assert_eq!(counts.get(&kind("ec2", "DescribeImages")), Some(&4));
        assert_eq!(counts.get(&kind("autoscaling", "DescribeTags")), Some(&1));
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn rejects_a_malformed_line() {
        assert!(parse("ec2\tDescribeImages\n").is_err());
        assert!(parse("ec2\tDescribeImages\tmany\n").is_err());
    }
}
