//! Holds: who placed one, when and why, and every hold placed or released on a recording.
//!
//! In: requests to place or release a hold (a reason, who, when), and holds that a metadata
//! document carries (a backup archive's `reclifeHold`, the API's `hold`). Out: the recording's
//! [`HoldState`]: the hold in force and its history. Both backends store the state as columns
//! of the recording and change it through [`Catalog::edit_hold`], one transaction each; the
//! rules of what a request does live here, once:
//! - placing a hold on a recording already held keeps the hold in force (its reason, time and
//!   author) and appends the request to the history ([`HoldOutcome::AlreadyHeld`] says so);
//! - releasing ends the hold in force and appends a `released` event;
//! - a hold carried by metadata (ingest, restore) is applied when none is in force (unless this
//!   catalog released a hold after the carried one was placed: that release stands), and never
//!   releases one; its history is merged into the recording's.
//!
//! In a document, a hold is one JSON object ([`to_json`]): `{"reason", "at", "by", "history":
//! [{"event": "placed"|"released", "at", "by", "reason"}]}`. Backups write it as the top-level
//! field [`ARCHIVE_FIELD`] (`reclifeHold`), which GIR's readers ignore, so an archive's file list
//! stays exactly GIR's; the API serves it as `hold` ([`API_FIELD`]) while a hold is in force,
//! and only the history as `holdHistory` ([`API_HISTORY_FIELD`]) when none is.

use super::{Catalog, CatalogError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The top-level field of an archived `meta-data.json` that carries the hold.
pub const ARCHIVE_FIELD: &str = "reclifeHold";
/// The field of an API recording document that carries the hold in force (with its history).
pub const API_FIELD: &str = "hold";
/// The field of an API recording document that carries the history of a recording not held.
pub const API_HISTORY_FIELD: &str = "holdHistory";

/// A hold set through reclife (a legal hold), as opposed to `nonDelete` in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reason: String,
    pub at: DateTime<Utc>,
    /// Who placed it (an API user, an OS user); `None` for holds placed before reclife kept it.
    pub by: Option<String>,
}

/// What happened to a recording's hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldAction {
    Placed,
    Released,
}

/// One entry of a recording's hold history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldEvent {
    pub event: HoldAction,
    #[serde(with = "millis")]
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The reason of the hold placed or released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Times as RFC 3339 with milliseconds, as the catalog keeps them.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// A recording's hold in force and its history, oldest event first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldState {
    pub hold: Option<Hold>,
    pub history: Vec<HoldEvent>,
}

/// What [`Catalog::hold`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// The recording is held now, by this request.
    Placed,
    /// It was held already: that hold stays in force, and this request is in its history.
    AlreadyHeld(Hold),
}

/// The most hold events a recording keeps (the newest): a history carried by hostile or
/// corrupt metadata cannot grow a row without bound.
pub const MAX_HISTORY: usize = 1000;

/// Keeps the newest [`MAX_HISTORY`] events, oldest first.
fn trim(history: &mut Vec<HoldEvent>) {
    if history.len() > MAX_HISTORY {
        history.drain(..history.len() - MAX_HISTORY);
    }
}

/// The history as stored (a JSON array); empty when there is none.
pub(crate) fn history_text(history: &[HoldEvent]) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    Some(serde_json::to_string(history).expect("hold events serialise"))
}

