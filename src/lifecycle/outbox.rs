//! The durable outbox of notifications: a purge notification is queued in the catalog (state
//! namespace [`NAMESPACE`]) before its journal entry ends, an import source's alert when it is
//! raised ([`event_entry`], keys `import/…`); each is removed only once the endpoint accepted it. Delivery is retried at the start of every task until it succeeds: at least
//! once, never dropped (the receiver may see a journal id twice after a crash).

use super::{blocking, notify, LifecycleError};
use crate::config::Context;
use serde::{Deserialize, Serialize};

pub const NAMESPACE: &str = crate::catalog::namespaces::OUTBOX;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    journal: String,
    ids: Vec<String>,
    /// Any other event, posted as it is (an import source's alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<serde_json::Value>,
}

/// The outbox entry of an event other than a purge, for a caller that writes it in the
/// catalog itself (under [`NAMESPACE`], with a key of its own that no journal id takes).
pub fn event_entry(event: serde_json::Value) -> String {
    serde_json::to_string(&Pending { journal: String::new(), ids: Vec::new(), event: Some(event) }).unwrap_or_default()
}

/// Queues the notification that `ids` were purged under journal entry `journal`.
pub async fn enqueue(ctx: &Context, journal: &str, ids: &[String]) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(&Pending { journal: journal.to_string(), ids: ids.to_vec(), event: None })
        .map_err(|e| LifecycleError::Other(e.to_string()))?;
    let (catalog, key) = (ctx.catalog.clone(), journal.to_string());
    blocking(move || Ok(catalog.state_put(NAMESPACE, &key, &text)?)).await
}

/// Tries to deliver every queued notification, in key order, until one is not accepted;
/// returns how many are still queued. Failures are logged (with the URL's credentials and
/// query left out) and retried next time.
pub async fn deliver(ctx: &Context) -> usize {
    let Some(cfg) = &ctx.config.notify else { return 0 };
    let catalog = ctx.catalog.clone();
    let queued = match blocking(move || Ok(catalog.state_list(NAMESPACE)?)).await {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the notification outbox");
            return 0;
        }
    };
    let mut left = 0;
    let total = queued.len();
    for (i, (key, text)) in queued.into_iter().enumerate() {
        let Ok(p) = serde_json::from_str::<Pending>(&text) else {
            tracing::warn!(entry = %key, "unreadable outbox entry left in place");
            left += 1;
            continue;
        };
        let sent = match p.event {
            Some(ev) => notify::post(cfg, ev.to_string()).await,
            None => notify::send(cfg, &p.journal, &p.ids).await,
        };
        match sent {
            Ok(()) => {
                let (catalog, k) = (ctx.catalog.clone(), key.clone());
                if let Err(e) = blocking(move || Ok(catalog.state_delete(NAMESPACE, &k)?)).await {
                    tracing::warn!(entry = %key, error = %e, "delivered, but cannot clear the outbox entry");
                }
            }
            Err(reason) => {
                tracing::warn!(entry = %key, error = %reason, "notification not delivered; it stays queued");
                // The endpoint refused after its retries: the rest waits for the next time
                // rather than each waiting out its own retries now.
                left += total - i;
                break;
            }
        }
    }
    left
}

/// Notifications waiting in the outbox.
pub async fn pending(ctx: &Context) -> Result<usize, LifecycleError> {
    let catalog = ctx.catalog.clone();
    Ok(blocking(move || Ok(catalog.state_list(NAMESPACE)?)).await?.len())
}
