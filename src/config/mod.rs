//! Node configuration (TOML), the clock, and the [`Context`] every command runs in.
//!
//! Every key is documented in `deploy/reclife.example.toml`. Unknown keys are errors, so a
//! misspelt option is reported rather than silently ignored.

use crate::catalog::{is_postgres_url, Catalog, PgCatalog, PgOptions, SqliteCatalog};
use crate::storage::{self, Location, MediaStore};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors loading configuration or opening the data directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A command that only reads or changes existing data was pointed at a data directory
    /// with no catalog (a typo'd `--data-dir`, or a node never set up): nothing is created.
    #[error(
        "{} holds no catalog ({}): not a reclife data directory; check --data-dir (or RECLIFE_DATA_DIR, or data_dir in the config), or create one with `reclife init`",
        data_dir.display(), catalog.display()
    )]
    NoCatalog { data_dir: PathBuf, catalog: PathBuf },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// The node's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The data directory (catalog.db, media/, audit/) when neither `--data-dir` nor
    /// `RECLIFE_DATA_DIR` names one; relative to the config file's folder.
    pub data_dir: Option<PathBuf>,
    /// Contact center id: the first folder of every archive.
    pub contact_center_id: String,
    /// Tenant name in archive names and paths (GIR always writes `Environment`).
    pub tenant: String,
    /// This node's path; it runs only the rules assigned to it (and rules with none).
    pub node_path: Option<String>,
    /// This node's region; it acts only on recordings of this region (unset: all).
    pub region: Option<String>,
    /// Slices per day for scan-and-scroll (GIR `scanIntervalsPerDay`).
    pub scan_intervals_per_day: u32,
    /// Folder of PEM private keys and certificates.
    pub keys_dir: Option<PathBuf>,
    /// File holding the password of encrypted private keys (else env `RECLIFE_KEY_PASSWORD`).
    pub key_password_file: Option<PathBuf>,
    /// CA bundle to check recipient certificates against when sealing.
    pub ca_bundle: Option<PathBuf>,
    /// Where media lives (default: `file://<data dir>/media`): `file:///…`, `s3://bucket/prefix`,
    /// `webdav://host:port/path` or `webdavs://…`. Also accepted as `media_store`.
    #[serde(alias = "media_store")]
    pub media_location: Option<String>,
    /// S3 settings (`[s3]`): endpoint, region, path style, checksums, parts, timeouts, retries.
    /// Credentials come from the AWS environment variables, never from this file.
    pub s3: crate::storage::S3Config,
    /// WebDAV settings (`[webdav]`): username, password_file, timeouts, retries.
    pub webdav: crate::storage::WebDavConfig,
    /// Folder of rule files (one TOML file per rule).
    pub rules_dir: PathBuf,
    /// Backup location for tasks that name none.
    pub default_backup_location: Option<String>,
    /// Seconds between re-reads of the rules folder.
    pub schedule_polling_interval: u64,
    /// Rules run at once by the scheduler.
    pub scheduler_threads: usize,
    /// What `reclife run` started after downtime does with a rule's missed fire, unless the
    /// rule says (`all`, `backups`: the default, or `none`).
    pub catch_up: crate::lifecycle::rules::CatchUp,
    /// The recording muxer (`[muxer]`, GIR's muxer option names).
    pub muxer: crate::muxer::MuxerConfig,
    /// Where purged recording ids are posted (GIR tells SpeechMiner); unset: nobody.
    pub notify: Option<crate::lifecycle::notify::NotifyConfig>,
    /// Seconds a lifecycle lease (a running job, a task's footprint, a purge batch) lasts
    /// without renewal; a crashed process's claims expire after this.
    pub lease_seconds: u64,
    /// Ended jobs older than this many days are forgotten (with their plans).
    pub job_retention_days: u32,
    /// Seconds a media object no document lists is left alone by `reclife check --repair`
    /// after it was written (a writer outside this node, such as a Recording Processor
    /// uploading before its `/internal-api` call, announces nothing).
    pub orphan_grace_seconds: u64,
    /// The HTTP API (`[api]`: listen address, users file, ops users, public URL).
    pub api: crate::api::ApiConfig,
    /// `reclife download` (`[download]`): RCBS's config.properties keys in snake_case (or as
    /// RCBS spells them); checked when the downloader runs.
    pub download: crate::download::DownloadConfig,
    /// Where the catalog lives: unset (or `sqlite:PATH`, or a path) for SQLite, by default
    /// `<data dir>/catalog.db`; `postgres://user@host:port/db` for a catalog shared by several
    /// nodes. Env `RECLIFE_CATALOG` overrides it. Never holds a password.
    pub catalog: Option<String>,
    /// The PostgreSQL catalog's settings (`[postgres]`): password_file, schema, pool_size.
    pub postgres: PostgresConfig,
    /// Import sources (`[import.<name>]`, e.g. a Genesys Cloud organisation); checked when the
    /// source runs. Secrets come from files or the environment, never from this file.
    pub import: std::collections::BTreeMap<String, crate::import::SourceConfig>,
}

