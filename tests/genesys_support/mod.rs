//! A Genesys Cloud emulator for the import tests: an axum server on loopback, in its own
//! thread and runtime, answering the endpoints the importer calls as Genesys Cloud's public
//! API documents them (the platform API reference and the Python SDK's model and API docs,
//! `purecloudplatformclientv2` `build/docs/*.md`):
//!
//! - `POST /oauth/token` (OAuth client-credentials grant: HTTP Basic `client_id:client_secret`,
//!   form body `grant_type=client_credentials`; answers `access_token`, `token_type` "bearer",
//!   `expires_in`), 400 `invalid_client` on bad credentials. Tokens expire (`token_life`) and
//!   can be revoked at once (a token that expires mid-run).
//! - `POST /api/v2/analytics/conversations/details/query` (AnalyticsApi
//!   `post_analytics_conversations_details_query`, `ConversationQuery` in,
//!   `AnalyticsConversationQueryResponse` out: `conversations` of
//!   `AnalyticsConversationWithoutAttributes` with `conversationId`, `conversationStart`,
//!   `conversationEnd`, `originatingDirection`, `participants` (`participantId`,
//!   `participantName`, `purpose`, `userId`, `sessions` of `AnalyticsSession`: `mediaType`,
//!   `ani`, `dnis`, `direction`, `recording`, `sessionId`), and `totalHits`); `interval` on the
//!   conversation start, `paging.pageSize`/`pageNumber` from 1, ordered by start then id.
//! - `GET /api/v2/analytics/conversations/{conversationId}/details` (AnalyticsApi
//!   `get_analytics_conversation_details`, one `AnalyticsConversationWithoutAttributes`).
//! - `GET /api/v2/conversations/{conversationId}/recordingmetadata` (RecordingApi
//!   `get_conversation_recordingmetadata`: a list of `Recording` without media).
//! - `GET /api/v2/conversations/{conversationId}/recordings/{recordingId}?formatId=&download=`
//!   (RecordingApi `get_conversation_recording`: 202 while transcoding, the "not ready" answer;
//!   then 200, a `Recording` whose `mediaUris` map holds a `MediaResult` with `mediaUri`).
//! - `PUT /api/v2/conversations/{conversationId}/recordings/{recordingId}` (RecordingApi
//!   `put_conversation_recording`, a `Recording` with `deleteDate`): recorded as a deletion.
//! - `GET /api/v2/users/{userId}` (UsersApi `get_user`: `User` with `id`, `name`, `username`,
//!   `addresses` of `Contact` with `address`, `extension`, `mediaType` PHONE).
//! - The pre-signed media URL (`MediaResult.mediaUri`): after [`Emulator::media_in_s3`], a real
//!   S3 pre-signed GET URL (aws-sdk-s3 presigning, SigV4 query string, 5 minutes) of an object
//!   the emulator put in the SeaweedFS of `deploy/servers.sh`, as Genesys Cloud hands out URLs
//!   of its own S3 buckets; before it, `GET /media/{conversationId}/{recordingId}?X-Amz-Expires=
//!   &X-Amz-Signature=` served by the emulator itself, its signature checked and expiring the
//!   same way.
//!
//! Beside Genesys Cloud, `POST /notify` keeps what reclife's `[notify]` outbox posts.
//!
//! Every `/api/v2` request needs a live bearer token (401 `bad.credentials` otherwise). Faults:
//! 429 storms with `Retry-After`, 503s, a failing analytics query, latency, recordings not ready
//! for N polls or never.
#![allow(dead_code)]

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ERec {
    pub id: String,
    pub media: Vec<u8>,
    /// 202 answers still to give before the recording is ready.
    pub not_ready_polls: u32,
    /// Always 202 until set false.
    pub never_ready: bool,
}

#[derive(Clone, Debug)]
pub struct EConv {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub direction: String,
    pub agent: Option<String>,
    pub customer_number: String,
    pub customer_name: String,
    pub dnis: String,
    pub recordings: Vec<ERec>,
}

/// Whether reclife has stored a (conversation, recording)'s media.
pub type StoredCheck = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

