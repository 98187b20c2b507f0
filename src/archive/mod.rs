//! The GIR backup archive layout, in one place: archive names, the folder of each recording
//! inside an archive, and media file names. Backup writes it; ingest and restore read it.
//!
//! ```text
//! <Tenant>-<FilterType>-<MaxAge>-<MinAge>-<yyyyMMddHHmmss>[.zip]
//!   <contact center id>/<Tenant>/<yyyy>/<MM>/<dd>/<recording id>/meta-data.json
//!   <contact center id>/<Tenant>/<yyyy>/<MM>/<dd>/<recording id>/<mediaId>
//!   <contact center id>/<Tenant>/<yyyy>/<MM>/<dd>/<recording id>/screen/<screen id>/…
//! ```
//! Every name that comes from metadata passes [`crate::model::check_name`].

use crate::model::{archive_path, check_name, Kind, MediaFile, ModelError};
use chrono::{DateTime, Datelike, Utc};

/// The metadata file of each recording folder.
pub const META_FILE: &str = "meta-data.json";
/// The Recording Crypto Server's name for the same file.
pub const RCS_META_FILE: &str = "recording.json";
/// The folder of a call's screen recordings.
pub const SCREEN_DIR: &str = "screen";

/// `<Tenant>-<FilterType>-<MaxAge>-<MinAge>-<yyyyMMddHHmmss>`; an unset age is 0.
pub fn archive_name(
    tenant: &str,
    kind: Kind,
    max_age: Option<u32>,
    min_age: Option<u32>,
    started: DateTime<Utc>,
) -> String {
    format!("{tenant}-{kind}-{}-{}-{}", max_age.unwrap_or(0), min_age.unwrap_or(0), started.format("%Y%m%d%H%M%S"))
}

/// `<contact center id>/<Tenant>/<yyyy>/<MM>/<dd>/<recording id>`, dated by the recording's
/// start time (UTC).
pub fn recording_dir(
    contact_center_id: &str,
    tenant: &str,
    start: DateTime<Utc>,
    id: &str,
) -> Result<String, ModelError> {
    check_name(contact_center_id)?;
    check_name(tenant)?;
    check_name(id)?;
    Ok(format!("{contact_center_id}/{tenant}/{:04}/{:02}/{:02}/{id}", start.year(), start.month(), start.day()))
}

/// `<call dir>/screen/<screen id>`.
pub fn screen_dir(call_dir: &str, screen_id: &str) -> Result<String, ModelError> {
    check_name(screen_id)?;
    Ok(format!("{call_dir}/{SCREEN_DIR}/{screen_id}"))
}

/// The media file's name inside a recording folder: its mediaId, or with
/// `use_full_path` (GIR `useFullPathInMediaFileBackup`) the stored path without its
/// leading `/` (a URI such as `http://host/x` kept whole, [`archive_path`]), falling back to the mediaId where no path is stored.
pub fn media_name(m: &MediaFile, use_full_path: bool) -> Result<String, ModelError> {
    match (&m.stored_path, use_full_path) {
        (Some(p), true) => archive_path(p),
        _ => Ok(check_name(&m.media_id)?.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_and_folders() {
        let t = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            archive_name("Environment", Kind::Voice, None, Some(365), t),
            "Environment-voice-0-365-20250102030405"
        );
        assert_eq!(
            archive_name("Environment", Kind::Screen, Some(2), Some(1), t),
            "Environment-screen-2-1-20250102030405"
        );
        assert_eq!(recording_dir("cc", "Environment", t, "rec1").unwrap(), "cc/Environment/2025/01/02/rec1");
        assert!(recording_dir("cc", "Environment", t, "../x").is_err());
        assert!(recording_dir("c/c", "Environment", t, "x").is_err());
        assert_eq!(screen_dir("cc/E/2025/01/02/r", "s1").unwrap(), "cc/E/2025/01/02/r/screen/s1");
    }
}
