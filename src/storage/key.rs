//! Object keys: relative paths of checked segments.

use super::StorageError;
use crate::model::check_name;

/// A relative key such as `<recording id>/<mediaId>`. Every segment passed
/// [`check_name`], so no key can climb out of a store's root or an output folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Builds a key from single names (ids, mediaIds), each checked.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Key, StorageError> {
        if names.is_empty() {
            return Err(StorageError::InvalidKey { key: String::new(), why: "empty".into() });
        }
        let mut out = String::new();
        for n in names {
            let n = n.as_ref();
            check_name(n).map_err(|e| StorageError::InvalidKey { key: n.to_string(), why: e.to_string() })?;
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(n);
        }
        Ok(Key(out))
    }

    /// Parses a `/`-separated relative key, checking every segment.
    pub fn parse(s: &str) -> Result<Key, StorageError> {
        let segs: Vec<&str> = s.split('/').collect();
        Self::from_names(&segs).map_err(|e| match e {
            StorageError::InvalidKey { why, .. } => StorageError::InvalidKey { key: s.to_string(), why },
            e => e,
        })
    }

    /// The media key of a recording's media file.
    pub fn media(recording_id: &str, media_id: &str) -> Result<Key, StorageError> {
        Self::from_names(&[recording_id, media_id])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// `self` followed by `other`.
    pub fn join(&self, other: &Key) -> Key {
        Key(format!("{}/{}", self.0, other.0))
    }

    /// True if `self` is `prefix` or lies beneath it.
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0 == prefix.0 || self.0.starts_with(&format!("{}/", prefix.0))
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_escape() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a\0"] {
            assert!(Key::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Key::media("rec", "../x").is_err());
        assert!(Key::media("rec/..", "x").is_err());
        let k = Key::media("rec1", "m.mp3").unwrap();
        assert_eq!(k.as_str(), "rec1/m.mp3");
        assert!(k.starts_with(&Key::parse("rec1").unwrap()));
        assert!(!k.starts_with(&Key::parse("rec").unwrap()));
    }
}