/// `[postgres]`: how a `postgres://` catalog is reached. The password comes from
/// `password_file` (its first line) or env `PGPASSWORD`, never from this file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    pub password_file: Option<PathBuf>,
    /// Schema holding the catalog's tables.
    pub schema: String,
    /// Connections per process.
    pub pool_size: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig { password_file: None, schema: "public".into(), pool_size: 8 }
    }
}

/// Opens the catalog `spec` names (see [`Config::catalog`]); `data_dir` places the default.
pub fn open_catalog(
    spec: Option<&str>,
    pg: &PostgresConfig,
    data_dir: &Path,
) -> Result<Arc<dyn Catalog>, crate::catalog::CatalogError> {
    Ok(match spec.map(str::trim).filter(|s| !s.is_empty()) {
        Some(url) if is_postgres_url(url) => {
            let opts =
                PgOptions::new(url, pg.password_file.as_ref())?.with_schema(&pg.schema).with_pool_size(pg.pool_size);
            Arc::new(PgCatalog::open(&opts)?)
        }
        Some(path) => {
            let path = path.strip_prefix("sqlite://").or_else(|| path.strip_prefix("sqlite:")).unwrap_or(path);
            Arc::new(SqliteCatalog::open(Path::new(path))?)
        }
        None => Arc::new(SqliteCatalog::open(&data_dir.join("catalog.db"))?),
    })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            contact_center_id: "default".into(),
            tenant: "Environment".into(),
            node_path: None,
            region: None,
            scan_intervals_per_day: 24,
            keys_dir: None,
            key_password_file: None,
            ca_bundle: None,
            media_location: None,
            s3: Default::default(),
            webdav: Default::default(),
            rules_dir: PathBuf::from("rules"),
            default_backup_location: None,
            schedule_polling_interval: 60,
            scheduler_threads: 4,
            catch_up: Default::default(),
            muxer: crate::muxer::MuxerConfig::default(),
            notify: None,
            lease_seconds: 30,
            job_retention_days: 90,
            orphan_grace_seconds: 3600,
            api: crate::api::ApiConfig::default(),
            download: Default::default(),
            catalog: None,
            postgres: PostgresConfig::default(),
            import: Default::default(),
        }
    }
}

/// GIR's rule for `scanIntervalsPerDay`: the minutes of a day (1440) must be divisible by it; 0
/// becomes the default (24), a value above 1440 becomes 1440, any other the next lower divisor.
pub fn scan_intervals(given: u32) -> u32 {
    match given {
        0 => 24,
        n if n > 1440 => 1440,
        n => (1..=n).rev().find(|d| 1440 % d == 0).unwrap_or(1),
    }
}

