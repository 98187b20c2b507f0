//! The resumable keyset cursor of a scroll.

use super::CatalogError;

/// Where a scroll stands: the time slice it is in, and the last `(startTime, id)` it
/// returned. It round-trips through [`Cursor::token`] so a scroll can be resumed by
/// another process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Start of the current slice (epoch ms); `None` before the first page.
    pub slice_start_ms: Option<i64>,
    /// The last row returned: `(start ms, id)`.
    pub after: Option<(i64, String)>,
}

impl Cursor {
    pub fn start() -> Cursor {
        Cursor::default()
    }

    /// A printable token: `v1.<slice>.<start ms>.<id>` (empty parts where unset).
    pub fn token(&self) -> String {
        let s = self.slice_start_ms.map(|v| v.to_string()).unwrap_or_default();
        match &self.after {
            Some((t, id)) => format!("v1.{s}.{t}.{id}"),
            None => format!("v1.{s}.."),
        }
    }

    pub fn from_token(tok: &str) -> Result<Cursor, CatalogError> {
        let bad = || CatalogError::BadCursor(tok.to_string());
        let rest = tok.strip_prefix("v1.").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '.');
        let slice = parts.next().ok_or_else(bad)?;
        let t = parts.next().ok_or_else(bad)?;
        let id = parts.next().ok_or_else(bad)?;
        let slice_start_ms = if slice.is_empty() { None } else { Some(slice.parse().map_err(|_| bad())?) };
        let after = if t.is_empty() {
            if !id.is_empty() {
                return Err(bad());
            }
            None
        } else {
            Some((t.parse().map_err(|_| bad())?, id.to_string()))
        };
        Ok(Cursor { slice_start_ms, after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        for c in [
            Cursor::start(),
            Cursor { slice_start_ms: Some(-3600000), after: None },
            Cursor { slice_start_ms: Some(1435104000000), after: Some((1435177111000, "a.b.c".into())) },
        ] {
            assert_eq!(Cursor::from_token(&c.token()).unwrap(), c);
        }
        for bad in ["", "v2.1..", "v1.x..", "v1.1.2", "v1.1..id"] {
            assert!(Cursor::from_token(bad).is_err(), "{bad}");
        }
    }
}
