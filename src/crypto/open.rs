//! Opening envelopes: pick the key by the recipients, unwrap the session key with RSA
//! (PKCS#1 v1.5 or OAEP), and stream the ciphertext through AES-CBC into the output file.

use super::ber::{malformed, Bad, Stream};
use super::envelope::{parse_prefix, KeyAlg, Parsed, RecipientInfo, Rid};
use super::keystore::KeyStore;
use super::output::Output;
use super::CryptoError;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{Crypter, Mode};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Ciphertext handed to AES at once: large enough for AES-NI to run at full speed.
pub(crate) const CHUNK: usize = 256 << 10;

impl KeyStore {
    /// Opens `input` (attached envelope, or with `detached_pkcs7` the raw ciphertext) into
    /// `output` (created 0600, atomically). `cert_alias` narrows key choice when non-empty.
    ///
    /// The envelope's recipients decide which keys are tried; among keys that match, those
    /// named by `cert_alias` go first, and a key without a certificate is tried only when
    /// `cert_alias` names its file.
    pub fn decrypt_file(
        &self,
        input: &Path,
        output: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
    ) -> Result<(), CryptoError> {
        self.decrypt_file_as(input, output, detached_pkcs7, cert_alias, true)
    }

    /// [`decrypt_file`](Self::decrypt_file) for a scratch copy that is deleted after use (the
    /// muxer's plaintext inputs): written and renamed the same way, but not synced to disk,
    /// since a crash loses nothing that the encrypted source does not still hold.
    pub fn decrypt_scratch(
        &self,
        input: &Path,
        output: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
    ) -> Result<(), CryptoError> {
        self.decrypt_file_as(input, output, detached_pkcs7, cert_alias, false)
    }

    fn decrypt_file_as(
        &self,
        input: &Path,
        output: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
        durable: bool,
    ) -> Result<(), CryptoError> {
        let file = File::open(input).map_err(CryptoError::io(input))?;
        let reader = BufReader::with_capacity(CHUNK, file);
        let mut out: Option<Output> = None;
        self.open_into(reader, input, detached_pkcs7, cert_alias, &mut |plain| {
            if out.is_none() {
                // Created once the key has unwrapped: a file no key opens leaves nothing behind.
                out = Some(Output::create(Some(input), output)?);
            }
            out.as_mut().map_or(Ok(()), |o| o.write(plain, output))
        })?;
        match out {
            Some(o) => o.commit(output, durable),
            None => Output::create(Some(input), output)?.commit(output, durable),
        }
    }

    /// Opens the envelope read from `input` (named `name` in errors) into memory, for playback:
    /// nothing is written to disk. The plaintext may hold at most `max` bytes; beyond that it is
    /// [`CryptoError::TooLarge`], so one play never holds more than `max` bytes of memory.
    /// Returns the plaintext and the label of the key that opened it (its key file's stem:
    /// never key material).
    pub fn decrypt_to_memory<R: Read>(
        &self,
        input: R,
        name: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
        max: u64,
    ) -> Result<(Vec<u8>, String), CryptoError> {
        let mut plain = Vec::new();
        let label =
            self.open_into(BufReader::with_capacity(CHUNK, input), name, detached_pkcs7, cert_alias, &mut |b| {
                if plain.len() as u64 + b.len() as u64 > max {
                    return Err(CryptoError::TooLarge { file: name.into(), max });
                }
                plain.extend_from_slice(b);
                Ok(())
            })?;
        Ok((plain, label))
    }

    /// The label of the key that opens the envelope read from `input` (attached, or with
    /// `detached_pkcs7` the raw ciphertext): only the envelope's head is read and the session
    /// key is unwrapped, nothing is decrypted. For the pages' "opened with key …".
    pub fn which_key<R: Read>(
        &self,
        input: R,
        name: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
    ) -> Result<String, CryptoError> {
        let p = match detached_pkcs7 {
            None => parse_prefix(&mut Stream::new(BufReader::new(input))).map_err(|e| e.at(name))?,
            Some(pkcs7) => {
                let der = decode_pkcs7(pkcs7).map_err(|e| e.at(name))?;
                parse_prefix(&mut Stream::new(&der[..])).map_err(|e| e.at(name))?
            }
        };
        let (mut key, label) = self.session_key(&p, name, cert_alias)?;
        key.iter_mut().for_each(|b| *b = 0);
        Ok(label)
    }

