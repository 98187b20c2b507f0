//! A small blocking connection pool for the synchronous `postgres` client.
//!
//! In: a connection config (password already resolved) and a size. Out: [`Pool::run`], which
//! lends a connection to a closure. Guarantees: at most `size` connections are open; a
//! connection that broke is dropped, never handed out again; a closure that fails on a broken
//! connection, a deadlock or a serialization failure is run again (at most [`ATTEMPTS`] times)
//! on a good connection, so callers write each call as one transaction that may be repeated.
//!
//! The `postgres` client drives its socket with a private tokio runtime and blocks on it; a
//! tokio runtime cannot be blocked on from a thread that is already driving async tasks (it
//! panics). Most catalog calls come from `spawn_blocking` threads, where blocking is allowed,
//! but a few come from async code directly (a lease released when its guard drops). So a call
//! made on a thread with a tokio context runs on a scoped helper thread instead: correct
//! everywhere, at the price of a thread start (tens of microseconds) per such call.

use super::super::CatalogError;
use postgres::{Client, NoTls};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How many times one call is tried when the connection breaks or the server asks for a retry.
pub const ATTEMPTS: usize = 4;

/// The pool.
pub struct Pool {
    config: postgres::Config,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Client>,
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // postgres::Config's own Debug redacts the password; still, print only what helps.
        f.debug_struct("Pool")
            .field("hosts", &self.config.get_hosts().len())
            .field("dbname", &self.config.get_dbname())
            .field("user", &self.config.get_user())
            .field("size", &self.size)
            .finish()
    }
}

impl Drop for Pool {
    /// Closing a client blocks on its runtime too, so a pool dropped in async code closes its
    /// connections on a helper thread.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(move || drop(idle));
            });
        } else {
            drop(idle);
        }
    }
}

/// True for errors after which the same work may succeed on another try.
fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// A failure of a pooled call: the database's error (retried when it may pass), or ours.
#[derive(Debug)]
pub enum Failure {
    Pg(postgres::Error),
    Catalog(CatalogError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Self {
        Failure::Catalog(e)
    }
}

/// The database's message for an error, with its SQLSTATE; never the connection parameters.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl Pool {
    pub fn new(config: postgres::Config, size: usize) -> Pool {
        Pool {
            config,
            size: size.max(1),
            state: Mutex::new(State { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkout(&self) -> Result<Client, CatalogError> {
        let mut st = self.lock();
        loop {
            while let Some(c) = st.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                st.open -= 1;
            }
            if st.open < self.size {
                st.open += 1;
                drop(st);
                return self.config.connect(NoTls).map_err(|e| {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                    CatalogError::Db(format!("cannot connect to the PostgreSQL catalog: {}", describe(&e)))
                });
            }
            let (s, timeout) = self.freed.wait_timeout(st, Duration::from_secs(60)).unwrap_or_else(|p| p.into_inner());
            st = s;
            if timeout.timed_out() && st.idle.is_empty() && st.open >= self.size {
                return Err(CatalogError::Db(format!(
                    "no PostgreSQL catalog connection free after 60 s (pool of {})",
                    self.size
                )));
            }
        }
    }

    fn checkin(&self, c: Client, healthy: bool) {
        let mut st = self.lock();
        if healthy && !c.is_closed() {
            st.idle.push(c);
        } else {
            st.open -= 1;
        }
        drop(st);
        self.freed.notify_one();
    }

    /// Runs `f` with a pooled connection, again on retryable failures; see the module doc.
    pub fn run<R, F>(&self, mut f: F) -> Result<R, CatalogError>
    where
        R: Send,
        F: FnMut(&mut Client) -> Result<R, Failure> + Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|s| {
                s.spawn(|| self.run_here(&mut f))
                    .join()
                    .unwrap_or_else(|_| Err(CatalogError::Db("a PostgreSQL catalog call panicked".into())))
            });
        }
        self.run_here(&mut f)
    }

    fn run_here<R>(&self, f: &mut dyn FnMut(&mut Client) -> Result<R, Failure>) -> Result<R, CatalogError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.checkout()?;
            let r = f(&mut c);
            match r {
                Ok(v) => {
                    self.checkin(c, true);
                    return Ok(v);
                }
                Err(Failure::Catalog(e)) => {
                    self.checkin(c, true);
                    return Err(e);
                }
                Err(Failure::Pg(e)) => {
                    let closed = e.is_closed() || c.is_closed();
                    self.checkin(c, !closed);
                    if attempt < ATTEMPTS && retryable(&e) {
                        tracing::debug!(attempt, error = %describe(&e), "PostgreSQL catalog call retried");
                        std::thread::sleep(Duration::from_millis(20 * attempt as u64));
                        continue;
                    }
                    return Err(CatalogError::Db(describe(&e)));
                }
            }
        }
    }
}
