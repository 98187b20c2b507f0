//! The durable outbox of purge notifications: a notification is queued in the catalog (state
//! namespace [`NAMESPACE`]) before its journal entry ends, and removed only once the endpoint
//! accepted it. Delivery is retried at the start of every task until it succeeds: at least
//! once, never dropped (the receiver may see a journal id twice after a crash).

use super::{blocking, notify, LifecycleError};
use crate::config::Context;
use serde::{Deserialize, Serialize};

pub const NAMESPACE: &str = crate::catalog::namespaces::OUTBOX;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    journal: String,
    ids: Vec<String>,
}

/// Queues the notification that `ids` were purged under journal entry `journal`.
pub async fn enqueue(ctx: &Context, journal: &str, ids: &[String]) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(&Pending { journal: journal.to_string(), ids: ids.to_vec() })
        .map_err(|e| LifecycleError::Other(e.to_string()))?;
    let (catalog, key) = (ctx.catalog.clone(), journal.to_string());
    blocking(move || Ok(catalog.state_put(NAMESPACE, &key, &text)?)).await
}

/// Tries to deliver every queued notification; returns how many are still queued. Failures
/// are logged (with the URL's credentials and query left out) and retried next time.
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
    for (key, text) in queued {
        let Ok(p) = serde_json::from_str::<Pending>(&text) else {
            tracing::warn!(entry = %key, "unreadable outbox entry left in place");
            left += 1;
            continue;
        };
        match notify::send(cfg, &p.journal, &p.ids).await {
            Ok(()) => {
                let (catalog, k) = (ctx.catalog.clone(), key.clone());
                if let Err(e) = blocking(move || Ok(catalog.state_delete(NAMESPACE, &k)?)).await {
                    tracing::warn!(entry = %key, error = %e, "delivered, but cannot clear the outbox entry");
                }
            }
            Err(reason) => {
                tracing::warn!(journal = %p.journal, error = %reason, "purge notification not delivered; it stays queued");
                left += 1;
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