    /// Opens the envelope read from `reader` (attached, or with `detached_pkcs7` the raw
    /// ciphertext), handing the plaintext to `write` chunk by chunk. Returns the label of the
    /// key that opened it.
    fn open_into<R: Read>(
        &self,
        reader: R,
        input: &Path,
        detached_pkcs7: Option<&str>,
        cert_alias: &[String],
        write: &mut dyn FnMut(&[u8]) -> Result<(), CryptoError>,
    ) -> Result<String, CryptoError> {
        match detached_pkcs7 {
            None => {
                let mut s = Stream::new(reader);
                let p = parse_prefix(&mut s).map_err(|e| e.at(input))?;
                let Some(h) = p.content else {
                    return Err(CryptoError::Malformed {
                        file: input.into(),
                        reason: "a detached envelope without content: the media is elsewhere".into(),
                    });
                };
                let (key, label) = self.session_key(&p, input, cert_alias)?;
                decrypt_stream(&p, key, input, write, |buf, sink| s.stream_octets(h, buf, sink, 0).map(|_| ()))?;
                Ok(label)
            }
            Some(pkcs7) => {
                let der = decode_pkcs7(pkcs7).map_err(|e| e.at(input))?;
                let p = parse_prefix(&mut Stream::new(&der[..])).map_err(|e| e.at(input))?;
                if p.content.is_some() {
                    return Err(CryptoError::Malformed {
                        file: input.into(),
                        reason: "the pkcs7 envelope carries its own content; expected a detached one".into(),
                    });
                }
                let (key, label) = self.session_key(&p, input, cert_alias)?;
                let mut reader = reader;
                decrypt_stream(&p, key, input, write, |buf, sink| loop {
                    let n = match reader.read(buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Bad::Io(e)),
                    };
                    sink(&buf[..n])?;
                })?;
                Ok(label)
            }
        }
    }

    /// Unwraps the content-encryption key with the first candidate key that works; with the
    /// label of that key (its key file's stem).
    fn session_key(&self, p: &Parsed, input: &Path, cert_alias: &[String]) -> Result<(Vec<u8>, String), CryptoError> {
        let wanted: Vec<Option<&Rid>> = p
            .recipients
            .iter()
            .map(|r| match r {
                RecipientInfo::KeyTrans { rid, alg: Ok(_), .. } => Some(rid),
                _ => None,
            })
            .collect();
        let candidates = self.candidates(&wanted, cert_alias);
        let mut last_tried = None;
        for (i, k) in candidates {
            let RecipientInfo::KeyTrans { alg: Ok(alg), encrypted_key, .. } = &p.recipients[i] else { continue };
            match unwrap_key(&k.key, *alg, encrypted_key) {
                Ok(key) if key.len() == p.cipher.key_len() => {
                    let label = k.aliases.first().cloned().unwrap_or_else(|| k.file.display().to_string());
                    return Ok((key, label));
                }
                _ => last_tried = Some(k.file.clone()),
            }
        }
        if let Some(key) = last_tried {
            return Err(CryptoError::Unwrap { file: input.into(), key });
        }
        let alias = if cert_alias.is_empty() { String::new() } else { format!(", certAlias {cert_alias:?}") };
        Err(CryptoError::NoMatchingKey {
            file: input.into(),
            wanted: p.wanted(),
            hint: format!(" (key store {} holds {} key(s){alias})", self.dir().display(), self.len()),
        })
    }
}

fn unwrap_key(key: &PKey<Private>, alg: KeyAlg, wrapped: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut ctx = PkeyCtx::new(key)?;
    ctx.decrypt_init()?;
    match alg {
        KeyAlg::Pkcs1 => ctx.set_rsa_padding(Padding::PKCS1)?,
        KeyAlg::Oaep { md, mgf1 } => {
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
            ctx.set_rsa_oaep_md(md)?;
            ctx.set_rsa_mgf1_md(mgf1)?;
        }
    }
    let mut out = Vec::new();
    ctx.decrypt_to_vec(wrapped, &mut out)?;
    Ok(out)
}

/// Runs `feed` (which hands ciphertext chunks to its sink) through AES into `write`.
fn decrypt_stream(
    p: &Parsed,
    mut key: Vec<u8>,
    input: &Path,
    write: &mut dyn FnMut(&[u8]) -> Result<(), CryptoError>,
    feed: impl FnOnce(&mut [u8], &mut dyn FnMut(&[u8]) -> Result<(), Bad>) -> Result<(), Bad>,
) -> Result<(), CryptoError> {
    let crypter = Crypter::new(p.cipher.symm(), Mode::Decrypt, &key, Some(&p.iv));
    key.iter_mut().for_each(|b| *b = 0);
    let mut crypter = crypter.map_err(CryptoError::ssl(input, "starting AES"))?;
    let mut plain = vec![0u8; CHUNK + 32];
    let mut buf = vec![0u8; CHUNK];
    let mut sink = |chunk: &[u8]| -> Result<(), Bad> {
        let n = crypter.update(chunk, &mut plain).map_err(|_| Bad::Fail(Box::new(decrypt_err(input))))?;
        write(&plain[..n]).map_err(|e| Bad::Fail(Box::new(e)))
    };
    feed(&mut buf, &mut sink).map_err(|e| e.at(input))?;
    let n = crypter.finalize(&mut plain).map_err(|_| decrypt_err(input))?;
    write(&plain[..n])
}

fn decrypt_err(input: &Path) -> CryptoError {
    CryptoError::Decrypt { file: input.into() }
}

/// The DER of a `pkcs7` metadata field: PEM (any label) or bare base64.
pub(crate) fn decode_pkcs7(text: &str) -> Result<Vec<u8>, Bad> {
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if b64.is_empty() {
        return Err(malformed("the pkcs7 field is empty"));
    }
    openssl::base64::decode_block(&b64).map_err(|_| malformed("the pkcs7 field is neither PEM nor base64"))
}
