//! `reclife mux --gir-config muxer.cfg`: the Recording Muxer Script's INI file, read as it is.
//!
//! Every option of GIR's `muxer.cfg` (sections `[htcc]`, `[rcs]`, `[processing]`, `[webdav]`,
//! `[advanced]`, `[logfile]`; 001_b1ce2e73cba9b3f4.txt, "Recording Muxer Script" options) is
//! either **applied** to the `[muxer]` configuration, or **not applicable** with the reason:
//! reclife reads its own catalog and media store (no RWS, RCS or WebDAV connection of the
//! muxer's own), links FFmpeg and OpenSSL (no executables to point at) and logs to stderr or
//! the journal. An option that is not in GIR's documents is an error naming its section and
//! key, as is a value of the wrong kind. Keys are case-insensitive and `=` or `:` separate
//! them from values, as Python's configparser reads them; backslashes are kept (Windows paths).
//! Values from the file win over the node's `[muxer]` section; command-line flags win over both.

use super::config::{MuxerConfig, MuxerType};
use std::path::{Path, PathBuf};

/// What became of one option of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// `section.key`, as GIR names it.
    pub option: String,
    /// `None`: applied. `Some(reason)`: not applicable here, and why.
    pub ignored: Option<&'static str>,
}

/// Errors name the file and the option.
#[derive(Debug, thiserror::Error)]
pub enum GirConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Syntax { path: PathBuf, line: usize, message: String },
    #[error("{path}: [{section}] {key}: {message}")]
    Option { path: PathBuf, section: String, key: String, message: String },
}

const NOT_RWS: &str = "reclife reads its own catalog and media store, not RWS";
const NOT_RCS: &str = "decryption uses the node's key store (keys_dir and key_password_file in the node config), not a Recording Crypto Server";
const NOT_WEBDAV: &str =
    "the media store's WebDAV settings are the node's [webdav] section and WEBDAV_USERNAME/WEBDAV_PASSWORD";
const LINKED: &str = "reclife links FFmpeg and OpenSSL; there is no executable to point at";
const LOGS: &str = "reclife logs to stderr (or the journal under systemd): use -v/-vv, RUST_LOG or --log-format";
const CATALOG: &str = "reclife reads screen recordings from its catalog in one indexed lookup per page";

/// Reads `path` and applies it to `cfg`. Returns what became of every option, in file order.
pub fn apply(path: &Path, cfg: &mut MuxerConfig) -> Result<Vec<Mapped>, GirConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| GirConfigError::Read { path: path.into(), source })?;
    apply_str(path, &text, cfg)
}

