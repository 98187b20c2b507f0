//! Import sources: recordings brought in from other systems. Genesys Cloud first (the seed's
//! "Genesys Cloud Import Source"): voice conversations with recordings, found and fetched
//! through Genesys Cloud's public API ([`genesys`]).
//!
//! In: a configured source (`[import.<name>]`, [`SourceConfig`]), the OAuth client's id and
//! secret (file or environment), the node's [`Context`]. Out: each conversation as a recording
//! in the catalog (a GIR-shaped document, [`document`]) with its media in the node's store; a
//! [`BatchReport`] per run (also kept in the catalog, with the source's alerts).
//!
//! Guarantees:
//! - Media first, then the document: the catalog never names media that is not stored; a media
//!   file is stored whole (the store's atomic put) and its size checked against the answer and
//!   the API's `outputSizeInBytes` before the document is written.
//! - Never twice: the recording id is the conversation id; a conversation whose document and
//!   media are already there is recognised ("already imported") and left as it is, whether the
//!   cursor was moved back or a run died between the document and the cursor.
//! - The cursor never passes a conversation that is neither imported nor in the retry buffer;
//!   it is saved in the catalog after each conversation, so a killed run resumes where it stopped.
//! - One node imports a source at a time: the catalog lease `import/<name>`.
//! - The client secret, the token and the media URLs' signatures never reach a log or an error.

pub mod config;
pub mod document;
pub mod genesys;
mod run;
pub mod state;
pub mod zone;

pub use config::{SourceConfig, SourceType};
pub use state::{Alert, Cursor, RetryEntry};

use crate::config::Context;
use crate::lifecycle::lease::Held;
use serde::Serialize;

/// Errors that stop a run (one conversation that fails does not: it goes to the retry
/// buffer). Each names the source.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import source {source_name}: configuration: {message}")]
    Config { source_name: String, message: String },
    #[error("import source {source_name}: authentication: {message}")]
    Auth { source_name: String, message: String },
    #[error("import source {source_name}: Genesys Cloud API: {message}")]
    Api { source_name: String, message: String },
    #[error("import source {source_name}: {message}")]
    State { source_name: String, message: String },
    /// No such source, or no such conversation in its retry buffer.
    #[error("import source {source_name}: {message}")]
    Missing { source_name: String, message: String },
    /// A run of the source holds its lease.
    #[error("import source {source_name}: {message}")]
    Busy { source_name: String, message: String },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{0}")]
    Other(String),
}

impl ImportError {
    /// The same error, naming `source` where the lower layers could not.
    fn named(self, source: &str) -> ImportError {
        match self {
            ImportError::Api { source_name, message } if source_name.is_empty() => {
                ImportError::Api { source_name: source.to_string(), message }
            }
            ImportError::Other(m) => ImportError::State { source_name: source.to_string(), message: m },
            e => e,
        }
    }
}

/// One conversation of a batch, as the seed's migration status reports it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ConversationStatus {
    pub conversation_id: String,
    pub extension: Option<String>,
    /// The call participant's number.
    pub participant: Option<String>,
    /// reclife's recording id.
    pub reclife_id: Option<String>,
    pub newly_imported: bool,
    pub media_downloaded: bool,
    pub already_imported: bool,
}

/// What a run did (the seed's per-batch migration status).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct BatchReport {
    pub source: String,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    /// Set when another process holds the source's lease: nothing was done.
    pub skipped_held_by: Option<String>,
    pub cursor_before: String,
    pub cursor_after: String,
    pub conversations: Vec<ConversationStatus>,
    /// Conversations put in the retry buffer by this run.
    pub buffered: Vec<String>,
    /// Retry buffer entries taken, and of those, how many failed again.
    pub retried: usize,
    pub failed: usize,
    pub media_bytes: u64,
    pub last_conversation: Option<String>,
    /// More is waiting (max_conversations reached, or a conversation still in progress).
    pub more: bool,
    pub tokens_issued: u64,
    /// When the run ended (the "last batch time" of the metrics and pages).
    #[serde(default)]
    pub finished: Option<chrono::DateTime<chrono::Utc>>,
}

impl BatchReport {
    pub fn imported(&self) -> usize {
        self.conversations.iter().filter(|c| c.newly_imported).count()
    }

    /// The alert text of the batch: "No conversations imported", or one line per conversation.
    pub fn summary(&self) -> String {
        if self.conversations.is_empty() {
            return "No conversations imported".into();
        }
        let mut s = format!("{} conversations imported", self.imported());
        for c in &self.conversations {
            s.push_str(&format!(
                "\n{} extension={} participant={} reclife_id={} newly_imported={} media_downloaded={} already_imported={}",
                c.conversation_id,
                c.extension.as_deref().unwrap_or("-"),
                c.participant.as_deref().unwrap_or("-"),
                c.reclife_id.as_deref().unwrap_or("-"),
                c.newly_imported,
                c.media_downloaded,
                c.already_imported
            ));
        }
        s
    }
}

