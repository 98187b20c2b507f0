//! The S3 backend (aws-sdk-s3): one object per key beneath `s3://bucket/prefix`.
//!
//! Uploads stream: a body up to one part goes up in one PutObject, a bigger one as a multipart
//! upload with a few parts in flight (memory: parts in flight × part size, whatever the object's
//! size); a failed multipart upload is aborted. Create-only writes send `If-None-Match: *` on
//! PutObject and on CompleteMultipartUpload, and mark the object with a random token in its
//! user metadata: when a retried request finds the key taken, the token tells our own earlier
//! (answered but unheard) write from another writer's. The SDK's own retries are off: every
//! request runs under [`super::retry`] with the SDK's attempt timeout, and downloads resume.

use super::config::{env, S3Config};
use super::retry::{self, Attempt, RetryPolicy};
use super::{ByteStream, Key, MediaStore, ObjectMeta, StorageError};
use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// The user-metadata entry that marks which writer created an object.
const OWNER_META: &str = "reclife-put";

/// Static S3 credentials. `Debug` shows the key id only.
#[derive(Clone)]
pub struct S3Credentials {
    pub key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Media (or backups) in an S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    describe: String,
    policy: RetryPolicy,
    part_size: usize,
    concurrency: usize,
    read_timeout: Duration,
}

impl std::fmt::Debug for S3Store {
    // The client holds the credentials: it stays out of Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("location", &self.inner.describe).finish_non_exhaustive()
    }
}

impl S3Store {
    /// Opens `s3://bucket/prefix` with the `[s3]` section completed from the AWS environment
    /// variables. Fails if no credentials are set.
    pub fn open(bucket: &str, prefix: &str, cfg: &S3Config) -> Result<S3Store, StorageError> {
        let creds = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret)) => {
                Some(S3Credentials { key_id, secret, session_token: env("AWS_SESSION_TOKEN") })
            }
            _ => None,
        };
        Self::open_with_credentials(bucket, prefix, cfg, creds)
    }

    /// [`S3Store::open`] with the credentials given rather than read from the environment.
    pub fn open_with_credentials(
        bucket: &str,
        prefix: &str,
        cfg: &S3Config,
        creds: Option<S3Credentials>,
    ) -> Result<S3Store, StorageError> {
        use aws_sdk_s3::config::{
            retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region,
            RequestChecksumCalculation, ResponseChecksumValidation,
        };
        let describe = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
        let conf_err = |message: String| StorageError::Config { store: describe.clone(), message };
        let endpoint = cfg.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL_S3")).or_else(|| env("AWS_ENDPOINT_URL"));
        let region = cfg
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let Some(creds) = creds else {
            return Err(conf_err("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()));
        };
        let custom = endpoint.is_some();
        let net = &cfg.net;
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::new(creds.key_id, creds.secret, creds.session_token, None, "reclife"))
            .force_path_style(cfg.force_path_style.unwrap_or(custom))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(net.connect_timeout_secs))
                    .operation_attempt_timeout(Duration::from_secs(net.request_timeout_secs))
                    .build(),
            );
        if let Some(p) = &cfg.proxy {
            b = b.http_client(proxied_client(p).map_err(|e| conf_err(format!("proxy {p:?}: {e}")))?);
        }
        if let Some(e) = endpoint {
            url::Url::parse(&e).map_err(|err| conf_err(format!("endpoint {e:?}: {err}")))?;
            b = b.endpoint_url(e);
        }
        if cfg.checksums_when_required.unwrap_or(custom) {
            b = b
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let part_size = (cfg.part_size_mib.max(5) * 1024 * 1024) as usize;
        Ok(S3Store {
            inner: Arc::new(Inner {
                client: aws_sdk_s3::Client::from_conf(b.build()),
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                describe,
                policy: net.policy(),
                part_size,
                concurrency: cfg.upload_concurrency.max(1),
                read_timeout: Duration::from_secs(net.read_timeout_secs.max(1)),
            }),
        })
    }
}

/// The SDK's HTTPS client (rustls with aws-lc, as the SDK's default) with every request going
/// through the forward proxy `url` (plain HTTP requests forwarded, HTTPS through `CONNECT`).
fn proxied_client(url: &str) -> Result<aws_sdk_s3::config::SharedHttpClient, String> {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, Connector};
    let proxy = ProxyConfig::all(url).map_err(|e| e.to_string())?;
    Ok(Builder::new().build_with_connector_fn(move |settings, components| {
        let mut c = Connector::builder().proxy_config(proxy.clone());
        c.set_connector_settings(settings.cloned());
        if let Some(rc) = components {
            c.set_sleep_impl(rc.sleep_impl());
        }
        c.tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc)).build()
    }))
}