#[derive(Default)]
pub struct EmuState {
    pub client_id: String,
    pub client_secret: String,
    pub token_life: u64,
    tokens: HashMap<String, Instant>,
    pub tokens_issued: u64,
    pub conversations: Vec<EConv>,
    /// user id → (name, extension)
    pub users: HashMap<String, (String, String)>,
    /// 429 answers still to give to API requests, and their Retry-After (seconds).
    pub storm: u32,
    pub retry_after: u64,
    /// When each 429 was given, and when the next API request came.
    pub storm_times: Vec<Instant>,
    pub after_storm: Option<Instant>,
    /// 503 answers still to give.
    pub unavailable: u32,
    /// The analytics query answers 500 while set.
    pub listing_broken: bool,
    /// Revoke every token after this many more API requests.
    pub revoke_after: Option<u32>,
    pub unauthorized: u64,
    pub latency: Duration,
    /// (conversation, recording) deletions, in order.
    pub deletions: Vec<(String, String)>,
    /// Requests by kind: token, query, details, metadata, recording, media, user, delete.
    pub counts: HashMap<&'static str, u64>,
    /// Where the media is, once put in S3: the client, the bucket and the key prefix.
    pub s3: Option<(aws_sdk_s3::Client, String, String)>,
    /// Media downloads served by the emulator, by conversation.
    pub media_by_conversation: HashMap<String, u64>,
    /// Pre-signed S3 URLs handed out.
    pub presigned: u64,
    /// Asked at each deletion whether reclife has stored that recording; a `false` is kept in
    /// `early_deletions` (a recording deleted in the cloud before it was stored).
    pub stored: Option<StoredCheck>,
    pub early_deletions: Vec<(String, String)>,
    /// Bodies posted to `/notify` (reclife's `[notify]` endpoint, not Genesys Cloud's).
    pub notifications: Vec<Value>,
    base: String,
}

pub struct Emulator {
    pub url: String,
    pub state: Arc<Mutex<EmuState>>,
    _thread: std::thread::JoinHandle<()>,
}

type S = Arc<Mutex<EmuState>>;

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"message": message, "code": code, "status": status.as_u16()}))).into_response()
}

fn gc_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn sign(conv: &str, rec: &str, expires: i64) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("emu-secret/{conv}/{rec}/{expires}")))
}

fn conv_json(c: &EConv) -> Value {
    // The caller's number is the ANI, the called one the DNIS: the customer's on an inbound
    // call, the organisation's on an outbound one.
    let (ani, dnis) =
        if c.direction == "outbound" { (&c.dnis, &c.customer_number) } else { (&c.customer_number, &c.dnis) };
    let mut participants = vec![json!({
        "participantId": format!("{}-c", c.id),
        "participantName": c.customer_name,
        "purpose": "customer",
        "sessions": [{"mediaType": "voice", "ani": format!("tel:{ani}"), "dnis": format!("tel:{dnis}"),
                      "direction": c.direction, "sessionId": format!("{}-cs", c.id)}]
    })];
    if let Some(a) = &c.agent {
        participants.push(json!({
            "participantId": format!("{}-a", c.id),
            "participantName": "Agent",
            "purpose": "agent",
            "userId": a,
            "sessions": [{"mediaType": "voice", "ani": format!("tel:{ani}"), "dnis": format!("tel:{dnis}"),
                          "direction": c.direction, "recording": true, "sessionId": format!("{}-as", c.id)}]
        }));
    }
    let mut v = json!({
        "conversationId": c.id,
        "conversationStart": gc_time(c.start),
        "originatingDirection": c.direction,
        "participants": participants,
    });
    if let Some(e) = c.end {
        v["conversationEnd"] = json!(gc_time(e));
    }
    v
}

/// The common gate of every /api/v2 request: latency, 429 storm, 503, token check.
#[allow(clippy::result_large_err)]
async fn gate(s: &S, headers: &HeaderMap) -> Result<(), Response> {
    let latency = s.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut st = s.lock().unwrap();
    if st.storm > 0 {
        st.storm -= 1;
        st.storm_times.push(Instant::now());
        let ra = st.retry_after.to_string();
        let mut r = err(StatusCode::TOO_MANY_REQUESTS, "too.many.requests", "Rate limit exceeded the maximum");
        r.headers_mut().insert("retry-after", ra.parse().unwrap());
        return Err(r);
    }
    if !st.storm_times.is_empty() && st.after_storm.is_none() {
        st.after_storm = Some(Instant::now());
    }
    if st.unavailable > 0 {
        st.unavailable -= 1;
        return Err(err(StatusCode::SERVICE_UNAVAILABLE, "service.unavailable", "try later"));
    }
    if let Some(n) = st.revoke_after.as_mut() {
        if *n == 0 {
            st.tokens.clear();
            st.revoke_after = None;
        } else {
            *n -= 1;
        }
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match st.tokens.get(token) {
        Some(until) if *until > Instant::now() => Ok(()),
        _ => {
            st.unauthorized += 1;
            Err(err(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials."))
        }
    }
}

fn count(s: &S, what: &'static str) {
    *s.lock().unwrap().counts.entry(what).or_default() += 1;
}

async fn token(State(s): State<S>, headers: HeaderMap, body: String) -> Response {
    count(&s, "token");
    if headers.contains_key("via") {
        count(&s, "via proxy");
    }
    use base64::Engine as _;
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let mut st = s.lock().unwrap();
    if !body.split('&').any(|kv| kv == "grant_type=client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if basic != format!("{}:{}", st.client_id, st.client_secret) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_client", "description": "client not found"})))
            .into_response();
    }
    st.tokens_issued += 1;
    let t = format!("tok-{}-{}", st.tokens_issued, Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let life = st.token_life;
    st.tokens.insert(t.clone(), Instant::now() + Duration::from_secs(life));
    Json(json!({"access_token": t, "token_type": "bearer", "expires_in": life})).into_response()
}

