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

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()
}

/// This process's name as a lease holder: `<host>:<pid>:<random>`.
pub fn holder() -> String {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| format!("{}:{}:{:08x}", host(), std::process::id(), rand32())).clone()
}

/// True when `holder` is a process of this host that no longer exists: its leases need not
/// wait out their expiry. (A recycled pid looks alive; then the lease simply expires.)
pub fn holder_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (_rand, pid, h) = (parts.next(), parts.next(), parts.next());
    let (Some(pid), Some(h)) = (pid.and_then(|p| p.parse::<u32>().ok()), h) else { return false };
    h == host() && pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// True when a lease is in force: not expired, and its holder is not known to be dead.
pub fn is_live(l: &crate::catalog::Lease, now: chrono::DateTime<Utc>) -> bool {
    l.until > now && !holder_dead(&l.holder)
}

/// Takes `name` if it is free, expired, ours, or held by a dead process of this host.
pub(crate) fn acquire(c: &dyn Catalog, name: &str, secs: u64) -> Result<bool, crate::catalog::CatalogError> {
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(secs as i64);
    if c.lease_acquire(name, &holder(), now, until)? {
        return Ok(true);
    }
    for l in c.lease_list(name)? {
        if l.name == name && holder_dead(&l.holder) {
            tracing::info!(lease = %name, holder = %l.holder, "taking over the lease of a process that stopped");
            c.lease_release(name, &l.holder)?;
            return c.lease_acquire(name, &holder(), now, until);
        }
    }
    Ok(false)
}

fn rand32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish() as u32
}

/// Names of the leases held through a [`Held`] in this process. The catalog knows holders by
/// process, so without this two tasks of one process would both "take" a lease (the second
/// one extending the first's): a daemon's housekeeping would then recover the purge batch its
/// own running purge is executing.
fn held_here() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    static HELD: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    HELD.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// Leases this process holds and renews every third of `secs` until dropped; dropping
/// releases them. A lease is held by one `Held` at a time within a process too.
#[derive(Debug)]
pub struct Held {
    catalog: Arc<dyn Catalog>,
    names: Vec<String>,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Held {
    /// Tries once to take `name` for `secs` seconds; `None` when someone else (another
    /// process, or another task of this one) holds it.
    pub async fn take(catalog: Arc<dyn Catalog>, name: &str, secs: u64) -> Result<Option<Held>, LifecycleError> {
        if !held_here().insert(name.to_string()) {
            return Ok(None);
        }
        let (c, n) = (catalog.clone(), name.to_string());
        let secs = secs.max(3);
        let got = blocking(move || Ok(acquire(c.as_ref(), &n, secs)?)).await;
        if !matches!(got, Ok(true)) {
            held_here().remove(name);
            return got.map(|_| None);
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
            held_here().remove(n);
        }
    }
}

/// Releases every lease held by a process of this host that no longer exists (killed, or
/// crashed): what it was doing is void, and its claims would otherwise linger until they
/// expire and show up in `reclife check` as stale. Returns how many.
pub fn sweep_dead(catalog: &dyn Catalog) -> Result<usize, crate::catalog::CatalogError> {
    let mut n = 0;
    for l in catalog.lease_list("")? {
        if holder_dead(&l.holder) {
            catalog.lease_release(&l.name, &l.holder)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Removes an expired (or dead holder's) lease (used by `reclife check --repair`). False
/// when it is live.
pub fn break_expired(catalog: &dyn Catalog, name: &str) -> Result<bool, crate::catalog::CatalogError> {
    if !acquire(catalog, name, 0)? {
        return Ok(false);
    }
    catalog.lease_release(name, &holder())?;
    Ok(true)
}