impl Inner {
    fn object_key(&self, key: &Key) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{}", self.prefix, key)
        }
    }

    fn backend(&self, op: &'static str, key: &str, message: String) -> StorageError {
        StorageError::Backend { store: self.describe.clone(), op, key: key.to_string(), message }
    }

    /// Sorts a failed request into temporary (retry) and permanent, mapping the statuses every
    /// backend shares: 404 NotFound, 412 AlreadyExists, 401/403 Auth.
    fn classify<E>(&self, op: &'static str, key: &str, err: SdkError<E, HttpResponse>) -> Attempt
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let store = self.describe.clone();
        let key = key.to_string();
        match &err {
            SdkError::TimeoutError(_) => Attempt::retry(self.backend(op, &key, "timed out".into())),
            SdkError::ResponseError(_) => Attempt::retry(self.backend(
                op,
                &key,
                format!("bad response: {}", aws_sdk_s3::error::DisplayErrorContext(&err)),
            )),
            SdkError::DispatchFailure(d) => {
                let e = self.backend(op, &key, format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)));
                if d.is_user() {
                    Attempt::Fail(e)
                } else {
                    Attempt::retry(e)
                }
            }
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let after = retry::retry_after(se.raw().headers().get("retry-after"));
                let code = err.code().unwrap_or("");
                let message = match err.message() {
                    Some(m) => format!("HTTP {status} {code}: {m}"),
                    None => format!("HTTP {status} {code}"),
                };
                match status {
                    404 if code != "NoSuchBucket" && code != "NoSuchUpload" => {
                        Attempt::Fail(StorageError::NotFound { store, key })
                    }
                    412 => Attempt::Fail(StorageError::AlreadyExists { store, key }),
                    401 | 403 => Attempt::Fail(StorageError::Auth { store, op, key, message }),
                    409 if code == "ConditionalRequestConflict" => {
                        Attempt::Retry { error: self.backend(op, &key, message), after }
                    }
                    429 | 500..=599 => Attempt::Retry { error: self.backend(op, &key, message), after },
                    _ => Attempt::Fail(self.backend(op, &key, message)),
                }
            }
            _ => Attempt::Fail(self.backend(op, &key, format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)))),
        }
    }

    /// True if the object at `okey` carries our ownership token: a retried create-only write
    /// that found the key taken had in fact succeeded on an earlier attempt.
    async fn owned_by(&self, okey: &str, token: &str) -> bool {
        match self.client.head_object().bucket(&self.bucket).key(okey).send().await {
            Ok(h) => h.metadata().and_then(|m| m.get(OWNER_META)).is_some_and(|t| t == token),
            Err(_) => false,
        }
    }

    async fn put_object(self: &Arc<Self>, okey: &str, data: Bytes, create_only: bool) -> Result<(), StorageError> {
        let token = retry::token();
        let me = self.clone();
        let okey = okey.to_string();
        retry::run(&self.policy, "PutObject", move |attempt| {
            let me = me.clone();
            let okey = okey.clone();
            let data = data.clone();
            let token = token.clone();
            Box::pin(async move {
                let mut req = me.client.put_object().bucket(&me.bucket).key(&okey).body(SdkStream::from(data));
                if create_only {
                    req = req.if_none_match("*").metadata(OWNER_META, &token);
                }
                match req.send().await {
                    Ok(_) => Ok(()),
                    Err(e) => match me.classify("put", &okey, e) {
                        Attempt::Fail(StorageError::AlreadyExists { .. })
                            if attempt > 1 && me.owned_by(&okey, &token).await =>
                        {
                            Ok(())
                        }
                        other => Err(other),
                    },
                }
            })
        })
        .await
    }

    async fn multipart(
        self: &Arc<Self>,
        okey: &str,
        first: Bytes,
        pending: &mut Parts,
        create_only: bool,
    ) -> Result<u64, StorageError> {
        let token = retry::token();
        let me = self.clone();
        let ok = okey.to_string();
        let tk = token.clone();
        let upload_id = retry::run(&self.policy, "CreateMultipartUpload", move |_| {
            let me = me.clone();
            let ok = ok.clone();
            let tk = tk.clone();
            Box::pin(async move {
                let r = me
                    .client
                    .create_multipart_upload()
                    .bucket(&me.bucket)
                    .key(&ok)
                    .metadata(OWNER_META, &tk)
                    .send()
                    .await;
                match r {
                    Ok(out) => out.upload_id.ok_or_else(|| {
                        Attempt::Fail(me.backend("put", &ok, "CreateMultipartUpload returned no upload id".into()))
                    }),
                    Err(e) => Err(me.classify("put", &ok, e)),
                }
            })
        })
        .await?;
        let result = self.upload_parts(okey, &upload_id, first, pending, create_only, &token).await;
        if result.is_err() {
            self.abort(okey, &upload_id).await;
        }
        result
    }

    async fn upload_parts(
        self: &Arc<Self>,
        okey: &str,
        upload_id: &str,
        first: Bytes,
        pending: &mut Parts,
        create_only: bool,
        token: &str,
    ) -> Result<u64, StorageError> {
        let mut done: Vec<CompletedPart> = Vec::new();
        // Parts upload as tasks of their own, so they keep going while the next part is read
        // from the body; dropped (an error, a cancel), the guard stops them.
        let mut in_flight = AbortOnDrop(FuturesUnordered::new());
        let mut next: Option<Bytes> = Some(first);
        let mut number = 0i32;
        let mut size = 0u64;
        loop {
            while in_flight.0.len() < self.concurrency {
                let Some(data) = next.take() else { break };
                number += 1;
                size += data.len() as u64;
                in_flight.0.push(tokio::spawn(self.upload_part(okey, upload_id, number, data)));
                next = pending.next_part(self.part_size).await?;
            }
            match in_flight.0.next().await {
                Some(part) => done.push(part.map_err(|e| self.backend("put", okey, format!("upload task: {e}")))??),
                None => break,
            }
        }
        done.sort_by_key(|p| p.part_number);
        let me = self.clone();
        let ok = okey.to_string();
        let uid = upload_id.to_string();
        let token = token.to_string();
        let parts = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
        retry::run(&self.policy, "CompleteMultipartUpload", move |attempt| {
            let me = me.clone();
            let ok = ok.clone();
            let uid = uid.clone();
            let token = token.clone();
            let parts = parts.clone();
            Box::pin(async move {
                let mut req = me
                    .client
                    .complete_multipart_upload()
                    .bucket(&me.bucket)
                    .key(&ok)
                    .upload_id(&uid)
                    .multipart_upload(parts);
                if create_only {
                    req = req.if_none_match("*");
                }
                match req.send().await {
                    Ok(_) => Ok(()),
                    // An earlier attempt completed the upload but its answer was lost: the
                    // upload id is gone (404) or the key is taken (412), by our own object.
                    Err(e) => match me.classify("put", &ok, e) {
                        Attempt::Fail(err @ (StorageError::AlreadyExists { .. } | StorageError::Backend { .. }))
                            if attempt > 1 =>
                        {
                            if me.owned_by(&ok, &token).await {
                                Ok(())
                            } else {
                                Err(Attempt::Fail(err))
                            }
                        }
                        other => Err(other),
                    },
                }
            })
        })
        .await?;
        Ok(size)
    }

    fn upload_part(
        self: &Arc<Self>,
        okey: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> impl std::future::Future<Output = Result<CompletedPart, StorageError>> + Send + 'static {
        let me = self.clone();
        let ok = okey.to_string();
        let uid = upload_id.to_string();
        let policy = self.policy;
        async move {
            retry::run(&policy, "UploadPart", move |_| {
                let me = me.clone();
                let ok = ok.clone();
                let uid = uid.clone();
                let data = data.clone();
                Box::pin(async move {
                    let r = me
                        .client
                        .upload_part()
                        .bucket(&me.bucket)
                        .key(&ok)
                        .upload_id(&uid)
                        .part_number(number)
                        .body(SdkStream::from(data))
                        .send()
                        .await;
                    match r {
                        Ok(out) => Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build()),
                        Err(e) => Err(me.classify("put", &ok, e)),
                    }
                })
            })
            .await
        }
    }

    async fn abort(&self, okey: &str, upload_id: &str) {
        for attempt in 1..=self.policy.max_attempts {
            let r =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(okey).upload_id(upload_id).send().await;
            match r {
                Ok(_) => return,
                Err(e) => match self.classify("abort upload", okey, e) {
                    Attempt::Retry { .. } => tokio::time::sleep(retry::backoff(&self.policy, attempt, None)).await,
                    Attempt::Fail(e) => {
                        tracing::warn!(store = %self.describe, key = okey, error = %e, "could not abort a failed multipart upload");
                        return;
                    }
                },
            }
        }
    }

    async fn put(self: &Arc<Self>, key: &Key, body: ByteStream, create_only: bool) -> Result<ObjectMeta, StorageError> {
        let okey = self.object_key(key);
        let mut parts = Parts { body, buf: BytesMut::new(), ended: false };
        let first = parts.next_part(self.part_size).await?.unwrap_or_default();
        let size = if parts.ended && parts.buf.is_empty() {
            let n = first.len() as u64;
            self.put_object(&okey, first, create_only).await?;
            n
        } else {
            self.multipart(&okey, first, &mut parts, create_only).await?
        };
        Ok(ObjectMeta::new(key.clone(), size))
    }

    /// Opens a read of `okey` from `start` to `end` (exclusive; `None`: to the end), on the
    /// object version `etag` when given.
    async fn open_read(
        self: &Arc<Self>,
        key: &Key,
        start: u64,
        end: Option<u64>,
        etag: Option<String>,
    ) -> Result<(ByteStream, Option<String>), StorageError> {
        let me = self.clone();
        let okey = self.object_key(key);
        let k = key.to_string();
        retry::run(&self.policy, "GetObject", move |_| {
            let me = me.clone();
            let okey = okey.clone();
            let k = k.clone();
            let etag = etag.clone();
            Box::pin(async move {
                let mut req = me.client.get_object().bucket(&me.bucket).key(&okey);
                match (start, end) {
                    (0, None) => {}
                    (s, None) => req = req.range(format!("bytes={s}-")),
                    (s, Some(e)) => req = req.range(format!("bytes={s}-{}", e - 1)),
                }
                if let Some(t) = &etag {
                    req = req.if_match(t);
                }
                match req.send().await {
                    Ok(out) => {
                        let store = me.describe.clone();
                        let body = sdk_stream(out.body, store, k);
                        Ok((body, out.e_tag))
                    }
                    Err(e) => {
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        if status == Some(416) {
                            return Ok((Box::pin(futures::stream::empty()) as ByteStream, None));
                        }
                        Err(match me.classify("get", &k, e) {
                            // The object changed under a resumed read: report it, do not splice.
                            Attempt::Fail(StorageError::AlreadyExists { .. }) => Attempt::Fail(me.backend(
                                "get",
                                &k,
                                "the object changed while it was being read".into(),
                            )),
                            other => other,
                        })
                    }
                }
            })
        })
        .await
    }

    async fn read(self: &Arc<Self>, key: &Key, start: u64, end: Option<u64>) -> Result<ByteStream, StorageError> {
        let (first, etag) = self.open_read(key, start, end, None).await?;
        let me = self.clone();
        let key2 = key.clone();
        let reopen: retry::Reopen = Box::new(move |offset| {
            let me = me.clone();
            let key = key2.clone();
            let etag = etag.clone();
            Box::pin(async move { Ok(me.open_read(&key, start + offset, end, etag).await?.0) })
        });
        Ok(retry::resumable(first, reopen, self.policy, self.read_timeout))
    }

    async fn head(self: &Arc<Self>, key: &Key) -> Result<ObjectMeta, StorageError> {
        let me = self.clone();
        let okey = self.object_key(key);
        let k = key.to_string();
        let size = retry::run(&self.policy, "HeadObject", move |_| {
            let me = me.clone();
            let okey = okey.clone();
            let k = k.clone();
            Box::pin(async move {
                match me.client.head_object().bucket(&me.bucket).key(&okey).send().await {
                    Ok(h) => Ok(h.content_length.unwrap_or(0).max(0) as u64),
                    Err(e) => Err(me.classify("head", &k, e)),
                }
            })
        })
        .await?;
        Ok(ObjectMeta::new(key.clone(), size))
    }
}

