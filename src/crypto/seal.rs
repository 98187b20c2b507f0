//! Sealing: a random AES key and IV, the key wrapped (RSA PKCS#1 v1.5, as `openssl cms
//! -encrypt` does) for every recipient certificate, written as a DER envelope whose lengths are
//! computed up front from the input's size, so the ciphertext streams straight to disk.
//! Also turns a detached envelope (GIR's `pkcs7` field + raw ciphertext) into an attached one.

use super::ber::{Bad, Stream};
use super::envelope::{name_text, parse_prefix, OID_DATA, OID_ENVELOPED, OID_RSA};
use super::open::{decode_pkcs7, CHUNK};
use super::output::Output;
use super::{Cipher, CryptoError};
use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::stack::Stack;
use openssl::symm::{Crypter, Mode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509StoreContext, X509};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// A recipient: an X.509 certificate with an RSA public key.
#[derive(Clone)]
pub struct Recipient {
    file: PathBuf,
    pub(crate) cert: X509,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient").field("file", &self.file).field("subject", &self.subject()).finish()
    }
}

impl Recipient {
    /// Reads the first certificate of a PEM or DER file.
    pub fn load(file: &Path) -> Result<Recipient, CryptoError> {
        let bad = |reason: String| CryptoError::BadCert { file: file.into(), reason };
        let bytes = std::fs::read(file).map_err(CryptoError::io(file))?;
        let cert = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            X509::stack_from_pem(&bytes)
                .map_err(|e| bad(format!("unreadable PEM certificate: {e}")))?
                .into_iter()
                .next()
                .ok_or_else(|| bad("no certificate in the file".into()))?
        } else {
            X509::from_der(&bytes).map_err(|e| bad(format!("neither PEM nor DER certificate: {e}")))?
        };
        let rsa = cert.public_key().map(|k| k.rsa().is_ok()).unwrap_or(false);
        if !rsa {
            return Err(bad("the public key is not RSA; CMS key transport here needs RSA".into()));
        }
        Ok(Recipient { file: file.into(), cert })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The subject name, `CN=…, O=…`.
    pub fn subject(&self) -> String {
        self.cert.subject_name().to_der().map(|d| name_text(&d)).unwrap_or_default()
    }

    /// Checks the validity period against `now`.
    pub fn check_valid(&self, now: DateTime<Utc>) -> Result<(), CryptoError> {
        let t = Asn1Time::from_unix(now.timestamp()).map_err(CryptoError::ssl(&self.file, "time"))?;
        let (nb, na) = (self.cert.not_before(), self.cert.not_after());
        if nb > t || na < t {
            return Err(CryptoError::CertNotValid {
                file: self.file.clone(),
                subject: self.subject(),
                now: now.to_rfc3339(),
                not_before: nb.to_string(),
                not_after: na.to_string(),
            });
        }
        Ok(())
    }

    fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let ssl = || CryptoError::ssl(&self.file, "wrapping the session key");
        let pk = self.cert.public_key().map_err(ssl())?;
        let mut ctx = PkeyCtx::new(&pk).map_err(ssl())?;
        ctx.encrypt_init().map_err(ssl())?;
        ctx.set_rsa_padding(Padding::PKCS1).map_err(ssl())?;
        let mut out = Vec::new();
        ctx.encrypt_to_vec(key, &mut out).map_err(ssl())?;
        Ok(out)
    }

    /// KeyTransRecipientInfo v0 with IssuerAndSerialNumber.
    fn key_trans(&self, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let ssl = || CryptoError::ssl(&self.file, "reading the certificate");
        let issuer = self.cert.issuer_name().to_der().map_err(ssl())?;
        let serial = self.cert.serial_number().to_bn().map_err(ssl())?;
        if serial.is_negative() {
            return Err(CryptoError::BadCert { file: self.file.clone(), reason: "negative serial number".into() });
        }
        let mut s = serial.to_vec();
        if s.first().is_none_or(|b| b & 0x80 != 0) {
            s.insert(0, 0);
        }
        let ias = tlv(0x30, &[issuer, tlv(0x02, &s)].concat());
        let alg = tlv(0x30, &[tlv(0x06, OID_RSA), vec![0x05, 0x00]].concat());
        Ok(tlv(0x30, &[tlv(0x02, &[0]), ias, alg, tlv(0x04, &self.wrap(key)?)].concat()))
    }
}

/// Loads recipient certificates (PEM or DER), one per file.
pub fn load_recipients(paths: &[PathBuf]) -> Result<Vec<Recipient>, CryptoError> {
    paths.iter().map(|p| Recipient::load(p)).collect()
}

