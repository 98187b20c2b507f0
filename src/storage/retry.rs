//! Retries for the remote backends: capped exponential backoff with full jitter, a server's
//! `Retry-After` honoured (up to the cap), and downloads that resume where they broke off.
//!
//! A backend classifies each failed attempt as [`Attempt::Retry`] (5xx, 429, connection reset,
//! timeout) or [`Attempt::Fail`] (anything else: not found, refused credentials, a conflict);
//! [`run`] repeats the first kind up to the policy's attempts.

use super::{ByteStream, StorageError};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub enum Attempt {
    /// Temporary: try again (after at least `after`, when the server said so).
    Retry { error: StorageError, after: Option<Duration> },
    /// Permanent: report it.
    Fail(StorageError),
}

impl Attempt {
    pub fn retry(error: StorageError) -> Attempt {
        Attempt::Retry { error, after: None }
    }
}

/// The pause before retry number `attempt` (1 = the first retry): a random duration in
/// `0 ..= min(cap, base × 2^(attempt-1))`, never less than the server's `Retry-After`
/// (itself capped).
pub fn backoff(policy: &RetryPolicy, attempt: u32, after: Option<Duration>) -> Duration {
    let exp = policy.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(policy.cap);
    let jittered = ceiling.mul_f64(random_unit());
    match after {
        Some(a) => jittered.max(a.min(policy.cap)),
        None => jittered,
    }
}

/// A number in [0, 1) that differs between calls (jitter needs no cryptographic quality).
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A random token (hex), for names of temporary objects and ownership marks.
pub fn token() -> String {
    format!("{:016x}{:08x}", (random_unit() * (1u64 << 53) as f64) as u64, std::process::id())
}

/// Runs `op` (given the attempt number, from 1) until it succeeds, fails permanently or
/// runs out of attempts; the last error is returned.
pub async fn run<T, F>(policy: &RetryPolicy, what: &str, mut op: F) -> Result<T, StorageError>
where
    F: FnMut(u32) -> BoxFuture<'static, Result<T, Attempt>>,
{
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Retry { error, after }) => {
                if attempt >= policy.max_attempts {
                    return Err(error);
                }
                let pause = backoff(policy, attempt, after);
                tracing::debug!(what, attempt, pause_ms = pause.as_millis() as u64, error = %error, "retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        }
    }
}

/// A function that opens a read of the object from byte `offset` (up to the end of the
/// wanted range), retrying the request itself.
pub type Reopen = Box<dyn Fn(u64) -> BoxFuture<'static, Result<ByteStream, StorageError>> + Send + Sync>;

/// A download that survives broken connections and stalls: when the body fails (or no byte
/// arrives for `read_timeout`), it reopens the read at the first byte not yet delivered, up to
/// the policy's attempts in a row. The caller's reopen makes sure it reads the same object
/// (If-Match on its ETag), so a resumed read never splices two versions.
pub fn resumable(first: ByteStream, reopen: Reopen, policy: RetryPolicy, read_timeout: Duration) -> ByteStream {
    struct State {
        body: Option<ByteStream>,
        offset: u64,
        failures: u32,
        reopen: Reopen,
        policy: RetryPolicy,
        read_timeout: Duration,
    }
    let state = State { body: Some(first), offset: 0, failures: 0, reopen, policy, read_timeout };
    Box::pin(futures::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        loop {
            let body = match st.body.as_mut() {
                Some(b) => b,
                None => match (st.reopen)(st.offset).await {
                    Ok(b) => st.body.insert(b),
                    Err(e) => return Some((Err(e), None)),
                },
            };
            let error = match tokio::time::timeout(st.read_timeout, body.next()).await {
                Ok(None) => return None,
                Ok(Some(Ok(chunk))) => {
                    st.offset += chunk.len() as u64;
                    if !chunk.is_empty() {
                        st.failures = 0;
                    }
                    return Some((Ok::<Bytes, StorageError>(chunk), Some(st)));
                }
                Ok(Some(Err(e))) => e,
                Err(_) => StorageError::Backend {
                    store: String::new(),
                    op: "read",
                    key: String::new(),
                    message: format!("no data for {} s", st.read_timeout.as_secs()),
                },
            };
            st.failures += 1;
            if st.failures >= st.policy.max_attempts {
                return Some((Err(error), None));
            }
            tracing::debug!(offset = st.offset, attempt = st.failures, error = %error, "resuming a broken download");
            st.body = None;
            tokio::time::sleep(backoff(&st.policy, st.failures, None)).await;
        }
    }))
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is treated as absent).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy { max_attempts: 5, base: Duration::from_millis(100), cap: Duration::from_secs(2) };
        for attempt in 1..30 {
            let d = backoff(&p, attempt, None);
            let ceiling = Duration::from_millis(100u64.saturating_mul(1 << (attempt - 1).min(20))).min(p.cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        assert!(backoff(&p, 1, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
        assert_eq!(backoff(&p, 1, Some(Duration::from_secs(3600))), p.cap, "Retry-After is capped");
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(&p, 4, None)).collect();
        assert!(samples.len() > 1, "jitter varies the pause");
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }

    #[tokio::test]
    async fn run_retries_only_temporary_failures() {
        let p = RetryPolicy { max_attempts: 4, base: Duration::from_millis(1), cap: Duration::from_millis(2) };
        let e = || StorageError::Backend { store: "s".into(), op: "x", key: "k".into(), message: "503".into() };
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = calls.clone();
        let r: Result<u32, _> = run(&p, "t", move |n| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if n < 3 {
                    Err(Attempt::retry(e()))
                } else {
                    Ok(n)
                }
            })
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let c = calls.clone();
        let r: Result<u32, _> = run(&p, "t", move |_| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { Err(Attempt::retry(e())) })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3 + 4, "gives up after max_attempts");
        let r: Result<u32, _> = run(&p, "t", move |_| Box::pin(async move { Err(Attempt::Fail(e())) })).await;
        assert!(r.is_err());
    }
}