impl Config {
    /// Reads a TOML config file.
    /// Reads a TOML config file. Relative paths in it (rules_dir, keys_dir,
    /// key_password_file, ca_bundle, the muxer's temp_dir and screen_certs) are relative to the
    /// file's folder, not to wherever the process was started.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut c = Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.into(), message })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        c.resolve_against(base);
        Ok(c)
    }

    /// The `[s3]` and `[webdav]` sections, as the storage backends take them.
    pub fn storage(&self) -> storage::StorageConfig {
        storage::StorageConfig { s3: self.s3.clone(), webdav: self.webdav.clone() }
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_against(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.rules_dir);
        for p in [
            &mut self.data_dir,
            &mut self.keys_dir,
            &mut self.key_password_file,
            &mut self.ca_bundle,
            &mut self.muxer.temp_dir,
            &mut self.api.users_file,
            &mut self.api.tls_cert,
            &mut self.api.tls_key,
            &mut self.api.metrics_token_file,
            &mut self.webdav.password_file,
            &mut self.postgres.password_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        self.muxer.screen_certs.iter_mut().for_each(fix);
        for src in self.import.values_mut() {
            src.resolve_against(base);
        }
    }

    /// Parses TOML text; the error names the line. `scan_intervals_per_day` is brought to a value
    /// GIR accepts ([`scan_intervals`]), with a warning when it changes.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut c: Config = Self::parse_raw(text)?;
        let given = c.scan_intervals_per_day;
        c.scan_intervals_per_day = scan_intervals(given);
        if c.scan_intervals_per_day != given {
            tracing::warn!(
                given,
                used = c.scan_intervals_per_day,
                "scan_intervals_per_day must divide the 1440 minutes of a day (GIR scanIntervalsPerDay); using the next valid value"
            );
        }
        Ok(c)
    }

    fn parse_raw(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        // `[download]` holds RCBS's keys as a table (checked in full when the downloader
        // runs); an unknown key is a typo every command reports, as in every other section.
        let known = crate::download::options::KEYS;
        if let Some(k) = c.download.0.keys().find(|k| !known.iter().any(|(rcbs, snake)| k == rcbs || k == snake)) {
            let at = key_line(text, &["download", k]).map(|l| format!("line {l}: ")).unwrap_or_default();
            let names: Vec<&str> = known.iter().map(|(_, snake)| *snake).collect();
            return Err(format!("{at}unknown key `{k}` in [download], expected one of {}", names.join(", ")));
        }
        Ok(c)
    }
}

/// The line (from 1) where the key at `path` (`["download", "max_age"]`) is written in the
/// TOML `text`, if it parses and holds it.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    for (i, name) in path.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *name)?;
        span = Some(k.span());
        if i + 1 < path.len() {
            match v.get_ref() {
                toml::de::DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
    }
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

/// "Now": the system clock, or a fixed instant (`--now`) so that runs are reproducible.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { fixed: None }
    }
    pub fn fixed(t: DateTime<Utc>) -> Clock {
        Clock { fixed: Some(t) }
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }
}

/// Everything a command needs: configuration, the data directory, the clock, the catalog
/// and the media store. The CLI, the scheduler and the API build one and call the same
/// library functions with it.
#[derive(Debug, Clone)]
pub struct Context {
    pub config: Config,
    pub data_dir: PathBuf,
    pub clock: Clock,
    pub catalog: Arc<dyn Catalog>,
    pub media: Arc<dyn MediaStore>,
}

/// Creates `dir` and any missing parents owner-only (0700): data folders hold recordings and
/// their metadata. Folders that exist keep their mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Whether opening a [`Context`] may create the data directory and its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirMode {
    /// Commands that bring data in (`ingest`, `run`, `serve`, `import`, `restore`, `catalog
    /// migrate`, `init`): a missing data directory and catalog are created (0700).
    Create,
    /// Every other command: a SQLite catalog (the default `<data dir>/catalog.db`, or a path)
    /// must exist, else [`ConfigError::NoCatalog`]; nothing is created. A PostgreSQL catalog
    /// is checked by connecting to it.
    Existing,
}

