//! The WebDAV backend: one resource per key beneath `webdav(s)://host:port/path`, collections
//! for the key's folders (created as needed). Listing uses reqwest_dav's PROPFIND (`Depth: 1`,
//! walked, since servers such as Apache refuse `Depth: infinity`); the other requests are built
//! with its authenticated `start_request`, because reqwest_dav has no conditional requests, no
//! ranges and sends MOVE's `Destination` as a bare path (Apache answers that with 400).
//!
//! A body up to one part goes up in one PUT, which the server makes atomic (Apache writes a
//! temporary file and renames it). A bigger one goes to a hidden temporary resource in parts
//! (`Content-Range` PUTs, each retried; one part in memory) and is then MOVEd over the final
//! name. Create-only writes cannot rely on `If-None-Match: *` or `Overwrite: F`: Apache checks
//! them before it writes, so of racing writers several may win (measured; see
//! ARCHITECTURE.md). Instead a writer first claims the name with MKCOL of a hidden claim
//! collection beside it (mkdir is atomic, so exactly one claim succeeds), then checks the name
//! is free, publishes, and drops the claim. The claim is held only for that check and the
//! publish, so one older than [`STALE_CLAIM`] belongs to a crashed writer and is removed.

use super::config::{env, WebDavConfig};
use super::retry::{self, Attempt, RetryPolicy};
use super::{ByteStream, Key, Location, MediaStore, ObjectMeta, StorageError};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Names beginning with this are the store's own (temporary uploads, claims); never keys.
const RESERVED: &str = ".reclife-";
/// A claim older than this was left by a crashed writer.
const STALE_CLAIM: Duration = Duration::from_secs(120);
/// A claim that stays this long after an attempt of ours went unanswered is ours.
const OWN_CLAIM: Duration = Duration::from_secs(10);
/// Refusals of a claim's MKCOL with neither a claim nor the key there afterwards that are
/// taken as the server's answer (fewer are retried: a race under load).
const REFUSALS: u32 = 3;
/// Folders listed at once by a walk.
const LIST_CONCURRENCY: usize = 8;
/// Bodies up to this size are sent in one PUT; bigger ones in parts of this size.
const PART: usize = 8 * 1024 * 1024;

/// Media (or backups) on a WebDAV server.
#[derive(Clone)]
pub struct WebDavStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds the credentials; never printed.
    dav: reqwest_dav::Client,
    /// The store's root collection, ending in `/`.
    base: url::Url,
    describe: String,
    policy: RetryPolicy,
    request_timeout: Duration,
    read_timeout: Duration,
}

impl std::fmt::Debug for WebDavStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDavStore").field("location", &self.inner.describe).finish_non_exhaustive()
    }
}

type Resp = reqwest::Response;

impl WebDavStore {
    /// Opens the store at `url` (http or https). Credentials: `[webdav]` `username` or
    /// `WEBDAV_USERNAME`, and the first line of `password_file` or `WEBDAV_PASSWORD`; none at
    /// all means anonymous access.
    pub fn open(url: &url::Url, location: &Location, cfg: &WebDavConfig) -> Result<WebDavStore, StorageError> {
        let describe = location.to_string();
        let conf_err = |message: String| StorageError::Config { store: describe.clone(), message };
        let user = cfg.username.clone().or_else(|| env("WEBDAV_USERNAME"));
        let password = match &cfg.password_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| conf_err(format!("webdav password_file {}: {e}", p.display())))?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
            None => env("WEBDAV_PASSWORD"),
        };
        let auth = match (user, password) {
            (Some(u), Some(p)) => reqwest_dav::Auth::Basic(u, p),
            (None, None) => reqwest_dav::Auth::Anonymous,
            (Some(_), None) => {
                return Err(conf_err(
                    "a WebDAV user name but no password (WEBDAV_PASSWORD or [webdav] password_file)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(conf_err(
                    "a WebDAV password but no user name (WEBDAV_USERNAME or [webdav] username)".into(),
                ))
            }
        };
        let net = &cfg.net;
        let agent = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(net.connect_timeout_secs))
            .read_timeout(Duration::from_secs(net.read_timeout_secs.max(1)))
            // A redirect would mean a collection where a key was meant; never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| conf_err(format!("HTTP client: {e}")))?;
        let mut base = url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let host = format!("{}://{}", base.scheme(), &base[url::Position::BeforeHost..url::Position::AfterPort]);
        let dav = reqwest_dav::ClientBuilder::new()
            .set_agent(agent)
            .set_host(host)
            .set_auth(auth)
            .build()
            .map_err(|e| conf_err(format!("WebDAV client: {e}")))?;
        Ok(WebDavStore {
            inner: Arc::new(Inner {
                dav,
                base,
                describe,
                policy: net.policy(),
                request_timeout: Duration::from_secs(net.request_timeout_secs.max(1)),
                read_timeout: Duration::from_secs(net.read_timeout_secs.max(1)),
            }),
        })
    }
}

