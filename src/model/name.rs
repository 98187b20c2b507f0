//! Names that come from metadata (recording ids, mediaIds, stored paths) and end up in
//! file names, object keys or archive entries. Every such name passes through here, so
//! that nothing built from metadata can escape its root.

use crate::model::ModelError;

/// Checks that `s` is usable as a single path component: not empty, not `.` or `..`, no
/// separator (`/` or `\`), no NUL or other control character, at most 255 bytes.
pub fn check_name(s: &str) -> Result<&str, ModelError> {
    let bad = |why: &'static str| ModelError::UnsafeName { name: s.to_string(), why };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s == "." || s == ".." {
        return Err(bad("a relative path component"));
    }
    if s.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    if s.contains('/') || s.contains('\\') {
        return Err(bad("contains a path separator"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(bad("contains a control character"));
    }
    Ok(s)
}

/// A name as one URI path segment, percent-encoded: every byte but ASCII letters, digits and
/// `*-._` (ids may hold `#`, `?`, `%`, `+`, spaces and any Unicode). The API's URIs and the
/// downloader's play paths both use it.
pub fn uri_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Turns a stored media path (`originalMediaDescriptor.path`, as used by GIR's
/// `useFullPathInMediaFileBackup`) into a safe relative path: the leading `/` is dropped, as
/// GIR does, empty segments are skipped, and every remaining segment must pass [`check_name`].
pub fn relative_path(path: &str) -> Result<String, ModelError> {
    if path.contains('\\') || path.contains('\0') {
        return Err(ModelError::UnsafeName { name: path.to_string(), why: "contains `\\` or NUL" });
    }
    let mut parts = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        check_name(seg).map_err(|_| ModelError::UnsafeName {
            name: path.to_string(),
            why: "has an unsafe segment (`..`, `.` or a control character)",
        })?;
        parts.push(seg);
    }
    if parts.is_empty() {
        return Err(ModelError::UnsafeName { name: path.to_string(), why: "empty" });
    }
    Ok(parts.join("/"))
}

/// The name GIR gives a media file in a backup with `useFullPathInMediaFileBackup`: the stored
/// path without its leading `/`, and a path that is a URI (`http://host/rec/x.mp3`) kept as
/// written, its `scheme://` included (GIR: "the filename retains the path value—for example,
/// `http://...`"), where [`relative_path`] would give `http:/host/rec/x.mp3`. Every segment
/// after the scheme passes [`check_name`]. On a file system the two forms are the same path
/// (`//` is one separator); in a zip entry or an object key they differ.
pub fn archive_path(path: &str) -> Result<String, ModelError> {
    let rel = relative_path(path)?;
    let Some((scheme, _)) = path.split_once("://") else { return Ok(rel) };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !is_scheme || !rel.starts_with(&format!("{scheme}:/")) {
        return Ok(rel);
    }
    Ok(format!("{scheme}:/{}", &rel[scheme.len() + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b", "/etc", "x\n"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["029UDMMJ90AOL8151CGQHG5AES000003", "a.mp3", "x..y", "http:"] {
            assert!(check_name(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("/prefixA/x.mp3").unwrap(), "prefixA/x.mp3");
        assert_eq!(relative_path("http://host/rec/x.mp3").unwrap(), "http:/host/rec/x.mp3");
        assert_eq!(archive_path("http://host/rec/x.mp3").unwrap(), "http://host/rec/x.mp3");
        assert_eq!(archive_path("/prefixA/x.mp3").unwrap(), "prefixA/x.mp3");
        assert_eq!(archive_path("/a/http://b/x").unwrap(), "a/http:/b/x", "only a leading scheme");
        for bad in ["http://host/../x", "http://host/a\\b"] {
            assert!(archive_path(bad).is_err(), "{bad:?} accepted");
        }
        for bad in ["/a/../../etc/passwd", "..", "a/./b", "", "/", "a\\b"] {
            assert!(relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