/// The catalog spec in force: env `RECLIFE_CATALOG`, else the config's `catalog`.
fn catalog_spec(config: &Config) -> Option<String> {
    std::env::var("RECLIFE_CATALOG")
        .ok()
        .or_else(|| config.catalog.clone())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Where a SQLite catalog lives for `spec` (None for PostgreSQL).
fn sqlite_path(spec: Option<&str>, data_dir: &Path) -> Option<PathBuf> {
    match spec {
        Some(url) if is_postgres_url(url) => None,
        Some(path) => {
            Some(PathBuf::from(path.strip_prefix("sqlite://").or_else(|| path.strip_prefix("sqlite:")).unwrap_or(path)))
        }
        None => Some(data_dir.join("catalog.db")),
    }
}

impl Context {
    /// Opens the data directory (created 0700 if missing), the catalog (env
    /// `RECLIFE_CATALOG`, else the config's `catalog`, else `<data dir>/catalog.db`) and the
    /// media store: [`DataDirMode::Create`].
    pub fn open(data_dir: &Path, config: Config, clock: Clock) -> Result<Context, ConfigError> {
        Self::open_mode(data_dir, config, clock, DataDirMode::Create)
    }

    /// [`Context::open`], or with [`DataDirMode::Existing`] only a data directory that holds
    /// its catalog: the one rule every face follows before it reads or changes data.
    pub fn open_mode(data_dir: &Path, config: Config, clock: Clock, mode: DataDirMode) -> Result<Context, ConfigError> {
        let spec = catalog_spec(&config);
        match mode {
            DataDirMode::Create => {
                create_private_dir(data_dir).map_err(|source| ConfigError::DataDir { path: data_dir.into(), source })?
            }
            DataDirMode::Existing => {
                if let Some(db) = sqlite_path(spec.as_deref(), data_dir) {
                    if !db.is_file() {
                        return Err(ConfigError::NoCatalog { data_dir: data_dir.into(), catalog: db });
                    }
                }
            }
        }
        let catalog = open_catalog(spec.as_deref(), &config.postgres, data_dir)?;
        let media_loc = match &config.media_location {
            Some(uri) => Location::parse(uri)?,
            None => Location::File(data_dir.join("media")),
        };
        let media = storage::open_with(&media_loc, &config.storage())?;
        Ok(Context { config, data_dir: data_dir.to_path_buf(), clock, catalog, media })
    }

    /// `<data dir>/<name>`, created (0700) if missing.
    pub fn data_subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        let p = self.data_dir.join(name);
        create_private_dir(&p)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.tenant, "Environment");
        assert_eq!(c.scan_intervals_per_day, 24);
        for (given, used) in [(0, 24), (24, 24), (7, 6), (1440, 1440), (5000, 1440), (1000, 720), (1, 1)] {
            assert_eq!(scan_intervals(given), used, "{given}");
            let c = Config::parse(&format!("scan_intervals_per_day = {given}\n")).unwrap();
            assert_eq!(c.scan_intervals_per_day, used, "{given}");
        }
        let c = Config::parse("contact_center_id = \"cc1\"\nregion = \"us\"\n").unwrap();
        assert_eq!(c.contact_center_id, "cc1");
        assert_eq!(c.region.as_deref(), Some("us"));
        let c = Config::parse(include_str!("../../deploy/reclife.example.toml")).expect("the example config parses");
        assert_eq!((c.s3.part_size_mib, c.webdav.net.max_attempts), (8, 8));
        let c =
            Config::parse("media_store = \"s3://b/p\"\n[s3]\nendpoint = \"http://127.0.0.1:1\"\nmax_attempts = 2\n")
                .unwrap();
        assert_eq!(c.media_location.as_deref(), Some("s3://b/p"));
        assert_eq!((c.s3.endpoint.as_deref(), c.s3.net.max_attempts), (Some("http://127.0.0.1:1"), 2));
        assert!(Config::parse("[s3]\naccess_key = \"AKIA\"\n").is_err(), "keys do not go in the file");
        let e = Config::parse("tenant = \"x\"\nscan_intervals = 3\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("scan_intervals"), "{e}");
    }
}
