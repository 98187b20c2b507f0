//! The key store: a folder of PEM private keys and certificates, several at once (old keys keep
//! reading old media). Each key is paired with its certificate by public key, which gives the
//! issuer + serial and subject key id that envelopes name their recipients by; file names give
//! the aliases that GIR metadata's `certAlias` refers to.

use super::envelope::{trim_int, Rid};
use super::CryptoError;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::path::{Path, PathBuf};

/// Environment variable holding the password of encrypted private keys.
pub const PASSWORD_ENV: &str = "RECLIFE_KEY_PASSWORD";
/// Key files larger than this are not key files.
const MAX_PEM_FILE: u64 = 1 << 20;

pub(crate) struct KeyEntry {
    pub file: PathBuf,
    /// File stems of the key file and of its certificate file.
    pub aliases: Vec<String>,
    pub key: PKey<Private>,
    /// Recipient identifiers this key answers to (from its certificate).
    pub ids: Vec<Rid>,
}

/// Private keys, each with the recipient identifiers of its certificate.
pub struct KeyStore {
    dir: PathBuf,
    pub(crate) keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for KeyStore {
    // Never prints key material: only files and aliases.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<_> = self.keys.iter().map(|k| (&k.file, &k.aliases)).collect();
        f.debug_struct("KeyStore").field("dir", &self.dir).field("keys", &files).finish()
    }
}

/// One PEM block: its label and the whole armored text.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block[11..].find("-----") else { break };
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else { break };
        let len = end + end_marker.len();
        out.push((label, &block[..len]));
        rest = &block[len..];
    }
    out
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

struct CertFile {
    file: PathBuf,
    cert: X509,
}

impl KeyStore {
    /// Loads every PEM file in `dir` (not recursive). Encrypted keys need `password`; a wrong
    /// one is an error naming the file, so a store never silently loses a key.
    pub fn load(dir: &Path, password: Option<&str>) -> Result<KeyStore, CryptoError> {
        let err = |reason: String| CryptoError::KeyStore { dir: dir.to_path_buf(), reason };
        let rd = std::fs::read_dir(dir).map_err(CryptoError::io(dir))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for e in rd {
            let e = e.map_err(CryptoError::io(dir))?;
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let md = std::fs::metadata(e.path()).map_err(CryptoError::io(e.path()))?;
            if md.is_file() && md.len() <= MAX_PEM_FILE {
                files.push(e.path());
            }
        }
        files.sort();

        let mut keys: Vec<(PathBuf, PKey<Private>)> = Vec::new();
        let mut certs: Vec<CertFile> = Vec::new();
        for file in &files {
            let bytes = std::fs::read(file).map_err(CryptoError::io(file))?;
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            for (label, block) in pem_blocks(text) {
                match label {
                    "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                        let cert = X509::from_pem(block.as_bytes()).map_err(|e| CryptoError::BadCert {
                            file: file.clone(),
                            reason: format!("unreadable certificate: {e}"),
                        })?;
                        certs.push(CertFile { file: file.clone(), cert });
                    }
                    l if l.ends_with("PRIVATE KEY") => {
                        warn_if_readable_by_others(file);
                        keys.push((file.clone(), read_key(file, block, password)?))
                    }
                    _ => tracing::debug!(file = %file.display(), label, "skipping PEM block"),
                }
            }
        }
        if keys.is_empty() {
            return Err(err("no private keys (PEM files with BEGIN … PRIVATE KEY)".into()));
        }
        let keys = keys
            .into_iter()
            .map(|(file, key)| {
                let mut aliases = vec![stem(&file)];
                let mut ids = Vec::new();
                for c in &certs {
                    let same = c.cert.public_key().map(|p| p.public_eq(&key)).unwrap_or(false);
                    if !same {
                        continue;
                    }
                    let a = stem(&c.file);
                    if !aliases.contains(&a) {
                        aliases.push(a);
                    }
                    ids.extend(cert_ids(&c.cert));
                }
                if ids.is_empty() {
                    tracing::warn!(file = %file.display(), "private key without its certificate: used only by certAlias");
                }
                KeyEntry { file, aliases, key, ids }
            })
            .collect();
        Ok(KeyStore { dir: dir.to_path_buf(), keys })
    }

    /// Loads `keys_dir` of the node config, with the password from `key_password_file` or env
    /// `RECLIFE_KEY_PASSWORD`.
    pub fn from_config(cfg: &crate::config::Config) -> Result<KeyStore, CryptoError> {
        let dir = cfg.keys_dir.as_deref().ok_or_else(|| CryptoError::KeyStore {
            dir: PathBuf::from("(unset)"),
            reason: "keys_dir is not set in the configuration".into(),
        })?;
        let pw = password_from_config(cfg)?;
        KeyStore::load(dir, pw.as_deref())
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of private keys loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys to try for these recipients: keys whose certificate is a recipient (those named by
    /// `cert_alias` first), then keys without a certificate whose file is named by `cert_alias`.
    /// Each comes with the index of the recipient it answers.
    pub(crate) fn candidates<'a>(
        &'a self,
        wanted: &[Option<&Rid>],
        cert_alias: &[String],
    ) -> Vec<(usize, &'a KeyEntry)> {
        let aliased = |k: &KeyEntry| k.aliases.iter().any(|a| cert_alias.iter().any(|c| c == a));
        let mut out: Vec<(bool, usize, &KeyEntry)> = Vec::new();
        for k in &self.keys {
            for (i, rid) in wanted.iter().enumerate() {
                match rid {
                    Some(rid) if k.ids.contains(rid) => out.push((!aliased(k), i, k)),
                    _ => {}
                }
            }
        }
        out.sort_by_key(|(not_aliased, _, _)| *not_aliased);
        let mut res: Vec<(usize, &KeyEntry)> = out.into_iter().map(|(_, i, k)| (i, k)).collect();
        for k in self.keys.iter().filter(|k| k.ids.is_empty() && aliased(k)) {
            for (i, rid) in wanted.iter().enumerate() {
                if rid.is_some() {
                    res.push((i, k));
                }
            }
        }
        res
    }
}

