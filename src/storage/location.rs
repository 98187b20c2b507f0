//! Location URIs, parsed in this one place: `file:///…`, `s3://bucket/prefix`,
//! `webdav://…` and `webdavs://…`.

use super::StorageError;
use std::path::PathBuf;

/// Where a store or an archive lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    S3 { bucket: String, prefix: String },
    WebDav { url: url::Url },
}

impl Location {
    /// Parses a location. A bare absolute path is taken as `file://`. Credentials in the
    /// URI are refused: they come from the environment or files.
    pub fn parse(uri: &str) -> Result<Location, StorageError> {
        let bad = |why: &str| StorageError::InvalidLocation { uri: redact(uri), why: why.to_string() };
        if uri.starts_with('/') {
            return Ok(Location::File(PathBuf::from(uri)));
        }
        let u = url::Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad("credentials do not belong in a location; use the environment or a file"));
        }
        match u.scheme() {
            "file" => {
                if u.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                    return Err(bad("file:// locations must be local (file:///path)"));
                }
                let p = u.to_file_path().map_err(|_| bad("not an absolute path"))?;
                Ok(Location::File(p))
            }
            "s3" => {
                let bucket = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no bucket"))?;
                let prefix = u.path().trim_matches('/').to_string();
                Ok(Location::S3 { bucket: bucket.to_string(), prefix })
            }
            "webdav" | "webdavs" => {
                let scheme = if u.scheme() == "webdavs" { "https" } else { "http" };
                let rest = &uri[u.scheme().len()..];
                let url = url::Url::parse(&format!("{scheme}{rest}")).map_err(|e| bad(&e.to_string()))?;
                Ok(Location::WebDav { url })
            }
            s => Err(bad(&format!("unknown scheme `{s}` (expected file, s3, webdav or webdavs)"))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "file://{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::WebDav { url } => {
                let s = url.as_str();
                match url.scheme() {
                    "https" => write!(f, "webdavs{}", &s[5..]),
                    _ => write!(f, "webdav{}", &s[4..]),
                }
            }
        }
    }
}

/// Drops any user info from a URI before it goes into an error.
fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(Location::parse("file:///var/b").unwrap(), Location::File("/var/b".into()));
        assert_eq!(Location::parse("/var/b").unwrap(), Location::File("/var/b".into()));
        assert_eq!(
            Location::parse("s3://bkt/a/b/").unwrap(),
            Location::S3 { bucket: "bkt".into(), prefix: "a/b".into() }
        );
        let w = Location::parse("webdavs://dav.example/recordings").unwrap();
        assert_eq!(w.to_string(), "webdavs://dav.example/recordings");
        assert!(Location::parse("ftp://x").is_err());
        assert!(Location::parse("file://remote/x").is_err());
        assert!(Location::parse("relative/path").is_err());
    }

    #[test]
    fn never_echoes_secrets() {
        let e = Location::parse("s3://AKIA:SECRETKEY@bucket/p").unwrap_err().to_string();
        assert!(!e.contains("SECRETKEY"), "{e}");
        assert!(!e.contains("AKIA"), "{e}");
    }
}