impl Inner {
    /// The URL of a resource `names` below the base (a collection when `dir`).
    fn url_of<'a>(&self, names: impl IntoIterator<Item = &'a str>, dir: bool) -> url::Url {
        let mut u = self.base.clone();
        {
            let mut segs = u.path_segments_mut().expect("http URLs have paths");
            segs.pop_if_empty();
            segs.extend(names);
            if dir {
                segs.push("");
            }
        }
        u
    }

    fn key_url(&self, key: &Key) -> url::Url {
        self.url_of(key.segments(), false)
    }

    /// A hidden sibling of `key` (`.reclife-<what>-<name>`).
    fn sibling(&self, key: &Key, what: &str, dir: bool) -> url::Url {
        let segs: Vec<&str> = key.segments().collect();
        let (last, parents) = segs.split_last().expect("a key has a segment");
        let name = format!("{RESERVED}{what}-{last}");
        self.url_of(parents.iter().copied().chain([name.as_str()]), dir)
    }

    fn backend(&self, op: &'static str, key: &str, message: String) -> StorageError {
        StorageError::Backend { store: self.describe.clone(), op, key: key.to_string(), message }
    }

    /// One request, built fresh per attempt by `build`, with the request timeout.
    async fn send(
        &self,
        method: Method,
        url: &url::Url,
        timeout: Option<Duration>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Resp, reqwest_dav::Error> {
        let rb = self.dav.start_request(method, url.path()).await?;
        let rb = match timeout {
            Some(t) => rb.timeout(t),
            None => rb,
        };
        Ok(build(rb).send().await?)
    }

    /// Sorts a transport failure or an unexpected status into retry or fail.
    fn classify(&self, op: &'static str, key: &str, r: Result<Resp, reqwest_dav::Error>) -> Result<Resp, Attempt> {
        let store = self.describe.clone();
        let resp = match r {
            Ok(resp) => resp,
            Err(reqwest_dav::Error::Reqwest(e)) => {
                // Strip the URL: it is ours, and the message names the key already.
                let builder = e.is_builder();
                let err = self.backend(op, key, e.without_url().to_string());
                return Err(if builder { Attempt::Fail(err) } else { Attempt::retry(err) });
            }
            Err(e) => return Err(Attempt::Fail(self.backend(op, key, format!("{e:?}")))),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let after = retry::retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
        let key = key.to_string();
        let message = format!("HTTP {status}");
        Err(match status.as_u16() {
            404 => Attempt::Fail(StorageError::NotFound { store, key }),
            412 => Attempt::Fail(StorageError::AlreadyExists { store, key }),
            401 | 403 => Attempt::Fail(StorageError::Auth { store, op, key, message }),
            429 | 500..=599 => Attempt::Retry { error: self.backend(op, &key, message), after },
            _ => Attempt::Fail(self.backend(op, &key, message)),
        })
    }

    /// MKCOL every collection from the base down to `key`'s folder (existing ones are fine).
    async fn make_parents(self: &Arc<Self>, key: &Key) -> Result<(), StorageError> {
        let segs: Vec<&str> = key.segments().collect();
        // The base itself and its ancestors, then the key's folders.
        let mut urls = Vec::new();
        let base_segs: Vec<String> = self
            .base
            .path_segments()
            .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        for i in 1..=base_segs.len() {
            let mut u = self.base.clone();
            u.set_path(&format!("/{}/", base_segs[..i].join("/")));
            urls.push(u);
        }
        for i in 1..segs.len() {
            urls.push(self.url_of(segs[..i].iter().copied(), true));
        }
        let above_base = urls.len() - (segs.len() - 1);
        for (i, u) in urls.into_iter().enumerate() {
            let k = key.to_string();
            let me = self.clone();
            let r = retry::run(&self.policy, "MKCOL", move |_| {
                let me = me.clone();
                let u = u.clone();
                let k = k.clone();
                Box::pin(async move {
                    let r = me
                        .send(Method::from_bytes(b"MKCOL").expect("valid"), &u, Some(me.request_timeout), |b| b)
                        .await;
                    match r {
                        // 405: it exists already; 301: it exists, asked without the slash.
                        Ok(resp) if matches!(resp.status().as_u16(), 405 | 301) => Ok(()),
                        // Apache answers 403 to the losers of a race to create one folder
                        // (and the winner's folder may not show yet): look, else try again.
                        Ok(resp) if resp.status() == StatusCode::FORBIDDEN => {
                            if me.age(&u).await.is_some() {
                                Ok(())
                            } else {
                                Err(Attempt::retry(attempt_error(
                                    me.classify("create folder", &k, Ok(resp)).unwrap_err(),
                                )))
                            }
                        }
                        r => me.classify("create folder", &k, r).map(|_| ()),
                    }
                })
            })
            .await;
            // The base's ancestors may be out of bounds for us (403) while existing; a real
            // problem there shows up in the request that follows.
            if i >= above_base {
                r?;
            }
        }
        Ok(())
    }

    /// PUTs `data` to `url` (optionally one `Content-Range` part at `offset`), retried.
    async fn put_bytes(
        self: &Arc<Self>,
        key: &Key,
        url: &url::Url,
        data: Bytes,
        offset: Option<u64>,
    ) -> Result<(), StorageError> {
        let me = self.clone();
        let u = url.clone();
        let k = key.to_string();
        let len = data.len() as u64;
        // Slow links get time in proportion to the body (1 MB/s at least).
        let timeout = self.request_timeout + Duration::from_secs(len / 1_000_000);
        retry::run(&self.policy, "PUT", move |_| {
            let me = me.clone();
            let u = u.clone();
            let k = k.clone();
            let data = data.clone();
            Box::pin(async move {
                let r = me
                    .send(Method::PUT, &u, Some(timeout), |b| {
                        let b = b.header("content-length", len).body(data.clone());
                        // Apache writes a Content-Range PUT in place (the temporary resource).
                        match offset {
                            Some(off) if len > 0 => {
                                b.header("content-range", format!("bytes {off}-{}/*", off + len - 1))
                            }
                            _ => b,
                        }
                    })
                    .await;
                me.classify("put", &k, r).map(|_| ())
            })
        })
        .await
    }

    /// MOVE `from` over `to`. A retry that finds the source gone after an earlier attempt
    /// checks that `to` has the size moved: the earlier MOVE happened, its answer was lost.
    async fn move_to(
        self: &Arc<Self>,
        key: &Key,
        from: &url::Url,
        to: &url::Url,
        size: u64,
    ) -> Result<(), StorageError> {
        let me = self.clone();
        let (from, to) = (from.clone(), to.clone());
        let k = key.clone();
        retry::run(&self.policy, "MOVE", move |attempt| {
            let me = me.clone();
            let (from, to) = (from.clone(), to.clone());
            let k = k.clone();
            Box::pin(async move {
                let r = me
                    .send(Method::from_bytes(b"MOVE").expect("valid"), &from, Some(me.request_timeout), |b| {
                        // A full URL: Apache answers a bare path with 400.
                        b.header("destination", to.as_str()).header("overwrite", "T")
                    })
                    .await;
                match me.classify("publish", k.as_str(), r) {
                    Ok(_) => Ok(()),
                    Err(Attempt::Fail(StorageError::NotFound { .. })) if attempt > 1 => {
                        match me.head_url(k.as_str(), &to).await {
                            Ok(n) if n == size => Ok(()),
                            _ => Err(Attempt::Fail(me.backend(
                                "publish",
                                k.as_str(),
                                "the uploaded part vanished".into(),
                            ))),
                        }
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .await
    }

    /// The size of the object at `url` (retried like every request).
    async fn head_url(self: &Arc<Self>, key: &str, url: &url::Url) -> Result<u64, StorageError> {
        let me = self.clone();
        let (k, u) = (key.to_string(), url.clone());
        retry::run(&self.policy, "HEAD", move |_| {
            let me = me.clone();
            let (k, u) = (k.clone(), u.clone());
            Box::pin(async move {
                match me.send(Method::HEAD, &u, Some(me.request_timeout), |b| b).await {
                    // A redirect: a collection sits at that name, not an object.
                    Ok(resp) if resp.status().is_redirection() => {
                        Err(Attempt::Fail(StorageError::NotFound { store: me.describe.clone(), key: k }))
                    }
                    r => me.classify("head", &k, r).map(|resp| header_length(&resp)),
                }
            })
        })
        .await
    }

    async fn head(self: &Arc<Self>, key: &Key) -> Result<ObjectMeta, StorageError> {
        let me = self.clone();
        let k = key.clone();
        let size = retry::run(&self.policy, "HEAD", move |_| {
            let me = me.clone();
            let k = k.clone();
            Box::pin(async move {
                let url = me.key_url(&k);
                let r = me.send(Method::HEAD, &url, Some(me.request_timeout), |b| b).await;
                match r {
                    Ok(resp) if resp.status().is_redirection() => {
                        Err(Attempt::Fail(StorageError::NotFound { store: me.describe.clone(), key: k.to_string() }))
                    }
                    r => me.classify("head", k.as_str(), r).map(|resp| header_length(&resp)),
                }
            })
        })
        .await?;
        Ok(ObjectMeta::new(key.clone(), size))
    }

    async fn delete_url(self: &Arc<Self>, key: &str, url: &url::Url) -> Result<(), StorageError> {
        let me = self.clone();
        let u = url.clone();
        let k = key.to_string();
        retry::run(&self.policy, "DELETE", move |attempt| {
            let me = me.clone();
            let u = u.clone();
            let k = k.clone();
            Box::pin(async move {
                let r = me.send(Method::DELETE, &u, Some(me.request_timeout), |b| b).await;
                match me.classify("delete", &k, r) {
                    Ok(_) => Ok(()),
                    // Deleted by an earlier attempt whose answer was lost.
                    Err(Attempt::Fail(StorageError::NotFound { .. })) if attempt > 1 => Ok(()),
                    Err(e) => Err(e),
                }
            })
        })
        .await
    }

    /// Claims `key`'s name for a create-only publish (MKCOL of a hidden sibling collection).
    async fn claim(self: &Arc<Self>, key: &Key) -> Result<url::Url, StorageError> {
        let claim = self.sibling(key, "claim", true);
        let mkcol = Method::from_bytes(b"MKCOL").expect("valid");
        // An attempt whose answer was lost may have made the claim: then it is ours.
        let mut unanswered = false;
        let mut refused = 0;
        for attempt in 1..=self.policy.max_attempts.max(3) * 4 {
            let r = self.send(mkcol.clone(), &claim, Some(self.request_timeout), |b| b).await;
            match r {
                Ok(resp) if resp.status() == StatusCode::CREATED => return Ok(claim),
                // Taken: by a writer publishing now (wait for it), by a crashed one, or by
                // our own unanswered attempt. A live writer holds a claim only for a check
                // and a publish; one that stays for OWN_CLAIM after our unanswered attempt is
                // taken as ours.
                Ok(resp) if resp.status().as_u16() == 405 && unanswered => {
                    let started = std::time::Instant::now();
                    while self.age(&claim).await.is_some() {
                        if started.elapsed() > OWN_CLAIM {
                            tracing::debug!(store = %self.describe, key = %key, "taking a claim made by an unanswered attempt as ours");
                            return Ok(claim);
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    unanswered = false;
                    continue;
                }
                // Taken, or lost in a race: Apache answers the loser of two MKCOLs at the
                // same moment 403 (its mkdir fails with EEXIST), and under load 409, 412 or 423
                // too. Look before believing it: a claim there is a writer at work; the key
                // itself there is a lost race, whatever the status said.
                Ok(resp) if matches!(resp.status().as_u16(), 405 | 403 | 409 | 412 | 423) => {
                    if let Some(age) = self.age(&claim).await {
                        if age > STALE_CLAIM {
                            tracing::warn!(store = %self.describe, key = %key, "removing a stale claim left by a crashed writer");
                            let _ = self.delete_url(key.as_str(), &claim).await;
                            continue;
                        }
                    } else if resp.status().as_u16() != 405 {
                        match self.head(key).await {
                            Ok(_) => {
                                return Err(StorageError::AlreadyExists {
                                    store: self.describe.clone(),
                                    key: key.to_string(),
                                })
                            }
                            Err(StorageError::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                        // Neither a claim nor the key: a refusal that outlasts a race (a
                        // few tries) is a real one, reported as the server gave it.
                        refused += 1;
                        if refused >= REFUSALS {
                            self.classify("claim", key.as_str(), Ok(resp)).map(|_| ()).map_err(attempt_error)?;
                        }
                    }
                }
                r => {
                    unanswered |= r.is_err();
                    if let Err(Attempt::Fail(e)) = self.classify("claim", key.as_str(), r) {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(retry::backoff(&self.policy, attempt.min(6), None)).await;
        }
        Err(self.backend("put", key.as_str(), "the name stayed claimed by another writer".into()))
    }

    /// How long ago the collection at `url` was last modified (`None`: not there, or not
    /// learnt after the policy's attempts). PROPFIND, since Apache answers HEAD on a collection
    /// with 404.
    async fn age(&self, url: &url::Url) -> Option<Duration> {
        for attempt in 1..=self.policy.max_attempts {
            match self.dav.list(url.path(), reqwest_dav::Depth::Number(0)).await {
                Ok(list) => {
                    let modified = match list.first()? {
                        reqwest_dav::list_cmd::ListEntity::Folder(f) => f.last_modified,
                        reqwest_dav::list_cmd::ListEntity::File(f) => f.last_modified,
                    };
                    return (chrono::Utc::now() - modified).to_std().ok().or(Some(Duration::ZERO));
                }
                // Temporary: a transport failure, 5xx or 429; anything else means not there.
                Err(reqwest_dav::Error::Reqwest(_)) => {}
                Err(reqwest_dav::Error::Decode(reqwest_dav::DecodeError::StatusMismatched(s)))
                    if s.response_code == 429 || s.response_code >= 500 => {}
                Err(_) => return None,
            }
            tokio::time::sleep(retry::backoff(&self.policy, attempt, None)).await;
        }
        None
    }

    async fn put(
        self: &Arc<Self>,
        key: &Key,
        mut body: ByteStream,
        create_only: bool,
    ) -> Result<ObjectMeta, StorageError> {
        if key.segments().any(|s| s.starts_with(RESERVED)) {
            return Err(StorageError::InvalidKey { key: key.to_string(), why: "reserved name".into() });
        }
        let mut buf = BytesMut::new();
        let mut ended = false;
        while buf.len() <= PART && !ended {
            match body.try_next().await? {
                Some(c) => buf.extend_from_slice(&c),
                None => ended = true,
            }
        }
        self.make_parents(key).await?;
        let dest = self.key_url(key);
        if ended {
            let data = buf.freeze();
            let size = data.len() as u64;
            if !create_only {
                self.put_bytes(key, &dest, data, None).await?;
            } else {
                let claim = self.claim(key).await?;
                let r = async {
                    match self.head(key).await {
                        Ok(_) => {
                            Err(StorageError::AlreadyExists { store: self.describe.clone(), key: key.to_string() })
                        }
                        Err(StorageError::NotFound { .. }) => self.put_bytes(key, &dest, data, None).await,
                        Err(e) => Err(e),
                    }
                }
                .await;
                self.release(key, &claim).await;
                r?;
            }
            return Ok(ObjectMeta::new(key.clone(), size));
        }
        // Big: parts to a temporary resource, then one MOVE.
        let tmp = self.sibling(key, &format!("tmp-{}", retry::token()), false);
        let r = self.upload_parts(key, &tmp, buf, body, create_only, &dest).await;
        if r.is_err() {
            let _ = self.delete_url(key.as_str(), &tmp).await;
        }
        Ok(ObjectMeta::new(key.clone(), r?))
    }

    async fn upload_parts(
        self: &Arc<Self>,
        key: &Key,
        tmp: &url::Url,
        mut buf: BytesMut,
        mut body: ByteStream,
        create_only: bool,
        dest: &url::Url,
    ) -> Result<u64, StorageError> {
        let mut offset = 0u64;
        let mut ended = false;
        loop {
            while buf.len() < PART && !ended {
                match body.try_next().await? {
                    Some(c) => buf.extend_from_slice(&c),
                    None => ended = true,
                }
            }
            let n = buf.len().min(PART);
            let part = buf.split_to(n).freeze();
            self.put_bytes(key, tmp, part, (offset > 0).then_some(offset)).await?;
            offset += n as u64;
            if ended && buf.is_empty() {
                break;
            }
        }
        // The server must hold every byte before the name is published.
        let stored = self.head_url(key.as_str(), tmp).await?;
        if stored != offset {
            return Err(self.backend("put", key.as_str(), format!("the server holds {stored} of {offset} bytes")));
        }
        if create_only {
            let claim = self.claim(key).await?;
            let r = async {
                match self.head(key).await {
                    Ok(_) => Err(StorageError::AlreadyExists { store: self.describe.clone(), key: key.to_string() }),
                    Err(StorageError::NotFound { .. }) => self.move_to(key, tmp, dest, offset).await,
                    Err(e) => Err(e),
                }
            }
            .await;
            self.release(key, &claim).await;
            r?;
        } else {
            self.move_to(key, tmp, dest, offset).await?;
        }
        Ok(offset)
    }

    async fn release(self: &Arc<Self>, key: &Key, claim: &url::Url) {
        if let Err(e) = self.delete_url(key.as_str(), claim).await {
            tracing::warn!(store = %self.describe, key = %key, error = %e, "could not drop a claim (it expires)");
        }
    }

    /// Opens a GET from `start` (to `end`, exclusive), on version `etag` when given.
    fn open_read(
        self: &Arc<Self>,
        key: &Key,
        start: u64,
        end: Option<u64>,
        etag: Option<String>,
    ) -> BoxFuture<'static, Result<(ByteStream, Option<String>), StorageError>> {
        let me = self.clone();
        let k = key.clone();
        Box::pin(async move {
            let policy = me.policy;
            retry::run(&policy, "GET", move |_| {
                let me = me.clone();
                let k = k.clone();
                let etag = etag.clone();
                Box::pin(async move {
                    let url = me.key_url(&k);
                    let r = me
                        .send(Method::GET, &url, None, |mut b| {
                            match (start, end) {
                                (0, None) => {}
                                (s, None) => b = b.header("range", format!("bytes={s}-")),
                                (s, Some(e)) => b = b.header("range", format!("bytes={s}-{}", e - 1)),
                            }
                            if let Some(t) = &etag {
                                b = b.header("if-match", t.as_str());
                            }
                            b
                        })
                        .await;
                    if let Ok(resp) = &r {
                        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                            return Ok((Box::pin(futures::stream::empty()) as ByteStream, None));
                        }
                        if resp.status().is_redirection() {
                            return Err(Attempt::Fail(StorageError::NotFound {
                                store: me.describe.clone(),
                                key: k.to_string(),
                            }));
                        }
                    }
                    let resp = match me.classify("get", k.as_str(), r) {
                        Ok(resp) => resp,
                        Err(Attempt::Fail(StorageError::AlreadyExists { .. })) => {
                            return Err(Attempt::Fail(me.backend(
                                "get",
                                k.as_str(),
                                "the object changed while it was being read".into(),
                            )))
                        }
                        Err(e) => return Err(e),
                    };
                    if (start > 0 || end.is_some()) && resp.status() != StatusCode::PARTIAL_CONTENT {
                        return Err(Attempt::Fail(me.backend(
                            "get",
                            k.as_str(),
                            "the server ignored a Range request".into(),
                        )));
                    }
                    let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let store = me.describe.clone();
                    let key = k.to_string();
                    let body: ByteStream = Box::pin(futures::stream::unfold(Some(resp), move |r| {
                        let store = store.clone();
                        let key = key.clone();
                        async move {
                            let mut r = r?;
                            match r.chunk().await {
                                Ok(Some(c)) => Some((Ok(c), Some(r))),
                                Ok(None) => None,
                                Err(e) => Some((
                                    Err(StorageError::Backend {
                                        store,
                                        op: "read",
                                        key,
                                        message: e.without_url().to_string(),
                                    }),
                                    None,
                                )),
                            }
                        }
                    }));
                    Ok((body, etag))
                })
            })
            .await
        })
    }

    async fn read(self: &Arc<Self>, key: &Key, start: u64, end: Option<u64>) -> Result<ByteStream, StorageError> {
        let (first, etag) = self.open_read(key, start, end, None).await?;
        let me = self.clone();
        let k = key.clone();
        let reopen: retry::Reopen = Box::new(move |offset| {
            let fut = me.open_read(&k, start + offset, end, etag.clone());
            Box::pin(async move { Ok(fut.await?.0) })
        });
        Ok(retry::resumable(first, reopen, self.policy, self.read_timeout))
    }

    /// Every object beneath the collection `dir` (relative names), walked with `Depth: 1`.
    /// Walks breadth first, up to [`LIST_CONCURRENCY`] folders at once (a store of recordings
    /// has one folder per recording, so a sequential walk would pay one round trip each).
    async fn walk(self: &Arc<Self>, start: Vec<String>, out: &mut Vec<ObjectMeta>) -> Result<(), StorageError> {
        use futures::StreamExt;
        let mut frontier = vec![start];
        while !frontier.is_empty() {
            let mut results = futures::stream::iter(std::mem::take(&mut frontier))
                .map(|dir| {
                    let me = self.clone();
                    async move { me.list_folder(dir).await }
                })
                .buffer_unordered(LIST_CONCURRENCY);
            while let Some(r) = results.next().await {
                let (files, folders) = r?;
                out.extend(files);
                frontier.extend(folders);
            }
        }
        Ok(())
    }

    /// One folder's objects and subfolders (`Depth: 1`); a folder gone meanwhile is empty.
    async fn list_folder(
        self: Arc<Self>,
        dir: Vec<String>,
    ) -> Result<(Vec<ObjectMeta>, Vec<Vec<String>>), StorageError> {
        let url = self.url_of(dir.iter().map(String::as_str), true);
        let me = self.clone();
        let u = url.clone();
        let shown = dir.join("/");
        let entries = retry::run(&self.policy, "PROPFIND", move |_| {
            let me = me.clone();
            let u = u.clone();
            let shown = shown.clone();
            Box::pin(async move {
                match me.dav.list(u.path(), reqwest_dav::Depth::Number(1)).await {
                    Ok(l) => Ok(l),
                    Err(reqwest_dav::Error::Decode(reqwest_dav::DecodeError::StatusMismatched(s))) => {
                        let err = me.backend("list", &shown, format!("HTTP {}", s.response_code));
                        Err(match s.response_code {
                            404 => Attempt::Fail(StorageError::NotFound { store: me.describe.clone(), key: shown }),
                            401 | 403 => Attempt::Fail(StorageError::Auth {
                                store: me.describe.clone(),
                                op: "list",
                                key: shown,
                                message: format!("HTTP {}", s.response_code),
                            }),
                            429 | 500..=599 => Attempt::retry(err),
                            _ => Attempt::Fail(err),
                        })
                    }
                    Err(reqwest_dav::Error::Reqwest(e)) => {
                        Err(Attempt::retry(me.backend("list", &shown, e.without_url().to_string())))
                    }
                    Err(e) => Err(Attempt::Fail(me.backend("list", &shown, format!("{e:?}")))),
                }
            })
        })
        .await;
        let entries = match entries {
            Ok(e) => e,
            Err(StorageError::NotFound { .. }) => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(e),
        };
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        // Servers encode hrefs their own way (Apache: lowercase hex), so compare decoded.
        let own = percent_decode(url.path().trim_end_matches('/')).unwrap_or_default();
        for e in entries {
            let (href, file) = match &e {
                reqwest_dav::list_cmd::ListEntity::File(f) => {
                    (f.href.as_str(), Some((f.content_length, std::time::SystemTime::from(f.last_modified))))
                }
                reqwest_dav::list_cmd::ListEntity::Folder(f) => (f.href.as_str(), None),
            };
            // Hrefs are paths or full URLs, percent-encoded.
            let path = match url::Url::parse(href) {
                Ok(u) => u.path().to_string(),
                Err(_) => href.to_string(),
            };
            let Some(path) = percent_decode(path.trim_end_matches('/')) else { continue };
            if path == own {
                continue;
            }
            let Some(name) = path.strip_prefix(&format!("{own}/")).map(str::to_string) else { continue };
            if name.contains('/') || name.starts_with(RESERVED) {
                continue;
            }
            let mut rel = dir.clone();
            rel.push(name);
            match file {
                Some((size, modified)) => {
                    if let Ok(key) = Key::from_names(&rel) {
                        files.push(ObjectMeta { key, size: size.max(0) as u64, modified: Some(modified) });
                    }
                }
                None => folders.push(rel),
            }
        }
        Ok((files, folders))
    }
}

/// The Content-Length header of a HEAD answer (reqwest's `content_length()` gives the length
/// of the empty HEAD body instead).
fn header_length(resp: &Resp) -> u64 {
    resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn attempt_error(a: Attempt) -> StorageError {
    match a {
        Attempt::Fail(e) | Attempt::Retry { error: e, .. } => e,
    }
}

/// Decodes `%XX` escapes; `None` if the result is not UTF-8 or an escape is malformed.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[async_trait]
impl MediaStore for WebDavStore {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    async fn put(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError> {
        self.inner.put(key, body, false).await
    }

    async fn put_new(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StorageError> {
        self.inner.put(key, body, true).await
    }

    async fn get(&self, key: &Key) -> Result<ByteStream, StorageError> {
        self.inner.read(key, 0, None).await
    }

    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if range.start >= range.end {
            self.inner.head(key).await?;
            return Ok(Box::pin(futures::stream::empty()));
        }
        self.inner.read(key, range.start, Some(range.end)).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        self.inner.head(key).await?;
        self.inner.delete_url(key.as_str(), &self.inner.key_url(key)).await
    }

    async fn clean_up_abandoned(&self, older_than: Duration) -> Result<u64, StorageError> {
        let inner = &self.inner;
        let older_than = older_than.max(STALE_CLAIM);
        let entries = match inner.dav.list(inner.base.path(), reqwest_dav::Depth::Number(1)).await {
            Ok(e) => e,
            // No store folder yet: nothing to clean.
            Err(reqwest_dav::Error::Decode(reqwest_dav::DecodeError::StatusMismatched(s)))
                if s.response_code == 404 =>
            {
                return Ok(0)
            }
            Err(e) => return Err(inner.backend("clean up", "", format!("{e:?}"))),
        };
        let mut removed = 0;
        for e in entries {
            let (href, modified) = match &e {
                reqwest_dav::list_cmd::ListEntity::File(f) => (f.href.clone(), f.last_modified),
                reqwest_dav::list_cmd::ListEntity::Folder(f) => (f.href.clone(), f.last_modified),
            };
            let path = url::Url::parse(&href).map(|u| u.path().to_string()).unwrap_or(href);
            let Some(name) = percent_decode(path.trim_end_matches('/').rsplit('/').next().unwrap_or("")) else {
                continue;
            };
            let old = (chrono::Utc::now() - modified).to_std().is_ok_and(|age| age > older_than);
            if name.starts_with(RESERVED) && old {
                let mut u = inner.base.clone();
                u.set_path(&path);
                tracing::info!(store = %inner.describe, name = %name, "removing what a crashed writer left");
                inner.delete_url(&name, &u).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn list(&self, prefix: Option<&Key>) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        match prefix {
            None => self.inner.walk(Vec::new(), &mut out).await?,
            Some(p) => match self.inner.head(p).await {
                // The prefix names an object itself.
                Ok(m) => out.push(m),
                Err(StorageError::NotFound { .. }) => {
                    self.inner.walk(p.segments().map(str::to_string).collect(), &mut out).await?
                }
                Err(e) => return Err(e),
            },
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Bc+%C3%A9").as_deref(), Some("a b+c+é"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%C3"), None);
    }

    #[test]
    fn debug_and_errors_hold_no_secret() {
        let loc = Location::parse("webdav://127.0.0.1:1/dav").unwrap();
        let Location::WebDav { url } = &loc else { unreachable!() };
        let cfg = WebDavConfig { username: Some("u".into()), ..Default::default() };
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), "s3cr3t-pass\n").unwrap();
        let cfg = WebDavConfig { password_file: Some(tmp.path().into()), ..cfg };
        let store = WebDavStore::open(url, &loc, &cfg).unwrap();
        let shown = format!("{store:?} {}", store.describe());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("webdav://127.0.0.1:1/dav"), "{shown}");
    }
}