/// Private keys should be readable by their owner only: say so (once per load) when one is
/// readable by its group or by everyone.
fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(file) {
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{mode:o}"),
                "a private key file is readable by other users; chmod 600 it");
        }
    }
}

/// The password for encrypted keys: the file named by `key_password_file` (trailing newline
/// dropped), else env `RECLIFE_KEY_PASSWORD`, else none.
pub fn password_from_config(cfg: &crate::config::Config) -> Result<Option<String>, CryptoError> {
    if let Some(f) = &cfg.key_password_file {
        let s = std::fs::read_to_string(f).map_err(CryptoError::io(f))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var(PASSWORD_ENV).ok())
}

/// The identifiers an envelope may name a certificate by.
pub(crate) fn cert_ids(cert: &X509) -> Vec<Rid> {
    let mut ids = Vec::new();
    if let (Ok(issuer), Ok(serial)) = (cert.issuer_name().to_der(), cert.serial_number().to_bn()) {
        // BigNum gives zero as no bytes; the envelope's INTEGER gives it as one zero byte.
        let bytes = serial.to_vec();
        let serial = if bytes.is_empty() { vec![0] } else { trim_int(&bytes).to_vec() };
        ids.push(Rid::IssuerSerial { issuer, serial });
    }
    if let Some(ski) = cert.subject_key_id() {
        ids.push(Rid::SubjectKeyId(ski.as_slice().to_vec()));
    }
    ids
}

fn read_key(file: &Path, block: &str, password: Option<&str>) -> Result<PKey<Private>, CryptoError> {
    // The callback form keeps openssl from prompting on a terminal for encrypted keys.
    let mut asked = false;
    let res = PKey::private_key_from_pem_callback(block.as_bytes(), |buf| {
        asked = true;
        match password {
            Some(p) if p.len() <= buf.len() => {
                buf[..p.len()].copy_from_slice(p.as_bytes());
                Ok(p.len())
            }
            _ => Ok(0),
        }
    });
    let key = match res {
        Ok(k) => k,
        Err(_) if asked && password.is_none() => return Err(CryptoError::NoPassword { file: file.into() }),
        Err(_) if asked => return Err(CryptoError::WrongPassword { file: file.into() }),
        Err(e) => return Err(CryptoError::BadKey { file: file.into(), reason: format!("unreadable key: {e}") }),
    };
    if key.rsa().is_err() {
        return Err(CryptoError::BadKey { file: file.into(), reason: "not an RSA key".into() });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_splitting() {
        let t = "junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                 -----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n-----BEGIN X";
        let b = pem_blocks(t);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, "CERTIFICATE");
        assert!(b[1].1.ends_with("-----END PRIVATE KEY-----"));
    }

    #[test]
    fn serial_zero_matches_its_der_form() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        let ids = cert_ids(&b.build());
        assert!(matches!(&ids[0], Rid::IssuerSerial { serial, .. } if serial == &[0]), "{ids:?}");
    }

    #[test]
    fn committed_key_pairs_with_its_certificate() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/keys");
        let ks = KeyStore::load(Path::new(dir), None).unwrap();
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.keys[0].aliases, vec!["recording-key".to_string(), "recording-cert".to_string()]);
        assert!(!ks.keys[0].ids.is_empty());
        assert!(!format!("{ks:?}").contains("BEGIN"));
    }
}