/// Checks every recipient's chain against a PEM CA bundle, at `now`.
pub fn check_chain(recipients: &[Recipient], bundle: &Path, now: DateTime<Utc>) -> Result<(), CryptoError> {
    let pem = std::fs::read(bundle).map_err(CryptoError::io(bundle))?;
    let cas = X509::stack_from_pem(&pem)
        .map_err(|e| CryptoError::BadCert { file: bundle.into(), reason: format!("unreadable CA bundle: {e}") })?;
    if cas.is_empty() {
        return Err(CryptoError::BadCert { file: bundle.into(), reason: "no certificate in the CA bundle".into() });
    }
    let ssl = || CryptoError::ssl(bundle, "building the CA store");
    let mut b = X509StoreBuilder::new().map_err(ssl())?;
    for ca in cas {
        b.add_cert(ca).map_err(ssl())?;
    }
    let mut param = X509VerifyParam::new().map_err(ssl())?;
    param.set_time(now.timestamp());
    b.set_param(&param).map_err(ssl())?;
    let store = b.build();
    for r in recipients {
        let chain = Stack::new().map_err(ssl())?;
        let mut ctx = X509StoreContext::new().map_err(ssl())?;
        let verdict = ctx
            .init(&store, &r.cert, &chain, |c| {
                let ok = c.verify_cert()?;
                Ok(if ok { None } else { Some(c.error().error_string().to_string()) })
            })
            .map_err(ssl())?;
        if let Some(reason) = verdict {
            return Err(CryptoError::CertChain {
                file: r.file.clone(),
                subject: r.subject(),
                bundle: bundle.into(),
                reason,
            });
        }
    }
    Ok(())
}

/// Seals `input` into an attached DER envelope at `output` for every recipient.
pub fn seal_file(
    input: &Path,
    output: &Path,
    recipients: &[Recipient],
    cipher: Cipher,
    now: DateTime<Utc>,
) -> Result<(), CryptoError> {
    if recipients.is_empty() {
        return Err(CryptoError::NoRecipients);
    }
    for r in recipients {
        r.check_valid(now)?;
    }
    let file = File::open(input).map_err(CryptoError::io(input))?;
    let len = file.metadata().map_err(CryptoError::io(input))?.len();
    let mut key = vec![0u8; cipher.key_len()];
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut key).map_err(CryptoError::ssl(input, "random key"))?;
    openssl::rand::rand_bytes(&mut iv).map_err(CryptoError::ssl(input, "random IV"))?;
    let ris = recipients.iter().map(|r| r.key_trans(&key));
    let mut ris = ris.collect::<Result<Vec<_>, _>>()?;
    ris.sort(); // DER orders SET OF by encoding
    let ris = tlv(0x31, &ris.concat());
    let alg = tlv(0x30, &[tlv(0x06, cipher.oid()), tlv(0x04, &iv)].concat());
    let ctype = tlv(0x06, OID_DATA);
    let ct_len = (len / 16 + 1) * 16;
    let prefix = attached_prefix(&tlv(0x02, &[0]), None, &ris, &ctype, &alg, ct_len);

    let crypter = Crypter::new(cipher.symm(), Mode::Encrypt, &key, Some(&iv));
    key.iter_mut().for_each(|b| *b = 0);
    let mut crypter = crypter.map_err(CryptoError::ssl(input, "starting AES"))?;
    let mut out = Output::create(Some(input), output)?;
    out.write(&prefix, output)?;
    let mut enc = vec![0u8; CHUNK + 32];
    stream_exact(input, file, len, |chunk| {
        let m = crypter.update(chunk, &mut enc).map_err(CryptoError::ssl(input, "AES"))?;
        out.write(&enc[..m], output)
    })?;
    let m = crypter.finalize(&mut enc).map_err(CryptoError::ssl(input, "AES"))?;
    out.write(&enc[..m], output)?;
    out.commit(output, true)
}

/// Reads `file` (opened from `input`) to its end in `CHUNK` pieces, handing each to `each`, and
/// checks that exactly `len` bytes came: envelope lengths were computed from that size.
fn stream_exact(
    input: &Path,
    file: File,
    len: u64,
    mut each: impl FnMut(&[u8]) -> Result<(), CryptoError>,
) -> Result<(), CryptoError> {
    let mut reader = BufReader::with_capacity(CHUNK, file);
    let mut buf = vec![0u8; CHUNK];
    let mut seen = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CryptoError::Io { file: input.into(), source: e }),
        };
        seen += n as u64;
        each(&buf[..n])?;
    }
    if seen != len {
        return Err(CryptoError::Io {
            file: input.into(),
            source: std::io::Error::other(format!("file changed while reading ({len} bytes, then {seen})")),
        });
    }
    Ok(())
}

