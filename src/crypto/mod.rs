//! CMS (PKCS#7) EnvelopedData around recording media: open, seal, and the key store.
//!
//! In: encrypted media files (attached envelopes in DER or BER, or detached AES ciphertext with
//! the envelope from the metadata's `pkcs7` field), a folder of PEM keys and certificates, and
//! recipient certificates for sealing. Out: plain files (0600, written atomically next to their
//! final name, never over the source) and attached DER envelopes that
//! `openssl cms -decrypt -inform DER -binary -inkey key.pem` opens.
//!
//! Guarantees: files are streamed (a chunk of ciphertext in memory, never the whole file; only
//! [`KeyStore::decrypt_to_memory`], for playback, keeps the plaintext, up to a bound); the
//! key is chosen by the envelope's recipients (issuer + serial or subject key id, then
//! certAlias); every error names the file and, when no key fits, the recipients the file wants.
//! Key material and passwords never reach errors or logs.
//!
//! openssl does the cryptography (RSA key transport, AES-CBC with AES-NI); the envelope
//! structure is parsed here by a small streaming BER reader ([`ber`]), because openssl's CMS API
//! reads a whole envelope into memory and does not say which recipients it wanted.

mod ber;
mod envelope;
mod keystore;
mod open;
mod output;
mod seal;

pub use envelope::{inspect, EnvelopeInfo};
pub use keystore::KeyStore;
pub use keystore::{password_from_config, PASSWORD_ENV};
pub use output::sync_dir;
pub use seal::{attach_file, check_chain, detach_file, load_recipients, seal_file, Recipient};

use std::path::PathBuf;

/// Errors from opening and sealing envelopes and loading keys. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{file}: not a valid CMS envelope: {reason}")]
    Malformed { file: PathBuf, reason: String },
    #[error("{file}: truncated envelope: {reason}")]
    Truncated { file: PathBuf, reason: String },
    #[error("{file}: unsupported {what}: {name}")]
    Unsupported { file: PathBuf, what: &'static str, name: String },
    #[error("{file}: no key in the key store opens this file; it is sealed for {wanted}{hint}")]
    NoMatchingKey { file: PathBuf, wanted: String, hint: String },
    #[error("{file}: the session key does not unwrap with key file {key} (wrong key or damaged envelope)")]
    Unwrap { file: PathBuf, key: PathBuf },
    #[error("{file}: decryption failed: wrong key or damaged ciphertext")]
    Decrypt { file: PathBuf },
    #[error("key file {file}: wrong password (or damaged key)")]
    WrongPassword { file: PathBuf },
    #[error(
        "key file {file} is encrypted and no password is set (env RECLIFE_KEY_PASSWORD or config key_password_file)"
    )]
    NoPassword { file: PathBuf },
    #[error("key file {file}: {reason}")]
    BadKey { file: PathBuf, reason: String },
    #[error("certificate {file}: {reason}")]
    BadCert { file: PathBuf, reason: String },
    #[error("certificate {file} ({subject}) is not valid at {now}: valid from {not_before} to {not_after}")]
    CertNotValid { file: PathBuf, subject: String, now: String, not_before: String, not_after: String },
    #[error("certificate {file} ({subject}) does not chain to the CA bundle {bundle}: {reason}")]
    CertChain { file: PathBuf, subject: String, bundle: PathBuf, reason: String },
    #[error("key store {dir}: {reason}")]
    KeyStore { dir: PathBuf, reason: String },
    #[error("{file}: the plaintext is larger than {max} bytes, the most opened in memory (use reclife decrypt)")]
    TooLarge { file: PathBuf, max: u64 },
    #[error("{file}: refusing to write the output over the source file")]
    SourceOverwrite { file: PathBuf },
    #[error("no recipient certificate given")]
    NoRecipients,
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {context}: {source}")]
    Openssl {
        file: PathBuf,
        context: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
}

impl CryptoError {
    pub(crate) fn io(file: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CryptoError {
        let file = file.into();
        move |source| CryptoError::Io { file, source }
    }
    pub(crate) fn ssl(
        file: impl Into<PathBuf>,
        context: &'static str,
    ) -> impl FnOnce(openssl::error::ErrorStack) -> CryptoError {
        let file = file.into();
        move |source| CryptoError::Openssl { file, context, source }
    }
}

/// Content-encryption algorithm of a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
}

impl Cipher {
    pub const ALL: [Cipher; 3] = [Cipher::Aes128Cbc, Cipher::Aes192Cbc, Cipher::Aes256Cbc];

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Cbc => 16,
            Cipher::Aes192Cbc => 24,
            Cipher::Aes256Cbc => 32,
        }
    }
    /// The openssl command-line name (`aes-256-cbc`).
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Cbc => "aes-128-cbc",
            Cipher::Aes192Cbc => "aes-192-cbc",
            Cipher::Aes256Cbc => "aes-256-cbc",
        }
    }
    /// DER content of the algorithm OID (2.16.840.1.101.3.4.1.{2,22,42}).
    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Cipher::Aes128Cbc => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02],
            Cipher::Aes192Cbc => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16],
            Cipher::Aes256Cbc => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A],
        }
    }
    pub(crate) fn from_oid(oid: &[u8]) -> Option<Cipher> {
        Cipher::ALL.into_iter().find(|c| c.oid() == oid)
    }
    pub(crate) fn symm(self) -> openssl::symm::Cipher {
        match self {
            Cipher::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
            Cipher::Aes192Cbc => openssl::symm::Cipher::aes_192_cbc(),
            Cipher::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
        }
    }
}

impl std::fmt::Display for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Cipher {
    type Err = String;
    fn from_str(s: &str) -> Result<Cipher, String> {
        Cipher::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown cipher {s:?}: use aes-128-cbc, aes-192-cbc or aes-256-cbc"))
    }
}

/// True if `head` (the first bytes of a file) starts a CMS ContentInfo whose content type is
/// EnvelopedData (OID 1.2.840.113549.1.7.3), in DER or BER.
pub fn looks_enveloped(head: &[u8]) -> bool {
    const OID: [u8; 11] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
    if head.first() != Some(&0x30) {
        return false;
    }
    let window = &head[..head.len().min(16)];
    window.windows(OID.len()).any(|w| w == OID)
}

#[cfg(test)]
mod tests {
    use super::Cipher;

    #[test]
    fn sniff() {
        let der = [0x30, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03, 0xA0];
        let ber = [0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03, 0xA0, 0x80];
        assert!(super::looks_enveloped(&der));
        assert!(super::looks_enveloped(&ber));
        assert!(!super::looks_enveloped(b"ID3\x04\x00"));
        assert!(!super::looks_enveloped(&[]));
    }

    #[test]
    fn cipher_names_round_trip() {
        for c in Cipher::ALL {
            assert_eq!(c.name().parse::<Cipher>().unwrap(), c);
            assert_eq!(Cipher::from_oid(c.oid()), Some(c));
            assert_eq!(c.symm().key_len(), c.key_len());
        }
        assert!("des3".parse::<Cipher>().unwrap_err().contains("des3"));
    }
}