/// [`apply`] on the file's text (`path` names it in errors).
pub fn apply_str(path: &Path, text: &str, cfg: &mut MuxerConfig) -> Result<Vec<Mapped>, GirConfigError> {
    let ini = ini::Ini::load_from_str_noescape(text).map_err(|e| GirConfigError::Syntax {
        path: path.into(),
        line: e.line + 1,
        message: e.msg.to_string(),
    })?;
    let mut out = Vec::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else {
            if let Some((k, _)) = props.iter().next() {
                return Err(GirConfigError::Option {
                    path: path.into(),
                    section: String::new(),
                    key: k.to_string(),
                    message: "outside any section".into(),
                });
            }
            continue;
        };
        let sec = section.to_ascii_lowercase();
        for (key, value) in props.iter() {
            let k = key.to_ascii_lowercase().replace('-', "_");
            let v = value.trim();
            let bad = |message: String| GirConfigError::Option {
                path: path.into(),
                section: section.to_string(),
                key: key.to_string(),
                message,
            };
            let int = || v.parse::<i64>().map_err(|_| bad(format!("{v:?} is not a whole number")));
            let unsigned = || v.parse::<u64>().map_err(|_| bad(format!("{v:?} is not a whole number ≥ 0")));
            let flag = || match v {
                "1" | "true" | "True" | "yes" => Ok(true),
                "0" | "false" | "False" | "no" => Ok(false),
                _ => Err(bad(format!("{v:?} is not 0 or 1"))),
            };
            let ignored: Option<&'static str> = match (sec.as_str(), k.as_str()) {
                ("htcc", "base_uri" | "contact_center_id" | "username" | "password" | "trusted_ca" | "rws_timeout") => {
                    Some(NOT_RWS)
                }
                ("rcs", "base_uri" | "username" | "password" | "trusted_ca") => Some(NOT_RCS),
                ("webdav", "username" | "password" | "trusted_ca") => Some(NOT_WEBDAV),
                ("logfile", "max_log_file_size_mb" | "logfile_path" | "level") => Some(LOGS),
                ("processing", "ffmpeg" | "ffprobe" | "openssl") => Some(LINKED),
                ("processing", "batch_read_screen_recording_metadata") => Some(CATALOG),
                ("processing", "clean_temp_folder_timeout") => {
                    Some("reclife cleans a pair's temporary files when the pair is done (auto_clean_temp_folder)")
                }
                ("advanced" | "processing", "query_slice_size") => Some(CATALOG),
                ("advanced", "call_recording_query_string") => {
                    cfg.call_recording_query_string = v.to_string();
                    cfg.batch_query().map_err(bad)?;
                    None
                }
                ("advanced", "call_recording_extra_query_string") => {
                    cfg.call_recording_extra_query_string = v.to_string();
                    cfg.extra_query().map_err(bad)?;
                    None
                }
                ("processing", "window_past") => {
                    cfg.window_past = unsigned()?;
                    None
                }
                ("processing", "window_past_older_than") => {
                    // GIR: "If left empty, the window_past parameter is used" (window_past alone).
                    cfg.window_past_older_than = if v.is_empty() { 0 } else { unsigned()? };
                    None
                }
                ("processing", "split_window_enabled") => {
                    cfg.split_window_enabled = flag()?;
                    None
                }
                ("processing", "max_interval_minutes") => {
                    cfg.max_interval_minutes = unsigned()?;
                    None
                }
                ("processing", "min_poll_interval") => {
                    cfg.min_poll_interval = unsigned()?;
                    None
                }
                ("processing", "muxer_id") => {
                    cfg.muxer_id = if v.is_empty() { -1 } else { int()? };
                    None
                }
                ("processing", "total_muxers") => {
                    cfg.total_muxers = if v.is_empty() {
                        None
                    } else {
                        Some(u32::try_from(unsigned()?).map_err(|_| bad(format!("{v} is too large")))?)
                    };
                    None
                }
                ("processing", "muxer_type") => {
                    cfg.muxer_type = match v.to_ascii_lowercase().as_str() {
                        "primary" | "" => MuxerType::Primary,
                        "backup" => MuxerType::Backup,
                        _ => return Err(bad(format!("{v:?} is not primary or backup"))),
                    };
                    None
                }
                ("processing", "check_matching_username") => {
                    cfg.check_matching_username = flag()?;
                    None
                }
                ("processing", "encrypt_always") => {
                    cfg.encrypt_always = flag()?;
                    None
                }
                ("processing", "temp_dir") => {
                    cfg.temp_dir = (!v.is_empty()).then(|| PathBuf::from(v));
                    None
                }
                ("processing", "save_temp_file") => {
                    cfg.save_temp_file = flag()?;
                    None
                }
                ("processing", "auto_clean_temp_folder") => {
                    cfg.auto_clean_temp_folder = flag()?;
                    None
                }
                ("advanced", "worker_threads") => {
                    let n = unsigned()?;
                    if n == 0 {
                        return Err(bad("must be at least 1".into()));
                    }
                    cfg.worker_threads = n as usize;
                    None
                }
                ("advanced", "pagination") => {
                    let n = unsigned()?;
                    if n == 0 {
                        return Err(bad("must be at least 1".into()));
                    }
                    cfg.pagination = n as usize;
                    None
                }
                ("advanced", "max_overlap_allowed") => {
                    cfg.max_overlap_allowed = unsigned()?;
                    None
                }
                ("advanced", "video_padding_slice_length_ms") => {
                    cfg.video_padding_slice_length_ms = unsigned()?;
                    None
                }
                ("advanced", "mark_screen_recording_label") => {
                    cfg.mark_screen_recording_label = flag()?;
                    None
                }
                _ => return Err(bad("not an option of GIR's Recording Muxer Script".into())),
            };
            out.push(Mapped { option: format!("{sec}.{k}"), ignored });
        }
    }
    cfg.validate().map_err(|message| GirConfigError::Option {
        path: path.into(),
        section: "processing".into(),
        key: "(together)".into(),
        message,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[htcc]
base_uri = https://gws.example:443/
contact_center_id = 8d6f2d5e-0000
username = ops
password = ops
trusted-ca = false

[rcs]
base_uri = https://rcs.example:8443
username = admin
password =

[processing]
ffmpeg = C:\Program Files\GCTI\thirdparty\ffmpeg.exe
openssl = /opt/openssl/bin/openssl
window_past = 1440
window_past_older_than = 725
min_poll_interval: 7
muxer_id = 1
total_muxers = 2
muxer_type = backup
check_matching_username = 0
encrypt_always = 1
temp_dir = C:\temp\muxer
save_temp_file = 0
auto_clean_temp_folder = 1
clean_temp_folder_timeout = 43200
batch_read_screen_recording_metadata = 1

[webdav]
username = dav
password = secret

[advanced]
worker_threads = 6
pagination = 200
query_slice_size = 100
call_recording_extra_query_string =
max_overlap_allowed = 500
video_padding_slice_length_ms = 4000
mark_screen_recording_label = 0

[logfile]
logfile_path = C:\logs\recordingMuxer
level = DEBUG
max_log_file_size_mb = 21
"#;

    #[test]
    fn a_gir_muxer_cfg_is_applied_and_the_rest_named() {
        let mut cfg = MuxerConfig::default();
        let mapped = apply_str(Path::new("muxer.cfg"), SAMPLE, &mut cfg).unwrap();
        assert_eq!((cfg.window_past, cfg.window_past_older_than, cfg.min_poll_interval), (1440, 725, 7));
        assert_eq!((cfg.muxer_id, cfg.total_muxers, cfg.muxer_type), (1, Some(2), MuxerType::Backup));
        assert!(!cfg.check_matching_username && cfg.encrypt_always && !cfg.save_temp_file);
        assert_eq!(cfg.temp_dir.as_deref(), Some(Path::new(r"C:\temp\muxer")), "backslashes kept");
        assert_eq!((cfg.worker_threads, cfg.pagination), (6, 200));
        assert_eq!((cfg.max_overlap_allowed, cfg.video_padding_slice_length_ms), (500, 4000));
        assert!(!cfg.mark_screen_recording_label);
        let ignored: Vec<&str> = mapped.iter().filter(|m| m.ignored.is_some()).map(|m| m.option.as_str()).collect();
        assert!(ignored.contains(&"htcc.trusted_ca") && ignored.contains(&"processing.ffmpeg"));
        assert!(ignored.contains(&"logfile.level") && ignored.contains(&"webdav.password"));
        assert_eq!(mapped.len(), 35, "every option is accounted for");
    }

    #[test]
    fn unknown_options_and_bad_values_name_the_option() {
        let mut cfg = MuxerConfig::default();
        let e = apply_str(Path::new("m.cfg"), "[processing]\nwindow_pst = 5\n", &mut cfg).unwrap_err().to_string();
        assert_eq!(e, "m.cfg: [processing] window_pst: not an option of GIR's Recording Muxer Script");
        let e = apply_str(Path::new("m.cfg"), "[advanced]\nworker_threads = many\n", &mut cfg).unwrap_err().to_string();
        assert!(e.contains("[advanced] worker_threads") && e.contains("not a whole number"), "{e}");
        let mut empty = MuxerConfig::default();
        apply_str(Path::new("m.cfg"), "[processing]\nwindow_past = 60\nwindow_past_older_than =\n", &mut empty)
            .unwrap();
        assert_eq!((empty.window_past, empty.window_past_older_than), (60, 0), "empty: window_past alone");
        let e = apply_str(Path::new("m.cfg"), "[processing]\nwindow_past = 5\nwindow_past_older_than = 10\n", &mut cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("window_past"), "{e}");
        let e = apply_str(Path::new("m.cfg"), "[bogus]\nx = 1\n", &mut cfg).unwrap_err().to_string();
        assert!(e.contains("[bogus] x"), "{e}");
    }
}
