//! A small fault-injecting TCP proxy for the storage tests, placed between reclife and a real
//! server (there is no toxiproxy or netem here). Connections are forwarded to the upstream and
//! their HTTP/1.1 requests followed one by one; a share of the requests, drawn from a seeded
//! generator, gets one fault: added latency, a bandwidth cap, a reset of the connection after
//! some bytes of the answer, a stall, or an HTTP 503 / 429 answered in place of the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every chunk forwarded is held back this long.
    Latency(Duration),
    /// At most this many bytes per second in each direction.
    Bandwidth(u64),
    /// The connection is reset (RST) after this many bytes from the server.
    ResetAfter(u64),
    /// Nothing more is forwarded after this many bytes from the server (the client must time out).
    StallAfter(u64),
    /// The request is answered with this status (503 or 429) and the connection closed.
    Status(u16),
}

/// What the proxy injects: `share` of requests (0..=1) get a fault picked from `kinds`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub share: f64,
    pub kinds: Vec<Fault>,
    pub seed: u64,
    /// Only requests whose head contains this are faulted (`None`: any).
    pub only: Option<&'static str>,
    /// At most this many faults in all (`None`: no limit).
    pub max_faults: Option<u64>,
}

impl Plan {
    /// `share` of all requests faulted with one of `kinds`.
    pub fn share(share: f64, kinds: Vec<Fault>, seed: u64) -> Plan {
        Plan { share, kinds, seed, only: None, max_faults: None }
    }
}

/// Counts of what happened, for the test's report.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub faulted: AtomicU64,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Proxy {
    /// Starts a proxy on an ephemeral loopback port in front of `upstream`.
    pub async fn start(upstream: SocketAddr, plan: Plan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared { plan, rng: Mutex::new(Rng(0)), stats: stats.clone() });
        shared.rng.lock().unwrap().0 = shared.plan.seed | 1;
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, shared).await;
                });
            }
        });
        Proxy { addr, stats, task }
    }

    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    pub fn faulted(&self) -> u64 {
        self.stats.faulted.load(Ordering::Relaxed)
    }
}

struct Shared {
    plan: Plan,
    rng: Mutex<Rng>,
    stats: Arc<Stats>,
}

impl Shared {
    fn draw(&self, head: &str) -> Option<Fault> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut r = self.rng.lock().unwrap();
        if self.plan.kinds.is_empty() || r.unit() >= self.plan.share {
            return None;
        }
        if self.plan.only.is_some_and(|o| !head.contains(o))
            || self.plan.max_faults.is_some_and(|m| self.stats.faulted.load(Ordering::Relaxed) >= m)
        {
            return None;
        }
        self.stats.faulted.fetch_add(1, Ordering::Relaxed);
        Some(self.plan.kinds[(r.next() % self.plan.kinds.len() as u64) as usize])
    }
}

/// The fault armed for the answer to the request in flight, with the server bytes seen so far.
#[derive(Default)]
struct Armed {
    fault: Option<Fault>,
    at: u64,
}

/// Forwards one client connection. Requests are read one at a time (head, then a body of
/// Content-Length bytes), so each request draws its own fault; a request with a chunked body
/// ends the parsing and the rest of the connection is forwarded as it comes.
async fn serve(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    // SO_LINGER 0 on the client side: a reset fault closes with RST rather than FIN.
    client.set_zero_linger()?;
    let (mut cr, cw) = client.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let (mut sr, mut sw) = server.into_split();
    let armed = Arc::new(Mutex::new(Armed::default()));
    let seen = Arc::new(AtomicU64::new(0));
    let up = {
        let armed = armed.clone();
        let seen = seen.clone();
        let cw_up = cw.clone();
        async move {
            let mut buf: Vec<u8> = Vec::new();
            let mut tmp = vec![0u8; 16 * 1024];
            loop {
                // One request head.
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = cr.read(&mut tmp).await?;
                    if n == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    buf.extend_from_slice(&tmp[..n]);
                };
                let raw_head = String::from_utf8_lossy(&buf[..end]).to_string();
                let head = raw_head.to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<u64>().unwrap_or(0)))
                    .unwrap_or(0);
                let chunked = head.contains("transfer-encoding: chunked");
                let fault = shared.draw(&raw_head);
                match fault {
                    Some(Fault::Status(code)) => {
                        // Answered in the server's place (the earlier answer on this
                        // connection is complete: HTTP/1.1 clients do not pipeline).
                        let reason = if code == 429 { "Too Many Requests" } else { "Service Unavailable" };
                        let resp = format!(
                            "HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nRetry-After: 0\r\nConnection: close\r\n\r\n"
                        );
                        let mut w = cw_up.lock().await;
                        w.write_all(resp.as_bytes()).await?;
                        w.shutdown().await?;
                        return Ok(());
                    }
                    Some(Fault::Latency(d)) => tokio::time::sleep(d).await,
                    _ => {}
                }
                *armed.lock().unwrap() = Armed { fault, at: seen.load(Ordering::SeqCst) };
                sw.write_all(&buf[..end]).await?;
                buf.drain(..end);
                if chunked {
                    sw.write_all(&buf).await?;
                    tokio::io::copy(&mut cr, &mut sw).await?;
                    return Ok(());
                }
                let mut left = length;
                while left > 0 {
                    if buf.is_empty() {
                        let n = cr.read(&mut tmp).await?;
                        if n == 0 {
                            return Ok(());
                        }
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    let k = (left as usize).min(buf.len());
                    if let Some(Fault::Bandwidth(bps)) = fault {
                        tokio::time::sleep(Duration::from_secs_f64(k as f64 / bps.max(1) as f64)).await;
                    }
                    sw.write_all(&buf[..k]).await?;
                    buf.drain(..k);
                    left -= k as u64;
                }
            }
        }
    };
    let down = {
        let armed = armed.clone();
        let seen = seen.clone();
        async move {
            let mut tmp = vec![0u8; 16 * 1024];
            loop {
                let n = sr.read(&mut tmp).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                let before = seen.fetch_add(n as u64, Ordering::SeqCst);
                let (fault, at) = {
                    let a = armed.lock().unwrap();
                    (a.fault, a.at)
                };
                let sent = before.saturating_sub(at);
                match fault {
                    Some(Fault::Latency(d)) => tokio::time::sleep(d / 4).await,
                    Some(Fault::Bandwidth(bps)) => {
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps.max(1) as f64)).await
                    }
                    Some(Fault::ResetAfter(limit)) if sent + n as u64 >= limit => {
                        cw.lock().await.write_all(&tmp[..limit.saturating_sub(sent) as usize]).await?;
                        return Ok(());
                    }
                    Some(Fault::StallAfter(limit)) if sent + n as u64 >= limit => {
                        cw.lock().await.write_all(&tmp[..limit.saturating_sub(sent) as usize]).await?;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return Ok(());
                    }
                    _ => {}
                }
                cw.lock().await.write_all(&tmp[..n]).await?;
            }
        }
    };
    // Either side ending (or a fault) closes the whole connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    Ok(())
}
