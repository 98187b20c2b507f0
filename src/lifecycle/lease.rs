//! Leases in the catalog that a running task holds and renews, so that what one process is
//! doing is visible to every other process and node on the same catalog, and a crashed
//! holder's claim expires by itself.
//!
//! Leases use the system clock, never `--now`: expiry is about real time passing.

use super::{blocking, LifecycleError};
use crate::catalog::Catalog;
use chrono::Utc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// This process's name as a lease holder: `<host>:<pid>:<random>`.
pub fn holder() -> String {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}:{}:{:08x}", host.trim(), std::process::id(), rand32())
    })
    .clone()
}

fn rand32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish() as u32
}

/// Leases this process holds and renews every third of `secs` until dropped; dropping
/// releases them.
#[derive(Debug)]
pub struct Held {
    catalog: Arc<dyn Catalog>,
    names: Vec<String>,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Held {
    /// Tries once to take `name` for `secs` seconds; `None` when someone else holds it.
    pub async fn take(catalog: Arc<dyn Catalog>, name: &str, secs: u64) -> Result<Option<Held>, LifecycleError> {
        let (c, n, me) = (catalog.clone(), name.to_string(), holder());
        let secs = secs.max(3);
        let got = blocking(move || {
            let now = Utc::now();
            Ok(c.lease_acquire(&n, &me, now, now + chrono::Duration::seconds(secs as i64))?)
        })
        .await?;
        if !got {
            return Ok(None);
        }
        let (c, n, me) = (catalog.clone(), name.to_string(), holder());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(secs / 3)).await;
                let (c2, n2, me2) = (c.clone(), n.clone(), me.clone());
                let r = tokio::task::spawn_blocking(move || {
                    let now = Utc::now();
                    c2.lease_acquire(&n2, &me2, now, now + chrono::Duration::seconds(secs as i64))
                })
                .await;
                match r {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        tracing::error!(lease = %n, "lost a lease this process held (renewal came too late)")
                    }
                    Ok(Err(e)) => tracing::warn!(lease = %n, error = %e, "cannot renew a lease; will retry"),
                    Err(_) => return,
                }
            }
        });
        Ok(Some(Held { catalog, names: vec![name.to_string()], renew: Some(renew) }))
    }

    /// Waits until `name` can be taken, polling.
    pub async fn wait(catalog: Arc<dyn Catalog>, name: &str, secs: u64) -> Result<Held, LifecycleError> {
        loop {
            if let Some(h) = Held::take(catalog.clone(), name, secs).await? {
                return Ok(h);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(r) = self.renew.take() {
            r.abort();
        }
        let me = holder();
        for n in &self.names {
            if let Err(e) = self.catalog.lease_release(n, &me) {
                tracing::warn!(lease = %n, error = %e, "cannot release a lease; it expires by itself");
            }
        }
    }
}

/// Removes an expired lease of any holder (used by `reclife check --repair`). False when it
/// is live.
pub fn break_expired(catalog: &dyn Catalog, name: &str) -> Result<bool, crate::catalog::CatalogError> {
    let me = holder();
    let now = Utc::now();
    if !catalog.lease_acquire(name, &me, now, now)? {
        return Ok(false);
    }
    catalog.lease_release(name, &me)?;
    Ok(true)
}
