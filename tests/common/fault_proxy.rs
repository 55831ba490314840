//! A small HTTP proxy in front of moto that injects AWS errors for chosen actions (throttling, 5xx, a
//! failing CreateImage), or answers a chosen action late: moto has done what it asked, and the answer is
//! held back, so a signal can land while the call is in flight. moto answers one request per connection,
//! so the proxy does the same.

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

/// Answer `action` `delay` late, after moto has carried it out: every call of it whose request `when`
/// accepts, while the proxy runs.
#[derive(Clone)]
pub struct Late {
    pub action: String,
    pub delay: std::time::Duration,
    pub when: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

/// A running proxy.
pub struct FaultProxy {
    pub url: String,
    faults: Arc<Mutex<Vec<Fault>>>,
    late: Arc<Mutex<Vec<Late>>>,
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
        let late: Arc<Mutex<Vec<Late>>> = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (f2, l2, late2) = (faults.clone(), log.clone(), late.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (up, f, l, lt) = (upstream.clone(), f2.clone(), l2.clone(), late2.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &up, f, l, lt).await;
                });
            }
        });
        FaultProxy {
            url,
            faults,
            late,
            log,
        }
    }

    /// From now on, answer `action` `delay` late when its request (form body) passes `when` and moto
    /// carried it out (a 2xx answer).
    pub fn answer_late(
        &self,
        action: &str,
        delay: std::time::Duration,
        when: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        self.late.lock().unwrap().push(Late {
            action: action.to_string(),
            delay,
            when: Arc::new(when),
        });
    }

    /// Waits (up to 20 s) until an answer to `action` is being held back, while `going` says the caller
    /// is still running; true when it is.
    pub async fn until_held(&self, action: &str, mut going: impl FnMut() -> bool) -> bool {
        let held = format!("held:{action}");
        for _ in 0..1000 {
            if self.seen(&held) > 0 {
                return true;
            }
            if !going() {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    /// How many times `action` was asked for (`held:Action`: how many of its answers were held back,
    /// each counted once moto has carried the call out).
    pub fn seen(&self, action: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == action)
            .count()
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
    late: Arc<Mutex<Vec<Late>>>,
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
    let body = String::from_utf8_lossy(&req).into_owned();
    // Only an answer saying the call took effect is held: a refusal (the lab's realism layer answers
    // some) did nothing, and the caller retries it.
    let took_effect = resp.starts_with(b"HTTP/1.1 2") || resp.starts_with(b"HTTP/1.0 2");
    let delay = late
        .lock()
        .unwrap()
        .iter()
        .find(|l| took_effect && l.action == action && (l.when)(&body))
        .map(|l| l.delay);
    if let Some(d) = delay {
        log.lock().unwrap().push((format!("held:{action}"), false));
        tokio::time::sleep(d).await;
    }
    sock.write_all(&resp).await?;
    sock.shutdown().await
}
