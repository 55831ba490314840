//! A small HTTP proxy in front of moto that injects AWS errors for chosen actions: throttling, 5xx, or a
//! failing CreateImage. moto answers one request per connection, so the proxy does the same.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Fail `action` `times` times with HTTP `status` and AWS error `code`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub action: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub times: usize,
}

/// A running proxy.
pub struct FaultProxy {
    pub url: String,
    faults: Arc<Mutex<Vec<Fault>>>,
    /// Actions seen, in order, with whether they were failed.
    pub log: Arc<Mutex<Vec<(String, bool)>>>,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Vec<Fault>) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Mutex::new(faults));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (f2, l2) = (faults.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (up, f, l) = (upstream.clone(), f2.clone(), l2.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &up, f, l).await;
                });
            }
        });
        FaultProxy { url, faults, log }
    }

    /// How many times `action` was failed.
    pub fn failed(&self, action: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, f)| a == action && *f)
            .count()
    }

    pub fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Ok(buf);
        }
    }
}

fn action_of(req: &[u8]) -> String {
    let text = String::from_utf8_lossy(req);
    text.split(['&', '?', '\n'])
        .find_map(|p| p.trim().strip_prefix("Action="))
        .unwrap_or("")
        .to_string()
}

async fn serve(
    mut sock: TcpStream,
    upstream: &str,
    faults: Arc<Mutex<Vec<Fault>>>,
    log: Arc<Mutex<Vec<(String, bool)>>>,
) -> std::io::Result<()> {
    let req = read_request(&mut sock).await?;
    let action = action_of(&req);
    let fault = {
        let mut f = faults.lock().unwrap();
        match f.iter_mut().find(|x| x.action == action && x.times > 0) {
            Some(x) => {
                x.times -= 1;
                Some(x.clone())
            }
            None => None,
        }
    };
    log.lock().unwrap().push((action.clone(), fault.is_some()));
    if let Some(f) = fault {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>test</RequestID></Response>",
            f.code
        );
        let resp = format!(
            "HTTP/1.1 {} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            f.status,
            body.len()
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&req).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    sock.write_all(&resp).await?;
    sock.shutdown().await
}
