//! This machine's public address, as the internet sees it: what a security group must allow when the
//! instance is reached over its public address. Asked of `https://checkip.amazonaws.com/` (AWS's own
//! service, the one Packer uses) over HTTPS, through the proxy the environment names (`HTTPS_PROXY`,
//! `NO_PROXY`), with the SDK's own HTTP client and TLS.

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;
use std::net::IpAddr;
use std::time::Duration;

/// Where the address is asked.
pub const CHECKIP_URL: &str = "https://checkip.amazonaws.com/";

/// Why the address could not be learnt.
#[derive(Debug, thiserror::Error)]
pub enum CheckIpError {
    /// The request failed (no route, proxy refused, TLS, timeout).
    #[error("asking {url}: {detail}")]
    Request {
        /// The URL asked.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The answer was not an address.
    #[error("{url} answered {answer:?}, not an IP address")]
    NotAnAddress {
        /// The URL asked.
        url: String,
        /// Its first line.
        answer: String,
    },
}

/// This machine's public address, from [`CHECKIP_URL`] through the environment's proxy settings.
pub async fn this_machine() -> Result<IpAddr, CheckIpError> {
    public_address(CHECKIP_URL, ProxyConfig::from_env()).await
}

/// Asks `url` for this machine's public address through `proxy` (in production: [`CHECKIP_URL`] and
/// `ProxyConfig::from_env()`), within 10 s.
pub async fn public_address(url: &str, proxy: ProxyConfig) -> Result<IpAddr, CheckIpError> {
    let fail = |detail: String| CheckIpError::Request {
        url: url.to_string(),
        detail,
    };
    let connector = Connector::builder()
        .proxy_config(proxy)
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build();
    let request = HttpRequest::get(url).map_err(|e| fail(e.to_string()))?;
    let answer = async {
        let response = connector.call(request).await.map_err(|e| {
            fail(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())
        })?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status().as_u16())));
        }
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .into_bytes();
        Ok(String::from_utf8_lossy(&body).to_string())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .map_err(|_| fail("no answer within 10 s".into()))??;
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    first.parse().map_err(|_| CheckIpError::NotAnAddress {
        url: url.to_string(),
        answer: first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot server on 127.0.0.1 that records the request head and answers `reply`.
    async fn serve_once(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = s.write_all(reply.as_bytes()).await;
            let _ = s.shutdown().await;
            head
        });
        (addr, h)
    }

    #[tokio::test]
    async fn the_answer_is_parsed_v4_and_v6() {
        for (body, want) in [
            ("203.0.113.7\n", "203.0.113.7"),
            ("2001:db8::7\n", "2001:db8::7"),
        ] {
            let reply: &'static str = Box::leak(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_boxed_str(),
            );
            let (addr, _h) = serve_once(reply).await;
            let ip = public_address(&format!("http://{addr}/"), ProxyConfig::disabled())
                .await
                .unwrap();
            assert_eq!(ip.to_string(), want);
        }
        let (addr, _h) =
            serve_once("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                .await;
        let e = public_address(&format!("http://{addr}/"), ProxyConfig::disabled())
            .await
            .unwrap_err();
        assert!(matches!(e, CheckIpError::NotAnAddress { .. }), "{e}");
    }

    #[tokio::test]
    async fn https_goes_through_the_proxy() {
        // The proxy sees a CONNECT for AWS's service and refuses it: nothing leaves this machine.
        let (proxy, head) =
            serve_once("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        let e = public_address(
            CHECKIP_URL,
            ProxyConfig::https(format!("http://{proxy}")).unwrap(),
        )
        .await
        .unwrap_err();
        let head = head.await.unwrap();
        assert!(
            head.starts_with("CONNECT checkip.amazonaws.com:443 "),
            "{head}"
        );
        assert!(matches!(e, CheckIpError::Request { .. }), "{e}");
    }
}