/// The configured source `name`, checked.
pub fn source<'a>(ctx: &'a Context, name: &str) -> Result<&'a SourceConfig, ImportError> {
    let cfg = ctx.config.import.get(name).ok_or_else(|| ImportError::Missing {
        source_name: name.to_string(),
        message: format!(
            "configuration: no [import.{name}] in the configuration (configured: {})",
            if ctx.config.import.is_empty() {
                "none".to_string()
            } else {
                ctx.config.import.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        ),
    })?;
    cfg.validate(name)?;
    Ok(cfg)
}

/// The lease that lets one process import a source.
pub fn lease_name(source: &str) -> String {
    format!("import/{source}")
}

/// One run of the source `name` (the rule task and `reclife import genesys-cloud` call this),
/// reporting to `progress` one item per conversation handled and the media bytes stored.
pub async fn run_once(
    ctx: &Context,
    name: &str,
    progress: &dyn crate::progress::Progress,
) -> Result<BatchReport, ImportError> {
    let cfg = source(ctx, name)?;
    let mut report = BatchReport { source: name.to_string(), started: Some(chrono::Utc::now()), ..Default::default() };
    let client = genesys::client::Client::new(name, cfg)?;
    let Some(_lease) = Held::take(ctx.catalog.clone(), &lease_name(name), ctx.config.lease_seconds)
        .await
        .map_err(|e| ImportError::Other(e.to_string()))?
    else {
        let n = lease_name(name);
        let holder = state::blocking(&ctx.catalog, move |c| Ok(c.lease_list(&n)?)).await?;
        report.skipped_held_by =
            Some(holder.into_iter().map(|l| l.holder).next().unwrap_or_else(|| "another process".into()));
        return Ok(report);
    };
    let outbox = ctx.config.notify.is_some();
    if let Err(e) = client.login().await {
        let (n, d) = (name.to_string(), e.to_string());
        state::blocking(&ctx.catalog, move |c| {
            state::raise(c, &n, "Failed to retrieve next batch", &d, chrono::Utc::now(), outbox, None)
        })
        .await?;
        crate::lifecycle::outbox::deliver(ctx).await;
        return Err(e);
    }
    let runner = run::Runner { ctx, name, cfg, client, progress };
    let outcome = runner.run(&mut report).await.map_err(|e| e.named(name));
    report.tokens_issued = runner.client.tokens_issued.load(std::sync::atomic::Ordering::Relaxed);
    report.finished = Some(chrono::Utc::now());
    let (imported, failed) = (report.imported() as u64, (report.buffered.len() + report.failed) as u64);
    if let Err(e) = outcome {
        let n = name.to_string();
        state::blocking(&ctx.catalog, move |c| {
            state::bump(c, &n, "imported", imported)?;
            state::bump(c, &n, "failed", failed)
        })
        .await?;
        crate::lifecycle::outbox::deliver(ctx).await;
        return Err(e);
    }
    let value = serde_json::to_value(&report).map_err(|e| ImportError::Other(e.to_string()))?;
    let (n, summary) = (name.to_string(), report.summary());
    state::blocking(&ctx.catalog, move |c| {
        c.state_put(state::LAST_BATCH, &n, &value.to_string())?;
        state::bump(c, &n, "imported", imported)?;
        state::bump(c, &n, "failed", failed)?;
        state::raise(c, &n, state::BATCH_ALERT, &summary, chrono::Utc::now(), outbox, Some(&value))
    })
    .await?;
    crate::lifecycle::outbox::deliver(ctx).await;
    Ok(report)
}

