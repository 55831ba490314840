//! moto's request counts, kept by the lab's moto launcher (lab/py/moto_lab.py) at
//! `/bakery-lab/requests`: one `service<TAB>action<TAB>count` line per pair.

use std::collections::BTreeMap;

use crate::error::LabError;
use crate::http;

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
    parse(&http::request_ok(host_port, "GET", PATH, None)?)
}

pub fn reset(host_port: &str) -> Result<(), LabError> {
    http::request_ok(host_port, "DELETE", PATH, None).map(drop)
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