/// Upload tasks that are aborted when the upload is given up.
struct AbortOnDrop(FuturesUnordered<tokio::task::JoinHandle<Result<CompletedPart, StorageError>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in self.0.iter() {
            h.abort();
        }
    }
}

/// Cuts a body stream into parts of one size (the last may be shorter).
struct Parts {
    body: ByteStream,
    buf: BytesMut,
    ended: bool,
}

impl Parts {
    async fn next_part(&mut self, size: usize) -> Result<Option<Bytes>, StorageError> {
        // One allocation per part (growing by doubling would copy and briefly hold 1.5 parts).
        if !self.ended && self.buf.capacity() < size {
            self.buf.reserve(size - self.buf.len());
        }
        while self.buf.len() < size && !self.ended {
            match self.body.try_next().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None => self.ended = true,
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let n = self.buf.len().min(size);
        Ok(Some(self.buf.split_to(n).freeze()))
    }
}

fn sdk_stream(body: SdkStream, store: String, key: String) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(body), move |b| {
        let store = store.clone();
        let key = key.clone();
        async move {
            let mut b = b?;
            match b.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(b))),
                Ok(None) => None,
                Err(e) => Some((Err(StorageError::Backend { store, op: "read", key, message: e.to_string() }), None)),
            }
        }
    }))
}