/// The report of the source's last finished run.
pub async fn last_batch(ctx: &Context, name: &str) -> Result<Option<BatchReport>, ImportError> {
    let n = name.to_string();
    let text = state::blocking(&ctx.catalog, move |c| Ok(c.state_get(state::LAST_BATCH, &n)?)).await?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// The cursor as a run would start from it (the saved one, else the start timestamp).
pub async fn cursor(ctx: &Context, name: &str) -> Result<Cursor, ImportError> {
    let cfg = source(ctx, name)?;
    let n = name.to_string();
    let saved = state::blocking(&ctx.catalog, move |c| state::cursor(c, &n)).await?;
    match saved {
        Some(c) => Ok(c),
        None => Ok(Cursor {
            id: String::new(),
            at: cfg.start().map_err(|m| ImportError::Config { source_name: name.into(), message: m })?,
        }),
    }
}

/// Sets the cursor (the seed's `id;yyyy.MM.dd HH:mm:ss.SSS`); waits for no run: a run in
/// progress holds the lease, and the cursor is refused while it does.
pub async fn set_cursor(ctx: &Context, name: &str, text: &str) -> Result<Cursor, ImportError> {
    source(ctx, name)?;
    let cur = Cursor::parse(text).map_err(|m| ImportError::State { source_name: name.into(), message: m })?;
    let Some(_lease) = Held::take(ctx.catalog.clone(), &lease_name(name), ctx.config.lease_seconds)
        .await
        .map_err(|e| ImportError::Other(e.to_string()))?
    else {
        return Err(ImportError::Busy {
            source_name: name.into(),
            message: "a run is in progress (lease held); set the cursor when it has finished".into(),
        });
    };
    let (n, c2) = (name.to_string(), cur.clone());
    state::blocking(&ctx.catalog, move |c| state::set_cursor(c, &n, &c2)).await?;
    Ok(cur)
}

/// The retry buffer of a source.
pub async fn retry_list(ctx: &Context, name: &str) -> Result<Vec<RetryEntry>, ImportError> {
    source(ctx, name)?;
    let n = name.to_string();
    state::blocking(&ctx.catalog, move |c| state::retry_list(c, &n)).await
}

/// Adds a conversation to the retry buffer by hand.
pub async fn retry_add(ctx: &Context, name: &str, conversation_id: &str) -> Result<(), ImportError> {
    source(ctx, name)?;
    crate::model::check_name(conversation_id).map_err(|e| ImportError::State {
        source_name: name.into(),
        message: format!("conversation id {conversation_id:?}: {e}"),
    })?;
    let e = RetryEntry {
        conversation_id: conversation_id.to_string(),
        reason: "added by an operator".into(),
        added: chrono::Utc::now(),
        attempts: 0,
    };
    let n = name.to_string();
    state::blocking(&ctx.catalog, move |c| state::retry_put(c, &n, &e)).await
}

/// Removes a conversation from the retry buffer; an error naming it when it is not there.
pub async fn retry_remove(ctx: &Context, name: &str, conversation_id: &str) -> Result<(), ImportError> {
    source(ctx, name)?;
    let (n, id) = (name.to_string(), conversation_id.to_string());
    if state::blocking(&ctx.catalog, move |c| state::retry_remove(c, &n, &id)).await? {
        Ok(())
    } else {
        Err(ImportError::Missing {
            source_name: name.into(),
            message: format!("conversation {conversation_id} is not in the retry buffer"),
        })
    }
}

/// The alerts of a source, oldest first.
pub async fn alerts(ctx: &Context, name: &str) -> Result<Vec<Alert>, ImportError> {
    let n = name.to_string();
    state::blocking(&ctx.catalog, move |c| state::alerts(c, &n)).await
}

/// Alerts a status shows, newest first.
pub const STATUS_ALERTS: usize = 50;

/// What the API, the pages and `/metrics` show of a source: one call for all of them.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The cursor a run starts from (`id;yyyy.MM.dd HH:mm:ss.SSS`, UTC).
    pub cursor: String,
    /// "Recording Timezone": the zone the pages show this source's times in.
    pub timezone: String,
    pub retry_buffer: Vec<RetryEntry>,
    pub last_batch: Option<BatchReport>,
    /// The newest alerts first, at most [`STATUS_ALERTS`].
    pub alerts: Vec<Alert>,
    /// Running totals: `imported`, `failed`, `alert/<message>`.
    pub totals: std::collections::BTreeMap<String, u64>,
    /// The process running it now (its lease holder), if any.
    pub running: Option<String>,
    /// Configuration problems (the source cannot run until they are fixed).
    pub problem: Option<String>,
}

/// The status of the configured source `name`.
pub async fn status(ctx: &Context, name: &str) -> Result<SourceStatus, ImportError> {
    let cfg = ctx.config.import.get(name).ok_or_else(|| ImportError::Missing {
        source_name: name.to_string(),
        message: format!("configuration: no [import.{name}] in the configuration"),
    })?;
    let problem = cfg.validate(name).err().map(|e| e.to_string());
    let (n, now) = (name.to_string(), chrono::Utc::now());
    let (saved, retry_buffer, last, mut alerts, totals, running) = state::blocking(&ctx.catalog, move |c| {
        let last = c.state_get(state::LAST_BATCH, &n)?;
        let running = c.lease_list(&lease_name(&n))?.into_iter().find(|l| l.until > now).map(|l| l.holder);
        Ok((
            state::cursor(c, &n)?,
            state::retry_list(c, &n)?,
            last,
            state::alerts(c, &n)?,
            state::counters(c, &n)?,
            running,
        ))
    })
    .await?;
    alerts.reverse();
    alerts.truncate(STATUS_ALERTS);
    let cursor = match saved {
        Some(c) => c.to_string(),
        None => cfg.start().map(|at| Cursor { id: String::new(), at }.to_string()).unwrap_or_default(),
    };
    Ok(SourceStatus {
        name: name.to_string(),
        kind: match cfg.kind {
            SourceType::GenesysCloud => "genesys-cloud",
        },
        cursor,
        timezone: cfg.timezone.clone(),
        retry_buffer,
        last_batch: last.and_then(|t| serde_json::from_str(&t).ok()),
        alerts,
        totals,
        running,
        problem,
    })
}

/// The status of every configured source, by name.
pub async fn statuses(ctx: &Context) -> Result<Vec<SourceStatus>, ImportError> {
    let mut out = Vec::new();
    for name in ctx.config.import.keys() {
        out.push(status(ctx, name).await?);
    }
    Ok(out)
}
