//! Plain HTTP/1.0 to the lab's moto over a std socket (moto answers one request per connection anyway),
//! for the lab's own endpoints under `/bakery-lab/`. A `bakery-lab` User-Agent keeps these requests out
//! of the request counts and out of the realism layer's faults.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::error::LabError;

/// `method path` with an optional JSON body: (HTTP status, body).
pub fn request(
    host_port: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), LabError> {
    let moto = |detail: String| LabError::Moto { detail };
    let mut conn =
        TcpStream::connect(host_port).map_err(|e| moto(format!("connect {host_port}: {e}")))?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: bakery-lab-harness\r\n"
    );
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    let mut response = String::new();
    conn.write_all(req.as_bytes())
        .and_then(|()| conn.read_to_string(&mut response))
        .map_err(|e| moto(format!("{method} {path}: {e}")))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            moto(format!(
                "{method} {path}: no HTTP status in `{}`",
                head.lines().next().unwrap_or("")
            ))
        })?;
    Ok((status, body.to_owned()))
}

/// [`request`], failing unless the status is 2xx.
pub fn request_ok(
    host_port: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, LabError> {
    let (status, text) = request(host_port, method, path, body)?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(LabError::Moto {
            detail: format!("{method} {path} answered {status}: {}", text.trim()),
        })
    }
}