async fn query(State(s): State<S>, headers: HeaderMap, Json(q): Json<Value>) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "query");
    let st = s.lock().unwrap();
    if st.listing_broken {
        return err(StatusCode::INTERNAL_SERVER_ERROR, "internal.server.error", "analytics unavailable");
    }
    let interval = q["interval"].as_str().unwrap_or_default();
    let Some((a, b)) = interval.split_once('/') else {
        return err(StatusCode::BAD_REQUEST, "bad.request", "interval");
    };
    let (Ok(a), Ok(b)) = (a.parse::<DateTime<Utc>>(), b.parse::<DateTime<Utc>>()) else {
        return err(StatusCode::BAD_REQUEST, "bad.request", "interval times");
    };
    let size = q["paging"]["pageSize"].as_u64().unwrap_or(25) as usize;
    let number = q["paging"]["pageNumber"].as_u64().unwrap_or(1).max(1) as usize;
    let mut hits: Vec<&EConv> = st.conversations.iter().filter(|c| c.start >= a && c.start < b).collect();
    hits.sort_by(|x, y| (x.start, &x.id).cmp(&(y.start, &y.id)));
    let total = hits.len();
    let page: Vec<Value> = hits.into_iter().skip((number - 1) * size).take(size).map(conv_json).collect();
    let mut v = json!({"totalHits": total});
    if !page.is_empty() {
        v["conversations"] = json!(page);
    }
    Json(v).into_response()
}

async fn details(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "details");
    let st = s.lock().unwrap();
    match st.conversations.iter().find(|c| c.id == id) {
        Some(c) => Json(conv_json(c)).into_response(),
        None => err(StatusCode::NOT_FOUND, "not.found", "conversation not found"),
    }
}

async fn metadata(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "metadata");
    let st = s.lock().unwrap();
    let Some(c) = st.conversations.iter().find(|c| c.id == id) else {
        return err(StatusCode::NOT_FOUND, "not.found", "conversation not found");
    };
    let list: Vec<Value> = c
        .recordings
        .iter()
        .map(|r| {
            json!({"id": r.id, "conversationId": c.id, "startTime": gc_time(c.start), "endTime": c.end.map(gc_time),
                   "media": "audio", "fileState": "AVAILABLE", "selfUri": format!("/api/v2/conversations/{}/recordings/{}", c.id, r.id)})
        })
        .collect();
    Json(json!(list)).into_response()
}

async fn recording(
    State(s): State<S>,
    headers: HeaderMap,
    Path((cid, rid)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "recording");
    let (start, end, size, s3, base) = {
        let mut st = s.lock().unwrap();
        let base = st.base.clone();
        let Some(c) = st.conversations.iter_mut().find(|c| c.id == cid) else {
            return err(StatusCode::NOT_FOUND, "not.found", "conversation not found");
        };
        let (start, end) = (c.start, c.end);
        let Some(r) = c.recordings.iter_mut().find(|r| r.id == rid) else {
            return err(StatusCode::NOT_FOUND, "not.found", "recording not found");
        };
        if r.never_ready || r.not_ready_polls > 0 {
            r.not_ready_polls = r.not_ready_polls.saturating_sub(1);
            return (
                StatusCode::ACCEPTED,
                Json(json!({"id": r.id, "conversationId": cid, "fileState": "UPLOADING", "estimatedTranscodeTimeMs": 500})),
            )
                .into_response();
        }
        let size = r.media.len();
        let s3 = st.s3.clone();
        if s3.is_some() {
            st.presigned += 1;
        }
        (start, end, size, s3, base)
    };
    let expires = Utc::now().timestamp() + 300;
    let format = q.get("formatId").cloned().unwrap_or_else(|| "WEBM".into());
    let mut uri =
        format!("{base}/media/{cid}/{rid}?X-Amz-Expires={expires}&X-Amz-Signature={}", sign(&cid, &rid, expires));
    if let Some((client, bucket, prefix)) = s3 {
        let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
        let p = client.get_object().bucket(bucket).key(format!("{prefix}/{cid}/{rid}")).presigned(cfg).await;
        uri = p.expect("presign").uri().to_string();
    }
    Json(json!({
        "id": rid, "conversationId": cid, "startTime": gc_time(start), "endTime": end.map(gc_time), "media": "audio",
        "fileState": "AVAILABLE", "mediaUris": {"S": {"mediaUri": uri}},
        "outputDurationMs": end.map(|e| (e - start).num_milliseconds()).unwrap_or(0), "outputSizeInBytes": size,
        "selfUri": format!("/api/v2/conversations/{cid}/recordings/{rid}?formatId={format}")
    }))
    .into_response()
}