/// The history from its stored text; unreadable text reads as no history.
pub(crate) fn history_of(text: Option<&str>) -> Vec<HoldEvent> {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

fn check_text(what: &str, v: &str) -> Result<(), CatalogError> {
    if v.trim().is_empty() {
        return Err(CatalogError::Invalid(format!("hold: {what} is empty")));
    }
    if v.chars().count() > 1000 || v.chars().any(char::is_control) {
        return Err(CatalogError::Invalid(format!("hold: {what} must be one line of at most 1000 characters")));
    }
    Ok(())
}

/// Places a hold (see [`Catalog::hold`]).
pub(crate) fn place<C: Catalog + ?Sized>(
    c: &C,
    id: &str,
    reason: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<HoldOutcome, CatalogError> {
    check_text("reason", reason)?;
    check_text("who", by)?;
    let event = HoldEvent { event: HoldAction::Placed, at, by: Some(by.to_string()), reason: Some(reason.to_string()) };
    let mut before = None;
    c.edit_hold(id, &mut |s| {
        before = s.hold.clone();
        let mut next = s.clone();
        next.history.push(event.clone());
        trim(&mut next.history);
        if next.hold.is_none() {
            next.hold = Some(Hold { reason: reason.to_string(), at, by: Some(by.to_string()) });
        }
        Some(next)
    })?;
    Ok(match before {
        Some(h) => HoldOutcome::AlreadyHeld(h),
        None => HoldOutcome::Placed,
    })
}

/// Releases the hold in force (see [`Catalog::unhold`]).
pub(crate) fn release<C: Catalog + ?Sized>(
    c: &C,
    id: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Option<Hold>, CatalogError> {
    check_text("who", by)?;
    let mut released = None;
    c.edit_hold(id, &mut |s| {
        let h = s.hold.clone()?;
        released = Some(h.clone());
        let mut next = s.clone();
        next.hold = None;
        next.history.push(HoldEvent {
            event: HoldAction::Released,
            at,
            by: Some(by.to_string()),
            reason: Some(h.reason),
        });
        trim(&mut next.history);
        Some(next)
    })?;
    Ok(released)
}

/// Applies a hold that metadata carries (see [`Catalog::apply_carried_hold`]).
pub(crate) fn apply_carried<C: Catalog + ?Sized>(
    c: &C,
    id: &str,
    carried: &HoldState,
) -> Result<HoldState, CatalogError> {
    c.edit_hold(id, &mut |s| {
        let mut next = s.clone();
        if let (None, Some(h)) = (&next.hold, &carried.hold) {
            // Released here after it was placed: the release stands.
            let released = s.history.iter().any(|e| e.event == HoldAction::Released && e.at >= h.at);
            if !released {
                next.hold = Some(h.clone());
            }
        }
        // The newest events the metadata carries, merged once each (sorted, then deduplicated).
        let skip = carried.history.len().saturating_sub(MAX_HISTORY);
        next.history.extend(carried.history[skip..].iter().cloned());
        let key = |e: &HoldEvent| (e.at, e.event == HoldAction::Released, e.by.clone(), e.reason.clone());
        next.history.sort_by_key(key);
        next.history.dedup();
        trim(&mut next.history);
        (next != *s).then_some(next)
    })
}

/// A hold state as one JSON object (the archive's `reclifeHold`, the API's `hold`); `None`
/// when there is neither a hold nor a history.
pub fn to_json(s: &HoldState) -> Option<Value> {
    if s.hold.is_none() && s.history.is_empty() {
        return None;
    }
    let mut o = serde_json::Map::new();
    if let Some(h) = &s.hold {
        o.insert("reason".into(), Value::String(h.reason.clone()));
        o.insert("at".into(), Value::String(h.at.to_rfc3339_opts(SecondsFormat::Millis, true)));
        if let Some(b) = &h.by {
            o.insert("by".into(), Value::String(b.clone()));
        }
    }
    if !s.history.is_empty() {
        o.insert("history".into(), serde_json::to_value(&s.history).expect("hold events serialise"));
    }
    Some(Value::Object(o))
}

/// A hold state from its JSON object; what is not a hold is an error naming the field.
pub fn from_json(v: &Value) -> Result<HoldState, String> {
    let o = v.as_object().ok_or("not an object")?;
    let text = |k: &str| o.get(k).and_then(Value::as_str);
    let hold = match text("reason") {
        None if o.contains_key("reason") => return Err("reason is not a string".into()),
        None => None,
        Some(reason) => {
            let at = text("at").ok_or("a hold without its time (at)")?;
            let at = DateTime::parse_from_rfc3339(at).map_err(|e| format!("at {at:?}: {e}"))?.with_timezone(&Utc);
            Some(Hold { reason: reason.to_string(), at, by: text("by").map(str::to_string) })
        }
    };
    let history = match o.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(h) => serde_json::from_value(h.clone()).map_err(|e| format!("history: {e}"))?,
    };
    Ok(HoldState { hold, history })
}

/// `doc` (a JSON object's text) with the hold state added as the top-level [`ARCHIVE_FIELD`],
/// every byte of the document kept as it is: what a backup archives and `recordings show`
/// prints. Unchanged when there is nothing to carry.
pub fn with_archive_field(doc: &str, s: &HoldState) -> String {
    let Some(v) = to_json(s) else { return doc.to_string() };
    let body = doc.trim_end();
    let Some(inner) = body.strip_suffix('}') else { return doc.to_string() };
    let empty = inner.trim_end().ends_with('{');
    let field = serde_json::to_string(ARCHIVE_FIELD).expect("a string serialises");
    format!("{inner}{}{field}:{v}}}", if empty { "" } else { "," })
}

/// Takes the hold a metadata document carries out of it: returns the document without it (the
/// exact text a backup archived, when it is one of ours) and the hold state, if any: an
/// archive's `reclifeHold`, else the API's `hold` and `holdHistory`. A `reclifeHold` that is not
/// a hold is an error naming it; a `hold` that is not one of ours stays in the document (the
/// word is common).
pub fn take_carried(doc: &str) -> Result<(String, Option<HoldState>), String> {
    let fields = [ARCHIVE_FIELD, API_FIELD, API_HISTORY_FIELD];
    if !fields.iter().any(|f| doc.contains(&format!("\"{f}\""))) {
        return Ok((doc.to_string(), None));
    }
    let mut v: Value = match serde_json::from_str(doc) {
        Ok(v) => v,
        // Not JSON: the parser that follows says why.
        Err(_) => return Ok((doc.to_string(), None)),
    };
    // An API document may come wrapped (`{"recording": {...}}`), as ingest accepts it.
    let wrapped = v.get("recording").is_some_and(Value::is_object) && v.get("id").is_none();
    let Some(o) = (if wrapped { v.get_mut("recording") } else { Some(&mut v) }).and_then(Value::as_object_mut) else {
        return Ok((doc.to_string(), None));
    };
    let mut state: Option<HoldState> = None;
    let mut taken = Vec::new();
    if let Some(a) = o.get(ARCHIVE_FIELD) {
        state = Some(from_json(a).map_err(|e| format!("{ARCHIVE_FIELD}: {e}"))?);
        taken.push(ARCHIVE_FIELD);
    } else {
        if let Some(Ok(s)) = o.get(API_FIELD).map(from_json) {
            state = Some(s);
            taken.push(API_FIELD);
        }
        if let Some(Ok(h)) = o.get(API_HISTORY_FIELD).map(|h| serde_json::from_value::<Vec<HoldEvent>>(h.clone())) {
            state.get_or_insert_with(HoldState::default).history.extend(h);
            taken.push(API_HISTORY_FIELD);
        }
    }
    if taken.is_empty() {
        return Ok((doc.to_string(), None));
    }
    // Ours: the archived document, then `,"reclifeHold":{…}}`. Cutting that suffix gives the
    // stored document back byte for byte (so a restore over an unchanged recording is unchanged).
    if !wrapped && taken == [ARCHIVE_FIELD] && !o.contains_key(API_FIELD) {
        let suffix =
            format!(",{}:{}}}", serde_json::to_string(ARCHIVE_FIELD).expect("a string serialises"), o[ARCHIVE_FIELD]);
        if let Some(head) = doc.trim_end().strip_suffix(&suffix) {
            return Ok((format!("{head}}}"), state));
        }
    }
    for f in taken {
        o.remove(f);
    }
    Ok((serde_json::to_string(&v).expect("a value serialises"), state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn state() -> HoldState {
        let at = Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0).unwrap();
        HoldState {
            hold: Some(Hold { reason: "case 7".into(), at, by: Some("alice".into()) }),
            history: vec![HoldEvent {
                event: HoldAction::Placed,
                at,
                by: Some("alice".into()),
                reason: Some("case 7".into()),
            }],
        }
    }

    #[test]
    fn an_archived_hold_comes_off_byte_for_byte() {
        let doc = "{\n  \"id\": \"A\",\n  \"x\": [1, 2]\n}\n";
        let archived = with_archive_field(doc, &state());
        let v: Value = serde_json::from_str(&archived).unwrap();
        assert_eq!(v["reclifeHold"]["by"], "alice");
        assert_eq!(v["reclifeHold"]["history"][0]["event"], "placed");
        let (back, carried) = take_carried(&archived).unwrap();
        assert_eq!(back, doc.trim_end());
        assert_eq!(carried, Some(state()));
        assert_eq!(with_archive_field(doc, &HoldState::default()), doc, "nothing to carry, nothing added");
    }

    #[test]
    fn the_apis_hold_is_read_and_removed() {
        let doc = format!(r#"{{"recording":{{"id":"A","hold":{},"y":1}}}}"#, to_json(&state()).unwrap());
        let (back, carried) = take_carried(&doc).unwrap();
        assert_eq!(carried, Some(state()));
        assert_eq!(back, r#"{"recording":{"id":"A","y":1}}"#);
        let (same, none) = take_carried(r#"{"id":"A","holder":"x"}"#).unwrap();
        assert_eq!((same.as_str(), none), (r#"{"id":"A","holder":"x"}"#, None));
        assert!(take_carried(r#"{"id":"A","reclifeHold":{"reason":"r"}}"#).unwrap_err().contains("reclifeHold"));
        let released = HoldState { hold: None, history: state().history };
        let doc = format!(r#"{{"id":"A","holdHistory":{}}}"#, serde_json::to_string(&released.history).unwrap());
        assert_eq!(take_carried(&doc).unwrap(), (r#"{"id":"A"}"#.to_string(), Some(released)));
        let foreign = r#"{"id":"A","hold":"yes"}"#;
        assert_eq!(take_carried(foreign).unwrap(), (foreign.to_string(), None), "a foreign `hold` stays");
    }
}

#[cfg(test)]
mod bounds {
    use super::*;
    use crate::catalog::SqliteCatalog;
    use chrono::TimeZone;

    /// A history carried by hostile metadata (many thousands of events) is merged in one pass
    /// and kept to the newest [`MAX_HISTORY`] events.
    #[test]
    fn a_carried_history_is_bounded() {
        let c = SqliteCatalog::in_memory().unwrap();
        let doc = r#"{"id":"H1","startTime":"2024-01-01T00:00:00.000+0000","stopTime":"2024-01-01T00:01:00.000+0000","mediaFiles":[]}"#;
        c.upsert(&crate::model::Recording::parse(doc).unwrap()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
        let history: Vec<HoldEvent> = (0..20_000)
            .map(|i| HoldEvent {
                event: HoldAction::Placed,
                at: t0 + chrono::Duration::seconds(i),
                by: Some("x".into()),
                reason: Some(format!("r{i}")),
            })
            .collect();
        let newest = history.last().cloned().unwrap();
        let carried = HoldState { hold: None, history };
        let state = c.apply_carried_hold("H1", &carried).unwrap();
        assert_eq!(state.history.len(), MAX_HISTORY);
        assert_eq!(state.history.last(), Some(&newest));
        // Applying it again changes nothing (each event kept once).
        assert_eq!(c.apply_carried_hold("H1", &carried).unwrap().history.len(), MAX_HISTORY);
    }
}