/// Writes an attached DER envelope at `output` from a detached one: `pkcs7` (PEM or base64,
/// as in GIR metadata) holds the recipients, `input` the raw ciphertext. Nothing is decrypted.
pub fn attach_file(input: &Path, output: &Path, pkcs7: &str) -> Result<(), CryptoError> {
    let der = decode_pkcs7(pkcs7).map_err(|e| e.at(input))?;
    let p = parse_prefix(&mut Stream::new(&der[..])).map_err(|e| e.at(input))?;
    if p.content.is_some() {
        return Err(Bad::Malformed("the pkcs7 envelope already carries content".into()).at(input));
    }
    let file = File::open(input).map_err(CryptoError::io(input))?;
    let len = file.metadata().map_err(CryptoError::io(input))?.len();
    if len == 0 || len % 16 != 0 {
        return Err(CryptoError::Malformed {
            file: input.into(),
            reason: format!("{len} bytes is not AES-CBC ciphertext (a positive multiple of 16)"),
        });
    }
    let prefix = attached_prefix(
        &p.raw_version,
        p.raw_originator.as_deref(),
        &p.raw_recipients,
        &p.raw_content_type,
        &p.raw_algorithm,
        len,
    );
    let mut out = Output::create(Some(input), output)?;
    out.write(&prefix, output)?;
    stream_exact(input, file, len, |chunk| out.write(chunk, output))?;
    out.commit(output, true)
}

/// The reverse of [`attach_file`]: writes the raw ciphertext of the attached envelope `input`
/// to `output` and returns the detached envelope as PEM (`BEGIN PKCS7`), as GIR stores media.
pub fn detach_file(input: &Path, output: &Path) -> Result<String, CryptoError> {
    let file = File::open(input).map_err(CryptoError::io(input))?;
    let mut s = Stream::new(BufReader::with_capacity(CHUNK, file));
    let p = parse_prefix(&mut s).map_err(|e| e.at(input))?;
    let Some(h) = p.content else {
        return Err(Bad::Malformed("the envelope is already detached".into()).at(input));
    };
    let mut out = Output::create(Some(input), output)?;
    let mut buf = vec![0u8; CHUNK];
    s.stream_octets(h, &mut buf, &mut |c| out.write(c, output).map_err(|e| Bad::Fail(Box::new(e))), 0)
        .map_err(|e| e.at(input))?;
    let eci = tlv(0x30, &[&p.raw_content_type[..], &p.raw_algorithm].concat());
    let env = [&p.raw_version[..], p.raw_originator.as_deref().unwrap_or_default(), &p.raw_recipients, &eci].concat();
    let ci = tlv(0x30, &[tlv(0x06, OID_ENVELOPED), tlv(0xA0, &tlv(0x30, &env))].concat());
    out.commit(output, true)?;
    let b64 = openssl::base64::encode_block(&ci);
    let mut pem = String::from("-----BEGIN PKCS7-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PKCS7-----\n");
    Ok(pem)
}

/// Everything of an attached envelope up to and including the encrypted content's header.
fn attached_prefix(
    version: &[u8],
    originator: Option<&[u8]>,
    recipients: &[u8],
    ctype: &[u8],
    alg: &[u8],
    ct_len: u64,
) -> Vec<u8> {
    let content_hdr = header(0x80, ct_len);
    let eci_len = (ctype.len() + alg.len() + content_hdr.len()) as u64 + ct_len;
    let eci_hdr = header(0x30, eci_len);
    let env_len =
        (version.len() + originator.map_or(0, <[u8]>::len) + recipients.len() + eci_hdr.len()) as u64 + eci_len;
    let env_hdr = header(0x30, env_len);
    let wrap_len = env_hdr.len() as u64 + env_len;
    let wrap_hdr = header(0xA0, wrap_len);
    let oid = tlv(0x06, OID_ENVELOPED);
    let ci_hdr = header(0x30, (oid.len() + wrap_hdr.len()) as u64 + wrap_len);
    [
        &ci_hdr[..],
        &oid,
        &wrap_hdr,
        &env_hdr,
        version,
        originator.unwrap_or_default(),
        recipients,
        &eci_hdr,
        ctype,
        alg,
        &content_hdr,
    ]
    .concat()
}

/// A DER header: tag and definite length.
fn header(tag: u8, len: u64) -> Vec<u8> {
    if len < 0x80 {
        return vec![tag, len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let mut h = vec![tag, 0x80 | (8 - skip) as u8];
    h.extend_from_slice(&bytes[skip..]);
    h
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = header(tag, content.len() as u64);
    v.extend_from_slice(content);
    v
}

#[cfg(test)]
mod tests {
    use super::header;

    #[test]
    fn der_lengths() {
        assert_eq!(header(0x04, 5), vec![0x04, 5]);
        assert_eq!(header(0x04, 0x80), vec![0x04, 0x81, 0x80]);
        assert_eq!(header(0x30, 0x1_0000), vec![0x30, 0x83, 0x01, 0x00, 0x00]);
    }
}
