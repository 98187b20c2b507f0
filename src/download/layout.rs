//! Where a recording lands in the target folder, and which instance downloads it.
//!
//! `<targetDir>/<recordingFolderFormat of the start time, UTC>/<recording id>/` holds the
//! metadata as `meta-data.json` (the GIR backup name, so `reclife ingest <targetDir>` reads the
//! folder back) and each media file under its stored name: the last segment of its S3 object
//! path (`mediaDescriptor.path` or `key`), else its `mediaId`. Every name built from metadata
//! passes [`check_name`], so nothing escapes the target folder.
//!
//! The instance split: a recording belongs to instance `fnv1a_64(id) % totalRcbsInstances`
//! (the muxer's shard function, fixed by definition, so every machine agrees).

use crate::model::check_name;
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::path::{Path, PathBuf};

pub const DEFAULT_FOLDER_FORMAT: &str = "yyyy/MM/dd/HH";
/// The metadata file in every recording folder.
pub const META_FILE: &str = "meta-data.json";
/// The sub-folder of a call's folder holding its screen recordings (GIR's backup layout).
pub const SCREEN_DIR: &str = crate::archive::SCREEN_DIR;
/// Suffix of a media file being downloaded.
pub const PART_SUFFIX: &str = ".part";

/// One piece of a folder format: a date field with its width, or literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Field(char, usize),
    Text(String),
    Sep,
}

/// A parsed `recordingFolderFormat`: Java `SimpleDateFormat` letters (`yyyy yy MM M dd d HH H
/// mm m ss s DDD`), `'quoted text'`, other punctuation as is, `/` between folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderFormat(Vec<Piece>);

impl FolderFormat {
    pub fn parse(f: &str) -> Result<FolderFormat, String> {
        let mut out = Vec::new();
        let chars: Vec<char> = f.trim().trim_matches('/').chars().collect();
        if chars.is_empty() {
            return Ok(FolderFormat(out));
        }
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '/' {
                if matches!(out.last(), Some(Piece::Sep)) {
                    return Err(format!("{f:?}: empty folder name (//)"));
                }
                out.push(Piece::Sep);
                i += 1;
            } else if c == '\'' {
                let end = chars[i + 1..].iter().position(|&x| x == '\'').ok_or(format!("{f:?}: unclosed quote"))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                if text.contains('/') || text.contains('\\') {
                    return Err(format!("{f:?}: quoted text may not hold a separator"));
                }
                out.push(Piece::Text(if text.is_empty() { "'".into() } else { text }));
                i += end + 2;
            } else if c.is_ascii_alphabetic() {
                let n = chars[i..].iter().take_while(|&&x| x == c).count();
                if !"yMdHmsD".contains(c) || (c == 'M' && n > 2) {
                    return Err(format!(
                        "{f:?}: unsupported letter {}; use yyyy, yy, MM, M, dd, d, DDD, HH, H, mm, m, ss, s or 'text'",
                        c.to_string().repeat(n)
                    ));
                }
                out.push(Piece::Field(c, n));
                i += n;
            } else if c == '\\' || c.is_control() {
                return Err(format!("{f:?}: use / between folders; {c:?} is not allowed"));
            } else {
                out.push(Piece::Text(c.to_string()));
                i += 1;
            }
        }
        let me = FolderFormat(out);
        // Every folder name the format can make must be a safe name.
        for seg in me.segments(DateTime::<Utc>::UNIX_EPOCH) {
            check_name(&seg).map_err(|e| format!("{f:?}: {e}"))?;
        }
        Ok(me)
    }

    /// The folder names for an instant (UTC).
    pub fn segments(&self, t: DateTime<Utc>) -> Vec<String> {
        let mut segs = vec![String::new()];
        for p in &self.0 {
            let cur = segs.last_mut().expect("never empty");
            match p {
                Piece::Sep => segs.push(String::new()),
                Piece::Text(s) => cur.push_str(s),
                Piece::Field(c, n) => {
                    let v: i64 = match c {
                        'y' if *n == 2 => i64::from(t.year().rem_euclid(100)),
                        'y' => i64::from(t.year()),
                        'M' => i64::from(t.month()),
                        'd' => i64::from(t.day()),
                        'D' => i64::from(t.ordinal()),
                        'H' => i64::from(t.hour()),
                        'm' => i64::from(t.minute()),
                        's' => i64::from(t.second()),
                        _ => 0,
                    };
                    cur.push_str(&format!("{v:0width$}", width = *n));
                }
            }
        }
        segs.retain(|s| !s.is_empty());
        segs
    }

    /// `<root>/<folders>/<recording id>`; the id must be a safe name.
    pub fn recording_dir(&self, root: &Path, start: DateTime<Utc>, id: &str) -> Result<PathBuf, String> {
        check_name(id).map_err(|e| e.to_string())?;
        let mut p = root.to_path_buf();
        for s in self.segments(start) {
            p.push(s);
        }
        p.push(id);
        Ok(p)
    }
}

/// The instance (`0..total`) that downloads recording `id`.
pub fn instance_of(id: &str, total: u32) -> u32 {
    crate::muxer::shard::shard_of(id, total)
}

/// The local file name of a media file: the last segment of its stored path, else its mediaId.
/// Refused when unsafe, or when it would clash with the metadata file or a `.part` file.
pub fn media_name(stored_path: Option<&str>, media_id: &str) -> Result<String, String> {
    let from_path = stored_path.and_then(|p| p.rsplit('/').find(|s| !s.is_empty()));
    let name = from_path.unwrap_or(media_id);
    check_name(name).map_err(|e| e.to_string())?;
    if name == META_FILE || name.ends_with(PART_SUFFIX) || name.starts_with('.') {
        return Err(format!("media name {name:?} is reserved (metadata, .part or hidden files)"));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_formats() {
        let t = DateTime::parse_from_rfc3339("2018-02-12T19:05:09Z").unwrap().to_utc();
        let f = FolderFormat::parse(DEFAULT_FOLDER_FORMAT).unwrap();
        assert_eq!(f.segments(t), ["2018", "02", "12", "19"]);
        let f = FolderFormat::parse("'y'yy-M-d/DDD/HH'h'mm").unwrap();
        assert_eq!(f.segments(t), ["y18-2-12", "043", "19h05"]);
        assert_eq!(f.recording_dir(Path::new("/t"), t, "REC1").unwrap(), PathBuf::from("/t/y18-2-12/043/19h05/REC1"));
        assert!(f.recording_dir(Path::new("/t"), t, "..").is_err());
        for bad in ["yyyy//MM", "'..'", "yyyy/'a/b'", "MMM", "EEE", "yyyy\\MM", "'unclosed"] {
            assert!(FolderFormat::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(FolderFormat::parse("").unwrap().segments(t).is_empty());
    }

    #[test]
    fn media_names_and_instances() {
        assert_eq!(media_name(Some("prefixA/x.mp3"), "m").unwrap(), "x.mp3");
        assert_eq!(media_name(None, "m.mp3").unwrap(), "m.mp3");
        for bad in [(Some("a/.."), "m"), (None, "meta-data.json"), (None, "x.part"), (Some("a/.hidden"), "m")] {
            assert!(media_name(bad.0, bad.1).is_err(), "{bad:?}");
        }
        let counts = (0..1000).fold([0u32; 4], |mut c, i| {
            c[instance_of(&format!("REC{i}"), 4) as usize] += 1;
            c
        });
        assert!(counts.iter().all(|&n| n > 150), "{counts:?}");
    }
}
