//! A hostile RWS look-alike for the downloader tests: a bare HTTP/1.1 server on loopback (std
//! threads, one connection per request, not reclife's own server) whose answers each test
//! writes as a function of the request. It records every request (path, `Authorization`,
//! `Range`) and how many body bytes it managed to send, so a test sees what reached it and how
//! far a client read.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Req {
    /// Path and query, as sent.
    pub target: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// A body: bytes, or `len` copies of one byte written in 64 KiB chunks (for huge bodies).
pub enum Body {
    Bytes(Vec<u8>),
    Repeat(u8, u64),
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Resp {
    pub fn json(v: &serde_json::Value) -> Resp {
        Resp {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(serde_json::to_vec(v).unwrap()),
        }
    }
    pub fn bytes(status: u16, b: Vec<u8>) -> Resp {
        Resp { status, headers: Vec::new(), body: Body::Bytes(b) }
    }
    pub fn not_found() -> Resp {
        Resp::bytes(404, b"not found".to_vec())
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// A bound, not yet answering, server: its URL is known before its handler is written (two
/// servers that name each other).
pub struct Bound {
    listener: TcpListener,
    pub url: String,
}

pub fn bind() -> Bound {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    Bound { listener, url }
}

/// A running server.
pub struct Hostile {
    pub url: String,
    log: Arc<Mutex<Vec<(Req, u64)>>>,
    stop: Arc<AtomicBool>,
}

impl Bound {
    pub fn serve(self, handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Hostile {
        let handler: Handler = Arc::new(handler);
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, h, lg, st) = (self.listener, handler, log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, lg) = (h.clone(), lg.clone());
                std::thread::spawn(move || answer(conn, &h, &lg));
            }
        });
        Hostile { url: self.url, log, stop }
    }
}

impl Hostile {
    /// Every request so far, with the body bytes sent in answer.
    pub fn requests(&self) -> Vec<(Req, u64)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn answer(conn: TcpStream, h: &Handler, log: &Mutex<Vec<(Req, u64)>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut authorization, mut range) = (None, None);
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(v.trim().to_string()),
                "range" => range = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let req = Req { target, authorization, range };
    let resp = h(&req);
    let idx = {
        let mut g = log.lock().unwrap();
        g.push((req, 0));
        g.len() - 1
    };
    let len = match &resp.body {
        Body::Bytes(b) => b.len() as u64,
        Body::Repeat(_, n) => *n,
    };
    let mut w = conn;
    let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {len}\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if w.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent = 0u64;
    match resp.body {
        Body::Bytes(b) => {
            if w.write_all(&b).is_ok() {
                sent = b.len() as u64;
            }
        }
        Body::Repeat(byte, n) => {
            let chunk = vec![byte; 64 << 10];
            while sent < n {
                let k = (n - sent).min(chunk.len() as u64) as usize;
                if w.write_all(&chunk[..k]).is_err() {
                    break;
                }
                sent += k as u64;
            }
        }
    }
    let _ = w.flush();
    log.lock().unwrap()[idx].1 = sent;
}

/// A recording document of the RWS listing's shape with one MP3 fetched from `media_uri`.
pub fn doc(id: &str, start: &str, stop: &str, media_uri: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "startTime": start, "stopTime": stop, "callType": "Inbound",
        "mediaFiles": [{"mediaId": format!("{id}.mp3"), "type": "audio/mp3", "size": size.to_string(),
            "startTime": start, "stopTime": stop, "mediaUri": media_uri}]})
}

/// Runs `cmd`, killing it after `secs` (a client that loops forever fails the test, not hangs it).
pub fn output_within(mut cmd: std::process::Command, secs: u64) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if t0.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s: killed\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