#[async_trait]
impl MediaStore for S3Store {
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
        // S3 deletes a missing key without complaint; the trait reports it.
        self.inner.head(key).await?;
        let me = self.inner.clone();
        let okey = self.inner.object_key(key);
        let k = key.to_string();
        retry::run(&self.inner.policy, "DeleteObject", move |_| {
            let me = me.clone();
            let okey = okey.clone();
            let k = k.clone();
            Box::pin(async move {
                match me.client.delete_object().bucket(&me.bucket).key(&okey).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(me.classify("delete", &k, e)),
                }
            })
        })
        .await
    }

    async fn clean_up_abandoned(&self, older_than: Duration) -> Result<u64, StorageError> {
        let inner = &self.inner;
        let base = if inner.prefix.is_empty() { String::new() } else { format!("{}/", inner.prefix) };
        let cutoff = std::time::SystemTime::now() - older_than;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        let mut aborted = 0;
        loop {
            let me = inner.clone();
            let (b, km, im) = (base.clone(), key_marker.clone(), id_marker.clone());
            let page = retry::run(&inner.policy, "ListMultipartUploads", move |_| {
                let me = me.clone();
                let (b, km, im) = (b.clone(), km.clone(), im.clone());
                Box::pin(async move {
                    let r = me
                        .client
                        .list_multipart_uploads()
                        .bucket(&me.bucket)
                        .prefix(&b)
                        .set_key_marker(km)
                        .set_upload_id_marker(im)
                        .send()
                        .await;
                    r.map_err(|e| me.classify("list uploads", &b, e))
                })
            })
            .await?;
            for u in page.uploads() {
                let (Some(k), Some(id)) = (u.key(), u.upload_id()) else { continue };
                let started = u.initiated().and_then(|t| std::time::SystemTime::try_from(*t).ok());
                if started.is_some_and(|t| t <= cutoff) {
                    tracing::info!(store = %inner.describe, key = k, "aborting an abandoned multipart upload");
                    inner.abort(k, id).await;
                    aborted += 1;
                }
            }
            match (page.is_truncated(), page.next_key_marker(), page.next_upload_id_marker()) {
                (Some(true), Some(k), i) => {
                    key_marker = Some(k.to_string());
                    id_marker = i.map(str::to_string);
                }
                _ => break,
            }
        }
        Ok(aborted)
    }

    async fn list(&self, prefix: Option<&Key>) -> Result<Vec<ObjectMeta>, StorageError> {
        let inner = &self.inner;
        let base = if inner.prefix.is_empty() { String::new() } else { format!("{}/", inner.prefix) };
        let wanted = match prefix {
            Some(p) => format!("{base}{p}"),
            None => base.clone(),
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let me = inner.clone();
            let w = wanted.clone();
            let t = token.clone();
            let page = retry::run(&inner.policy, "ListObjectsV2", move |_| {
                let me = me.clone();
                let w = w.clone();
                let t = t.clone();
                Box::pin(async move {
                    let r = me
                        .client
                        .list_objects_v2()
                        .bucket(&me.bucket)
                        .prefix(&w)
                        .set_continuation_token(t)
                        .send()
                        .await;
                    r.map_err(|e| me.classify("list", &w, e))
                })
            })
            .await?;
            for o in page.contents() {
                let Some(rel) = o.key().and_then(|k| k.strip_prefix(&base)) else { continue };
                // Objects no key can name (written by something else) are not ours.
                let Ok(key) = Key::parse(rel) else { continue };
                if prefix.is_none_or(|p| key.starts_with(p)) {
                    let modified = o.last_modified().and_then(|t| std::time::SystemTime::try_from(*t).ok());
                    out.push(ObjectMeta { key, size: o.size().unwrap_or(0).max(0) as u64, modified });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}
