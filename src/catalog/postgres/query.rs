//! A [`Query`] as a PostgreSQL WHERE clause with its parameters.
//!
//! In: a query. Out: SQL over `recordings r` (documents reached through `docs d` in
//! sub-queries) and owned parameters `$1…`. The filters mean exactly what SQLite's mean; RWS
//! `*` patterns become LIKE patterns with every other LIKE metacharacter escaped.

use super::{kind_code, ms, TAG_AGENT, TAG_ATTACHED, TAG_LABEL, TAG_PARTITION};
use crate::catalog::Query;
use postgres::types::ToSql;

/// One bound parameter.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// Builds the clause; parameters are numbered from 1.
#[derive(Default)]
pub struct Filter {
    pub params: Vec<Param>,
}

impl Filter {
    pub fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
    }
}

/// An RWS pattern (`*` is the only wildcard) as a LIKE pattern with `\` as its escape.
pub fn rws_like(pat: &str) -> String {
    let mut out = String::with_capacity(pat.len());
    for c in pat.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The WHERE clause of `q` (without slice and cursor bounds), adding its parameters to `f`.
pub fn filter_sql(q: &Query, f: &mut Filter) -> String {
    let mut w: Vec<String> = Vec::new();
    let tag = |t: i16, cond: String| {
        format!("EXISTS (SELECT 1 FROM tags t WHERE t.tag = {t} AND t.rec_id = r.id AND {cond})")
    };
    if let Some(k) = q.kind {
        w.push(format!("r.kind = {}", f.bind(kind_code(k))));
    }
    if let Some(t) = q.start_from {
        w.push(format!("r.start_ms >= {}", f.bind(ms(t))));
    }
    if let Some(t) = q.start_to {
        w.push(format!("r.start_ms < {}", f.bind(ms(t))));
    }
    if let Some(t) = q.stop_from {
        w.push(format!("r.stop_ms >= {}", f.bind(ms(t))));
    }
    if let Some(t) = q.stop_to {
        w.push(format!("r.stop_ms < {}", f.bind(ms(t))));
    }
    if let Some(r) = &q.region {
        w.push(format!("r.region = {}", f.bind(r.clone())));
    }
    if let Some(c) = &q.call_type {
        w.push(format!("r.call_type_lc = {}", f.bind(c.to_lowercase())));
    }
    for l in &q.labels_include {
        let b = f.bind(l.clone());
        w.push(tag(TAG_LABEL, format!("t.k = {b} AND t.v = ''")));
    }
    for l in &q.labels_exclude {
        let b = f.bind(l.clone());
        w.push(format!("NOT {}", tag(TAG_LABEL, format!("t.k = {b} AND t.v = ''"))));
    }
    for (k, v) in &q.attached {
        let (bk, bv) = (f.bind(k.clone()), f.bind(v.clone()));
        w.push(tag(TAG_ATTACHED, format!("t.k = {bk} AND t.v = {bv}")));
    }
    for (k, v) in &q.attached_not {
        let (bk, bv) = (f.bind(k.clone()), f.bind(v.clone()));
        w.push(format!("NOT {}", tag(TAG_ATTACHED, format!("t.k = {bk} AND t.v = {bv}"))));
    }
    if let Some(u) = &q.agent_user {
        let b = f.bind(u.clone());
        w.push(tag(TAG_AGENT, format!("t.k = {b} AND t.v = ''")));
    }
    if !q.partitions.is_empty() {
        let b = f.bind(q.partitions.clone());
        w.push(tag(TAG_PARTITION, format!("t.k = ANY({b}) AND t.v = ''")));
    }
    if let Some(h) = q.held {
        let cond = super::HELD;
        w.push(if h { cond.to_string() } else { format!("NOT {cond}") });
    }
    if let Some(h) = q.has_screen {
        let cond = "EXISTS (SELECT 1 FROM recordings s WHERE s.call_recording_id = r.id)";
        w.push(if h { cond.to_string() } else { format!("NOT {cond}") });
    }
    if let Some(c) = &q.call_recording_id {
        w.push(format!("r.call_recording_id = {}", f.bind(c.clone())));
    }
    // Phone numbers live only in the document: these two read its JSONB (a scan of the
    // matching time range, not an index lookup), punctuation and spaces removed.
    for (field, pat) in [("callerPhoneNumber", &q.caller_phone), ("dialedPhoneNumber", &q.dialed_phone)] {
        if let Some(pat) = pat {
            let b = f.bind(rws_like(pat));
            w.push(format!(
                "EXISTS (SELECT 1 FROM docs d WHERE d.id = r.id AND \
                 translate(coalesce(d.doc ->> '{field}', ''), '+- ()./', '') COLLATE \"C\" LIKE {b})"
            ));
        }
    }
    if !q.attached_value_any.is_empty() {
        let ors: Vec<String> =
            q.attached_value_any.iter().map(|v| format!("t.v LIKE {}", f.bind(rws_like(v)))).collect();
        w.push(tag(TAG_ATTACHED, format!("({})", ors.join(" OR "))));
    }
    for group in &q.agent_user_any {
        let ors: Vec<String> =
            group.iter().map(|u| format!("lower(t.k) LIKE {}", f.bind(rws_like(&u.to_ascii_lowercase())))).collect();
        if !ors.is_empty() {
            w.push(tag(TAG_AGENT, format!("({})", ors.join(" OR "))));
        }
    }
    if w.is_empty() {
        "TRUE".to_string()
    } else {
        w.join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::rws_like;

    #[test]
    fn rws_patterns_escape_like_metacharacters() {
        assert_eq!(rws_like("12*"), "12%");
        assert_eq!(rws_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