async fn delete(
    State(s): State<S>,
    headers: HeaderMap,
    Path((cid, rid)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "delete");
    let check = s.lock().unwrap().stored.clone();
    let early = check.is_some_and(|f| !f(&cid, &rid));
    let mut st = s.lock().unwrap();
    if early {
        st.early_deletions.push((cid.clone(), rid.clone()));
    }
    if body["deleteDate"].as_str().is_none() {
        return err(StatusCode::BAD_REQUEST, "bad.request", "deleteDate expected");
    }
    st.deletions.push((cid.clone(), rid.clone()));
    Json(json!({"id": rid, "conversationId": cid, "deleteDate": body["deleteDate"]})).into_response()
}

async fn user(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&s, &headers).await {
        return r;
    }
    count(&s, "user");
    let st = s.lock().unwrap();
    match st.users.get(&id) {
        Some((name, ext)) => Json(json!({
            "id": id, "name": name, "username": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
            "state": "active",
            "addresses": [{"address": format!("+1317555{ext}"), "extension": ext, "mediaType": "PHONE", "type": "WORK"}],
            "selfUri": format!("/api/v2/users/{id}")
        }))
        .into_response(),
        None => err(StatusCode::NOT_FOUND, "not.found", "user not found"),
    }
}

async fn media(
    State(s): State<S>,
    Path((cid, rid)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    count(&s, "media");
    *s.lock().unwrap().media_by_conversation.entry(cid.clone()).or_default() += 1;
    let expires: i64 = q.get("X-Amz-Expires").and_then(|v| v.parse().ok()).unwrap_or(0);
    if q.get("X-Amz-Signature") != Some(&sign(&cid, &rid, expires)) || expires < Utc::now().timestamp() {
        return (StatusCode::FORBIDDEN, "<Error><Code>AccessDenied</Code></Error>").into_response();
    }
    let st = s.lock().unwrap();
    let bytes = st
        .conversations
        .iter()
        .find(|c| c.id == cid)
        .and_then(|c| c.recordings.iter().find(|r| r.id == rid))
        .map(|r| r.media.clone());
    match bytes {
        Some(b) => ([("content-type", "audio/mpeg")], b).into_response(),
        None => (StatusCode::NOT_FOUND, "<Error><Code>NoSuchKey</Code></Error>").into_response(),
    }
}

/// `POST /notify`: stands in for the downstream system reclife's `[notify]` posts to.
async fn notify(State(s): State<S>, Json(body): Json<Value>) -> Response {
    s.lock().unwrap().notifications.push(body);
    StatusCode::NO_CONTENT.into_response()
}

impl Emulator {
    pub fn start(client_id: &str, client_secret: &str) -> Emulator {
        let state: S = Arc::new(Mutex::new(EmuState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            token_life: 3600,
            retry_after: 1,
            ..Default::default()
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", std_listener.local_addr().unwrap());
        state.lock().unwrap().base = url.clone();
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/analytics/conversations/details/query", post(query))
            .route("/api/v2/analytics/conversations/{id}/details", get(details))
            .route("/api/v2/conversations/{id}/recordingmetadata", get(metadata))
            .route("/api/v2/conversations/{cid}/recordings/{rid}", get(recording).put(delete))
            .route("/api/v2/users/{id}", get(user))
            .route("/media/{cid}/{rid}", get(media))
            .route("/notify", post(notify))
            .with_state(state.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Emulator { url, state, _thread: thread }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut EmuState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn count(&self, what: &str) -> u64 {
        self.with(|s| s.counts.get(what).copied().unwrap_or(0))
    }

    /// Adds `n` conversations of `minutes` each, one every 10 minutes from `from`, each with one
    /// recording of distinct content, agents cycling through three users.
    pub fn add_conversations(&self, prefix: &str, from: DateTime<Utc>, n: usize, minutes: i64) -> Vec<String> {
        let mut ids = Vec::new();
        self.with(|s| {
            for (u, name, ext) in
                [("u-1", "Ann Agent", "1001"), ("u-2", "Bob Agent", "1002"), ("u-3", "Cy Agent", "1003")]
            {
                s.users.insert(u.into(), (name.into(), ext.into()));
            }
            for i in 0..n {
                let start = from + chrono::Duration::minutes(10 * i as i64);
                let id = format!("{prefix}{i:04}-0000-4000-8000-000000000000");
                s.conversations.push(EConv {
                    id: id.clone(),
                    start,
                    end: Some(start + chrono::Duration::minutes(minutes)),
                    direction: if i % 2 == 0 { "inbound" } else { "outbound" }.into(),
                    agent: Some(format!("u-{}", i % 3 + 1)),
                    customer_number: format!("+1555000{i:04}"),
                    customer_name: format!("Customer {i}"),
                    dnis: "+18005550100".into(),
                    recordings: vec![ERec {
                        id: format!("r{i:04}"),
                        media: media_bytes(&id, 4_000 + 97 * i),
                        not_ready_polls: 0,
                        never_ready: false,
                    }],
                });
                ids.push(id);
            }
        });
        ids
    }

    pub fn recording_mut(&self, conv: &str, f: impl FnOnce(&mut ERec)) {
        self.with(|s| {
            let c = s.conversations.iter_mut().find(|c| c.id == conv).expect("conversation");
            f(&mut c.recordings[0]);
        })
    }

    /// Puts every recording's media in the S3 of `deploy/servers.sh` (`RECLIFE_TEST_S3`,
    /// `AWS_*`) under a fresh prefix, and from now on hands out pre-signed URLs of those objects.
    /// `None` (nothing changed) when that S3 is not configured.
    pub fn media_in_s3(&self) -> Option<String> {
        let target = std::env::var("RECLIFE_TEST_S3").ok()?;
        let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("RECLIFE_TEST_S3 is set but {k} is not"));
        let (bucket, base) = target.strip_prefix("s3://")?.split_once('/').unwrap_or((target.as_str(), ""));
        let prefix =
            format!("{}/genesys-emu/{}", base.trim_end_matches('/'), Utc::now().timestamp_nanos_opt().unwrap_or(0));
        let creds = aws_sdk_s3::config::Credentials::new(
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "test",
        );
        let cfg = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(env("AWS_ENDPOINT_URL"))
            .region(aws_sdk_s3::config::Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(cfg);
        let objects: Vec<(String, Vec<u8>)> = self.with(|s| {
            let mut out = Vec::new();
            for c in &s.conversations {
                for r in &c.recordings {
                    out.push((format!("{prefix}/{}/{}", c.id, r.id), r.media.clone()));
                }
            }
            out
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let bucket = bucket.to_string();
        rt.block_on(async {
            let _ = client.create_bucket().bucket(&bucket).send().await;
            for (key, bytes) in objects {
                client
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(bytes.into())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put {key} in S3: {e:?}"));
            }
        });
        drop(rt);
        self.with(|s| s.s3 = Some((client, bucket.clone(), prefix.clone())));
        Some(format!("s3://{bucket}/{prefix}"))
    }

    pub fn media_of(&self, conv: &str) -> Vec<u8> {
        self.with(|s| s.conversations.iter().find(|c| c.id == conv).unwrap().recordings[0].media.clone())
    }
}

/// A TLS front (rustls) on loopback that requires a client certificate issued by `client_ca`
/// and passes each accepted connection on to `upstream` (`http://host:port`, the emulator).
/// Answers its `https://127.0.0.1:port` URL and the count of handshakes accepted and refused.
pub fn tls_front(
    upstream: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: &std::path::Path,
) -> (String, Arc<std::sync::atomic::AtomicU64>, Arc<std::sync::atomic::AtomicU64>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio_rustls::rustls;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(client_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (ok, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (ok2, refused2) = (ok.clone(), refused.clone());
    let up = upstream.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = l.accept().await else { continue };
                let (acc, up, ok, refused) = (acceptor.clone(), up.clone(), ok2.clone(), refused2.clone());
                tokio::spawn(async move {
                    match acc.accept(tcp).await {
                        Ok(mut tls) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if let Ok(mut u) = tokio::net::TcpStream::connect(&up).await {
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut u).await;
                            }
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
    });
    (url, ok, refused)
}

/// Deterministic bytes that differ per conversation.
pub fn media_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut x: u64 = seed.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
