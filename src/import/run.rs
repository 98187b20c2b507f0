//! One run of an import source: the retry buffer's oldest entries, then the conversations
//! after the cursor, window by window, until caught up with now minus the lag or
//! `max_conversations` are handled. Each conversation is imported (media stored and checked,
//! then its document) or put in the retry buffer before the cursor passes it. Up to
//! `parallel_fetches` conversations are fetched at once; the cursor still moves over them in
//! order, each once it and every one before it is done (a conversation finished ahead of the
//! cursor by a run that died is recognised as already imported by the next).

use super::config::SourceConfig;
use super::document::{self, StoredMedia};
use super::genesys::{self, client::Client, model::Conversation};
use super::state::{self, Cursor, RetryEntry};
use super::{BatchReport, ConversationStatus, ImportError};
use crate::config::Context;
use crate::lifecycle::failpoint;
use crate::model::Recording;
use crate::storage::Key;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::time::{Duration, Instant};

/// Why a conversation was not imported this time.
enum Miss {
    /// Media not available within the availability delay: "CDR placed in retry buffer".
    NotReady(String),
    /// Metadata or media problem: "Conversation failed to import" (and retried later).
    Failed(String),
}

pub(super) struct Runner<'a> {
    pub ctx: &'a Context,
    pub name: &'a str,
    pub cfg: &'a SourceConfig,
    pub client: Client,
    /// One item per conversation handled (retried ones too), and the media bytes stored.
    pub progress: &'a dyn crate::progress::Progress,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Runner<'_> {
    async fn alert(&self, message: &str, detail: String) -> Result<(), ImportError> {
        let (n, m, outbox) = (self.name.to_string(), message.to_string(), self.ctx.config.notify.is_some());
        state::blocking(&self.ctx.catalog, move |c| state::raise(c, &n, &m, &detail, now(), outbox, None)).await
    }

    /// The run: retry buffer first, then the cursor onwards.
    pub async fn run(&self, report: &mut BatchReport) -> Result<(), ImportError> {
        let name = self.name.to_string();
        let saved = state::blocking(&self.ctx.catalog, {
            let n = name.clone();
            move |c| state::cursor(c, &n)
        })
        .await?;
        let start = self.cfg.start().map_err(|m| ImportError::Config { source_name: name.clone(), message: m })?;
        let mut cursor = saved.unwrap_or(Cursor { id: String::new(), at: start });
        report.cursor_before = cursor.to_string();

        // Deletions a previous run noted and did not finish.
        if self.cfg.delete_on_completion {
            self.delete_pending(None).await?;
        }
        // The retry buffer: up to retry_batch entries, oldest first.
        let buffered = state::blocking(&self.ctx.catalog, {
            let n = name.clone();
            move |c| state::retry_list(c, &n)
        })
        .await?;
        for entry in buffered.into_iter().take(self.cfg.retry_batch) {
            report.retried += 1;
            self.progress.inc(1);
            let conv = match genesys::conversation(&self.client, &entry.conversation_id).await {
                Ok(c) => c,
                Err(e) => {
                    self.requeue(&entry, format!("{e}")).await?;
                    report.failed += 1;
                    continue;
                }
            };
            match self.one(&conv, report).await? {
                None => {
                    let (n, id) = (name.clone(), entry.conversation_id.clone());
                    state::blocking(&self.ctx.catalog, move |c| state::retry_remove(c, &n, &id).map(|_| ())).await?;
                }
                Some(Miss::NotReady(why)) | Some(Miss::Failed(why)) => {
                    self.requeue(&entry, why).await?;
                    report.failed += 1;
                }
            }
        }

        // The cursor onwards.
        let mut handled = 0usize;
        // Fixed for the run: a run catches up to its own start, never chasing the clock.
        let horizon = now() - chrono::Duration::from_std(self.cfg.lag()).unwrap_or_default();
        'windows: loop {
            if cursor.at >= horizon {
                break;
            }
            let end = (cursor.at + chrono::Duration::from_std(self.cfg.batch()).unwrap_or(chrono::Duration::hours(1)))
                .min(horizon);
            // The window's interval stays as it was asked for while its pages are read: the
            // cursor moves within it, and a page number means something of one interval only.
            let from = cursor.at;
            let mut page = 1;
            loop {
                let answer = match genesys::conversations(&self.client, from, end, page, self.cfg.page_size).await {
                    Ok(a) => a,
                    Err(e) => {
                        self.alert("Failed to retrieve next batch", e.to_string()).await?;
                        return Err(e);
                    }
                };
                let n = answer.conversations.len();
                let mut convs: Vec<Conversation> = answer
                    .conversations
                    .into_iter()
                    .filter(|c| c.conversation_start >= from && c.conversation_start < end)
                    .filter(|c| !cursor.passed(c.conversation_start, &c.conversation_id))
                    .collect();
                convs.sort_by(|a, b| {
                    (a.conversation_start, &a.conversation_id).cmp(&(b.conversation_start, &b.conversation_id))
                });
                // Admitted in order, up to the first that must wait (the cursor stops before
                // it) or max_conversations; then fetched `parallel_fetches` at a time, and the
                // cursor moved over each in order once it is done.
                let mut admitted = Vec::new();
                let mut stop = false;
                for conv in convs {
                    if handled + admitted.len() >= self.cfg.max_conversations {
                        report.more = true;
                        stop = true;
                        break;
                    }
                    match self.admit(&conv).await? {
                        Admit::Wait => {
                            report.more = true;
                            stop = true;
                            break;
                        }
                        Admit::Skip => admitted.push((conv, false)),
                        Admit::Go => admitted.push((conv, true)),
                    }
                }
                let mut results = futures::stream::iter(admitted.into_iter().map(|(conv, go)| async move {
                    let mut part = BatchReport::default();
                    let r = if go { self.one(&conv, &mut part).await } else { Ok(None) };
                    (conv, part, r)
                }))
                .buffered(self.cfg.parallel_fetches.max(1));
                while let Some((conv, part, r)) = results.next().await {
                    report.conversations.extend(part.conversations);
                    report.media_bytes += part.media_bytes;
                    if let Some(miss) = r? {
                        let (message, why) = match miss {
                            Miss::NotReady(w) => ("CDR placed in retry buffer", w),
                            Miss::Failed(w) => ("Conversation failed to import", w),
                        };
                        let e = RetryEntry {
                            conversation_id: conv.conversation_id.clone(),
                            reason: why.clone(),
                            added: now(),
                            attempts: 0,
                        };
                        let nm = name.clone();
                        state::blocking(&self.ctx.catalog, move |c| state::retry_put(c, &nm, &e)).await?;
                        self.alert(message, format!("conversation {}: {why}", conv.conversation_id)).await?;
                        report.buffered.push(conv.conversation_id.clone());
                    }
                    failpoint::hit("import.before_cursor");
                    cursor = Cursor { id: conv.conversation_id.clone(), at: conv.conversation_start };
                    let (nm, cur) = (name.clone(), cursor.clone());
                    state::blocking(&self.ctx.catalog, move |c| state::set_cursor(c, &nm, &cur)).await?;
                    report.last_conversation = Some(conv.conversation_id.clone());
                    handled += 1;
                    self.progress.inc(1);
                }
                if stop {
                    break 'windows;
                }
                if n < self.cfg.page_size as usize {
                    break;
                }
                page += 1;
            }
            // The whole window is done: resume at its end.
            cursor = Cursor { id: String::new(), at: end };
            let (nm, cur) = (name.clone(), cursor.clone());
            state::blocking(&self.ctx.catalog, move |c| state::set_cursor(c, &nm, &cur)).await?;
        }
        report.cursor_after = cursor.to_string();
        Ok(())
    }

    async fn requeue(&self, entry: &RetryEntry, why: String) -> Result<(), ImportError> {
        let mut e = entry.clone();
        e.attempts += 1;
        e.reason = why.clone();
        let nm = self.name.to_string();
        state::blocking(&self.ctx.catalog, move |c| state::retry_put(c, &nm, &e)).await?;
        self.alert("CDR placed in retry buffer", format!("conversation {} (retried): {why}", entry.conversation_id))
            .await
    }

    /// Whether a conversation of the window can be handled now.
    async fn admit(&self, conv: &Conversation) -> Result<Admit, ImportError> {
        let voice = conv
            .participants
            .iter()
            .flat_map(|p| &p.sessions)
            .any(|s| s.media_type.as_deref().is_none_or(|m| m == "voice"));
        let recorded = conv.participants.iter().flat_map(|p| &p.sessions).any(|s| s.recording.unwrap_or(true));
        if !voice || !recorded {
            return Ok(Admit::Skip);
        }
        let max = chrono::Duration::from_std(self.cfg.max_length()).unwrap_or(chrono::Duration::MAX);
        let length = conv.conversation_end.unwrap_or_else(now) - conv.conversation_start;
        if length > max {
            self.alert(
                "Conversation failed to import",
                format!(
                    "conversation {}: longer than the maximum recording length ({} minutes); not imported",
                    conv.conversation_id, self.cfg.max_recording_length_minutes
                ),
            )
            .await?;
            return Ok(Admit::Skip);
        }
        if conv.conversation_end.is_none() {
            // Still going: the cursor waits before it.
            return Ok(Admit::Wait);
        }
        Ok(Admit::Go)
    }

    /// Imports one conversation; `None` when done (imported now or before).
    async fn one(&self, conv: &Conversation, report: &mut BatchReport) -> Result<Option<Miss>, ImportError> {
        let id = conv.conversation_id.clone();
        let parties = document::parties(conv);
        let mut status = ConversationStatus {
            conversation_id: id.clone(),
            extension: None,
            participant: parties.customer_number.clone(),
            reclife_id: None,
            newly_imported: false,
            media_downloaded: false,
            already_imported: false,
        };
        if let Err(e) = crate::model::check_name(&id) {
            return Ok(Some(Miss::Failed(format!("conversation id {id:?}: {e}"))));
        }
        // Imported before (the cursor moved back, a rerun after a crash): recognised, kept as is.
        if self.complete(&id).await? {
            status.already_imported = true;
            status.reclife_id = Some(id.clone());
            report.conversations.push(status);
            return Ok(None);
        }
        let recs = match genesys::recording_metadata(&self.client, &id).await {
            Ok(r) => r,
            Err(e) => return Ok(Some(Miss::Failed(e.to_string()))),
        };
        let recs: Vec<_> = recs.into_iter().filter(|r| r.media.as_deref().is_none_or(|m| m == "audio")).collect();
        if recs.is_empty() {
            return Ok(Some(Miss::NotReady("no recording listed for the conversation yet".into())));
        }
        let mut agent = parties.clone();
        if let Some(uid) = &parties.agent_user_id {
            match genesys::user(&self.client, self.name, uid, self.cfg.cache_lifetime()).await {
                Ok(u) => agent.agent = Some(u),
                Err(e) => return Ok(Some(Miss::Failed(format!("user {uid}: {e}")))),
            }
        }
        status.extension = agent.agent.as_ref().and_then(|a| a.extension.clone());
        let (mime, ext) = self.cfg.media_type();
        let mut stored = Vec::new();
        for r in &recs {
            let ready = match self.wait_ready(&id, &r.id).await {
                Ok(Some(x)) => x,
                Ok(None) => {
                    return Ok(Some(Miss::NotReady(format!(
                        "recording {} not available within the availability delay ({} minutes)",
                        r.id, self.cfg.availability_delay_minutes
                    ))))
                }
                Err(e) => return Ok(Some(Miss::Failed(e.to_string()))),
            };
            let media_id = format!("{id}_{}.{ext}", r.id);
            let key = Key::media(&id, &media_id).map_err(ImportError::Storage)?;
            let uri = ready.media_uri().unwrap_or_default().to_string();
            let size = match self.fetch(&uri, &key, ready.output_size_in_bytes).await {
                Ok(s) => s,
                Err(e) => return Ok(Some(Miss::Failed(format!("media of recording {}: {e}", r.id)))),
            };
            report.media_bytes += size;
            self.progress.bytes(size);
            let t = |s: &Option<String>| s.as_deref().and_then(crate::model::parse_time_str);
            stored.push(StoredMedia {
                media_id,
                recording_id: r.id.clone(),
                mime: mime.to_string(),
                size,
                start: t(&ready.start_time).unwrap_or(conv.conversation_start),
                stop: t(&ready.end_time).or(conv.conversation_end).unwrap_or(conv.conversation_start),
            });
        }
        failpoint::hit("import.after_media");
        if self.cfg.delete_on_completion {
            // Noted before the document: a run that dies after writing it still deletes.
            let rids: Vec<String> = stored.iter().map(|m| m.recording_id.clone()).collect();
            let (nm, cid) = (self.name.to_string(), id.clone());
            state::blocking(&self.ctx.catalog, move |c| state::deletion_put(c, &nm, &cid, &rids)).await?;
        }
        let doc = document::build(conv, &agent, &stored, self.name, &self.cfg.timezone);
        let rec = match Recording::parse(&doc.to_string()) {
            Ok(r) => r,
            Err(e) => return Ok(Some(Miss::Failed(format!("document: {e}")))),
        };
        state::blocking(&self.ctx.catalog, move |c| c.upsert(&rec).map(|_| ()).map_err(ImportError::Catalog)).await?;
        failpoint::hit("import.after_document");
        status.newly_imported = true;
        status.media_downloaded = true;
        status.reclife_id = Some(id.clone());
        report.conversations.push(status);
        if self.cfg.delete_on_completion {
            self.delete_pending(Some(&id)).await?;
        }
        Ok(None)
    }

    /// True when the conversation's document is in the catalog and every media file it lists
    /// is in the store at its stated size.
    async fn complete(&self, id: &str) -> Result<bool, ImportError> {
        let i = id.to_string();
        let Some(entry) = state::blocking(&self.ctx.catalog, move |c| c.get(&i).map_err(ImportError::Catalog)).await?
        else {
            return Ok(false);
        };
        for m in &entry.recording.media {
            let key = Key::media(id, &m.media_id).map_err(ImportError::Storage)?;
            match self.ctx.media.head(&key).await {
                Ok(h) if Some(h.size) == m.size => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Asks for a recording until it is ready or the availability delay has passed.
    async fn wait_ready(&self, conv: &str, rec: &str) -> Result<Option<genesys::model::Recording>, ImportError> {
        let deadline = Instant::now() + self.cfg.availability_delay();
        loop {
            if let Some(r) = genesys::recording(&self.client, conv, rec, &self.cfg.codec).await? {
                return Ok(Some(r));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tracing::debug!(
                source = self.name,
                conversation = conv,
                recording = rec,
                "recording not ready yet; waiting"
            );
            tokio::time::sleep(self.cfg.poll().min(left).max(Duration::from_millis(10))).await;
        }
    }

    /// Streams the media into the store (atomic put) and checks its size against the answer's
    /// length and the API's `outputSizeInBytes`.
    async fn fetch(&self, uri: &str, key: &Key, stated: Option<u64>) -> Result<u64, ImportError> {
        let resp = self.client.download(uri).await?;
        let length = resp.content_length();
        let stream = futures::stream::unfold(Some(resp), |r| async move {
            let mut r = r?;
            match r.chunk().await {
                Ok(Some(b)) => Some((Ok(b), Some(r))),
                Ok(None) => None,
                Err(e) => {
                    let source = std::io::Error::other(e.without_url().to_string());
                    let e = crate::storage::StorageError::Io {
                        store: "Genesys Cloud".into(),
                        op: "download",
                        key: "media".into(),
                        source,
                    };
                    Some((Err(e), None))
                }
            }
        })
        .boxed();
        let meta = self.ctx.media.put(key, stream).await.map_err(ImportError::Storage)?;
        for (what, want) in [("Content-Length", length), ("outputSizeInBytes", stated.filter(|s| *s > 0))] {
            if let Some(w) = want {
                if w != meta.size {
                    let _ = self.ctx.media.delete(key).await;
                    return Err(ImportError::Other(format!("stored {} bytes, the {what} says {w}", meta.size)));
                }
            }
        }
        let head = self.ctx.media.head(key).await.map_err(ImportError::Storage)?;
        if head.size != meta.size {
            return Err(ImportError::Other(format!(
                "{key}: {} bytes after the write, {} written",
                head.size, meta.size
            )));
        }
        Ok(meta.size)
    }

    /// Deletes in Genesys Cloud the recordings of conversations noted for deletion (all, or
    /// `only` one) whose document and media are stored and checked; each noted conversation is
    /// forgotten once every recording of it is deleted. A failure raises "Conversation failed
    /// to delete from Genesys Cloud" and stays noted for the next run.
    pub async fn delete_pending(&self, only: Option<&str>) -> Result<(), ImportError> {
        let nm = self.name.to_string();
        let pending = state::blocking(&self.ctx.catalog, move |c| state::deletions(c, &nm)).await?;
        for (cid, rids) in pending {
            if only.is_some_and(|o| o != cid) || !self.complete(&cid).await? {
                continue;
            }
            let mut left = Vec::new();
            for rid in &rids {
                match genesys::delete_recording(&self.client, &cid, rid, now()).await {
                    Ok(()) => failpoint::hit("import.after_delete"),
                    Err(e) => {
                        self.alert(
                            "Conversation failed to delete from Genesys Cloud",
                            format!("conversation {cid} recording {rid}: {e}"),
                        )
                        .await?;
                        left.push(rid.clone());
                    }
                }
            }
            let (nm, c2) = (self.name.to_string(), cid.clone());
            state::blocking(&self.ctx.catalog, move |c| {
                if left.is_empty() {
                    state::deletion_done(c, &nm, &c2)
                } else {
                    state::deletion_put(c, &nm, &c2, &left)
                }
            })
            .await?;
        }
        Ok(())
    }
}

enum Admit {
    Go,
    Skip,
    Wait,
}
