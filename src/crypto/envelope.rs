//! The EnvelopedData structure (RFC 5652 §6): everything before the encrypted content is read
//! into memory (it is small); the content is left in the stream for the caller to pipe.

use super::ber::{malformed, Bad, Header, Stream, Tlv};
use super::{Cipher, CryptoError};
use openssl::md::{Md, MdRef};
use std::io::Read;
use std::path::Path;

pub(crate) const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
pub(crate) const OID_ENVELOPED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
pub(crate) const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_OAEP: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x07];
const OID_MGF1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08];
const OID_AUTH_ENVELOPED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17];
const OID_SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
const OID_SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];

/// How a recipient is identified (RFC 5652 RecipientIdentifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rid {
    /// DER of the issuer Name, and the serial's magnitude without leading zeros.
    IssuerSerial {
        issuer: Vec<u8>,
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

impl std::fmt::Display for Rid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rid::IssuerSerial { issuer, serial } => {
                write!(f, "issuer \"{}\" serial {}", name_text(issuer), hex::encode(serial))
            }
            Rid::SubjectKeyId(k) => write!(f, "subject key id {}", hex::encode(k)),
        }
    }
}

/// Renders a DER Name as `CN=…, O=…` (falls back to hex if openssl cannot read it).
pub(crate) fn name_text(der: &[u8]) -> String {
    let Ok(name) = openssl::x509::X509Name::from_der(der) else { return hex::encode(der) };
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let k = e.object().nid().short_name().unwrap_or("?");
            let v = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{k}={v}")
        })
        .collect();
    parts.join(", ")
}

/// RSA key transport padding.
#[derive(Clone, Copy)]
pub(crate) enum KeyAlg {
    Pkcs1,
    Oaep { md: &'static MdRef, mgf1: &'static MdRef },
}

impl std::fmt::Debug for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAlg::Pkcs1 => f.write_str("Pkcs1"),
            KeyAlg::Oaep { md, mgf1 } => write!(f, "Oaep({:?}, mgf1 {:?})", md.type_(), mgf1.type_()),
        }
    }
}

#[derive(Debug)]
pub(crate) enum RecipientInfo {
    KeyTrans {
        rid: Rid,
        alg: Result<KeyAlg, String>,
        encrypted_key: Vec<u8>,
    },
    /// A kind reclife cannot open (key agreement, KEK, password), described for errors.
    Other(String),
}

impl RecipientInfo {
    pub fn describe(&self) -> String {
        match self {
            RecipientInfo::KeyTrans { rid, alg: Ok(_), .. } => rid.to_string(),
            RecipientInfo::KeyTrans { rid, alg: Err(a), .. } => format!("{rid} (unsupported key transport {a})"),
            RecipientInfo::Other(s) => s.clone(),
        }
    }
}

/// The parsed prefix of an envelope; the stream stands at the encrypted content.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub recipients: Vec<RecipientInfo>,
    pub cipher: Cipher,
    pub iv: Vec<u8>,
    /// Header of the `[0] IMPLICIT encryptedContent`, or `None` for a detached envelope.
    pub content: Option<Header>,
    /// Raw elements re-emitted when a detached envelope is made attached.
    pub raw_version: Vec<u8>,
    pub raw_originator: Option<Vec<u8>>,
    pub raw_recipients: Vec<u8>,
    pub raw_content_type: Vec<u8>,
    pub raw_algorithm: Vec<u8>,
}

impl Parsed {
    pub fn wanted(&self) -> String {
        let v: Vec<String> = self.recipients.iter().map(RecipientInfo::describe).collect();
        if v.is_empty() {
            "no recipient at all".into()
        } else {
            v.join("; ")
        }
    }
}

/// Reads an envelope up to its encrypted content.
pub(crate) fn parse_prefix<R: Read>(s: &mut Stream<R>) -> Result<Parsed, Bad> {
    let h = s.header("the ContentInfo")?;
    if h.tag != 0x30 {
        return Err(malformed(format!("starts with tag 0x{:02X}, not a SEQUENCE: not a CMS file", h.tag)));
    }
    let oid = s.element("the content type")?;
    let oid = Tlv::parse(&oid)?.0.expect(0x06, "content type")?;
    if oid.content == OID_AUTH_ENVELOPED {
        return Err(Bad::Unsupported("content type", "AuthEnvelopedData (AES-GCM)".into()));
    }
    if oid.content != OID_ENVELOPED {
        return Err(Bad::Unsupported("content type", oid_name(oid.content)));
    }
    expect_header(s, 0xA0, "the [0] content wrapper")?;
    expect_header(s, 0x30, "EnvelopedData")?;
    let raw_version = s.element("the version")?;
    Tlv::parse(&raw_version)?.0.expect(0x02, "version")?;
    let mut next = s.element("the recipient infos")?;
    let mut raw_originator = None;
    if next.first() == Some(&0xA0) {
        raw_originator = Some(next);
        next = s.element("the recipient infos")?;
    }
    let raw_recipients = next;
    let ris = Tlv::parse(&raw_recipients)?.0.expect(0x31, "recipient infos")?;
    let recipients = ris.children()?.iter().map(recipient_info).collect::<Result<Vec<_>, _>>()?;

    let eci = expect_header(s, 0x30, "EncryptedContentInfo")?;
    let eci_start = s.pos;
    let raw_content_type = s.element("the encrypted content type")?;
    Tlv::parse(&raw_content_type)?.0.expect(0x06, "encrypted content type")?;
    let raw_algorithm = s.element("the content-encryption algorithm")?;
    let (cipher, iv) = content_algorithm(Tlv::parse(&raw_algorithm)?.0)?;

    let at_end = matches!(eci.len, Some(l) if eci_start.checked_add(l as u64) == Some(s.pos));
    let content = if at_end {
        None
    } else {
        let h = s.header("the encrypted content")?;
        match h.tag {
            0x80 | 0xA0 => Some(h),
            0 if h.is_eoc() && eci.len.is_none() => None,
            t => return Err(malformed(format!("encrypted content has tag 0x{t:02X}"))),
        }
    };
    Ok(Parsed {
        recipients,
        cipher,
        iv,
        content,
        raw_version,
        raw_originator,
        raw_recipients,
        raw_content_type,
        raw_algorithm,
    })
}

fn expect_header<R: Read>(s: &mut Stream<R>, tag: u8, what: &str) -> Result<Header, Bad> {
    let h = s.header(what)?;
    if h.tag != tag {
        return Err(malformed(format!("{what}: expected tag 0x{tag:02X}, found 0x{:02X}", h.tag)));
    }
    Ok(h)
}

fn recipient_info(t: &Tlv<'_>) -> Result<RecipientInfo, Bad> {
    let other = |kind: &str| Ok(RecipientInfo::Other(format!("a {kind} recipient (not supported)")));
    match t.tag {
        0x30 => {}
        0xA1 => return other("key agreement"),
        0xA2 => return other("KEK"),
        0xA3 => return other("password"),
        _ => return other("other-type"),
    }
    let f = t.children()?;
    let [_version, rid, alg, key] = f.as_slice() else {
        return Err(malformed(format!("KeyTransRecipientInfo has {} fields, not 4", f.len())));
    };
    let rid = match rid.tag {
        0x30 => {
            let parts = rid.children()?;
            let [issuer, serial] = parts.as_slice() else {
                return Err(malformed("IssuerAndSerialNumber must have 2 fields"));
            };
            issuer.expect(0x30, "issuer")?;
            let serial = serial.expect(0x02, "serial number")?;
            Rid::IssuerSerial { issuer: issuer.raw.to_vec(), serial: trim_int(serial.content).to_vec() }
        }
        0x80 | 0xA0 => Rid::SubjectKeyId(rid.octets()?.into_owned()),
        t => return Err(malformed(format!("recipient identifier has tag 0x{t:02X}"))),
    };
    let alg = key_alg(alg.expect(0x30, "key encryption algorithm")?)?;
    let encrypted_key = key.expect(0x04, "encrypted key")?.octets()?.into_owned();
    Ok(RecipientInfo::KeyTrans { rid, alg, encrypted_key })
}

/// Strips the sign-padding zeros of a DER INTEGER so serials compare by value.
pub(crate) fn trim_int(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    &b[n.min(b.len().saturating_sub(1))..]
}

fn key_alg(alg: Tlv<'_>) -> Result<Result<KeyAlg, String>, Bad> {
    let f = alg.children()?;
    let oid = f.first().ok_or_else(|| malformed("empty algorithm identifier"))?.expect(0x06, "algorithm")?;
    if oid.content == OID_RSA {
        return Ok(Ok(KeyAlg::Pkcs1));
    }
    if oid.content != OID_OAEP {
        return Ok(Err(oid_name(oid.content)));
    }
    // RSAES-OAEP-params: [0] hash, [1] maskGen, [2] pSource; SHA-1 and MGF1-SHA-1 by default.
    let (mut md, mut mgf1) = (Ok(Md::sha1()), Ok(Md::sha1()));
    if let Some(params) = f.get(1).filter(|p| p.tag == 0x30) {
        for p in params.children()? {
            let inner = Tlv::parse(p.content)?.0;
            match p.tag {
                0xA0 => md = digest(inner)?,
                0xA1 => {
                    let g = inner.children()?;
                    let (Some(g_oid), Some(g_hash)) = (g.first(), g.get(1)) else {
                        return Err(malformed("OAEP mask generation without parameters"));
                    };
                    if g_oid.content != OID_MGF1 {
                        return Ok(Err(format!("OAEP mask generation {}", oid_name(g_oid.content))));
                    }
                    mgf1 = digest(*g_hash)?;
                }
                _ => {}
            }
        }
    }
    Ok(match (md, mgf1) {
        (Ok(md), Ok(mgf1)) => Ok(KeyAlg::Oaep { md, mgf1 }),
        (Err(e), _) | (_, Err(e)) => Err(format!("RSA-OAEP with {e}")),
    })
}

fn digest(alg: Tlv<'_>) -> Result<Result<&'static MdRef, String>, Bad> {
    let f = alg.children()?;
    let oid = f.first().ok_or_else(|| malformed("empty digest algorithm"))?.content;
    Ok(match oid {
        OID_SHA1 => Ok(Md::sha1()),
        o if o.len() == 9 && o.starts_with(OID_SHA2) => match o[8] {
            1 => Ok(Md::sha256()),
            2 => Ok(Md::sha384()),
            3 => Ok(Md::sha512()),
            4 => Ok(Md::sha224()),
            _ => Err(oid_name(o)),
        },
        o => Err(oid_name(o)),
    })
}

fn content_algorithm(alg: Tlv<'_>) -> Result<(Cipher, Vec<u8>), Bad> {
    let f = alg.expect(0x30, "content-encryption algorithm")?.children()?;
    let oid = f.first().ok_or_else(|| malformed("empty content-encryption algorithm"))?;
    let oid = oid.expect(0x06, "content-encryption algorithm")?;
    let cipher = Cipher::from_oid(oid.content)
        .ok_or_else(|| Bad::Unsupported("content-encryption algorithm", oid_name(oid.content)))?;
    let iv = f.get(1).ok_or_else(|| malformed(format!("{cipher} without an IV")))?.expect(0x04, "IV")?.octets()?;
    if iv.len() != 16 {
        return Err(malformed(format!("{cipher} IV of {} bytes, not 16", iv.len())));
    }
    Ok((cipher, iv.into_owned()))
}

/// A readable name for an OID: well-known names, else dotted decimal.
pub(crate) fn oid_name(oid: &[u8]) -> String {
    const KNOWN: &[(&[u8], &str)] = &[
        (&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x07], "des-ede3-cbc (1.2.840.113549.3.7)"),
        (&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x02], "rc2-cbc (1.2.840.113549.3.2)"),
        (&[0x2B, 0x0E, 0x03, 0x02, 0x07], "des-cbc (1.3.14.3.2.7)"),
        (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06], "aes-128-gcm (2.16.840.1.101.3.4.1.6)"),
        (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2E], "aes-256-gcm (2.16.840.1.101.3.4.1.46)"),
        (&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02], "SignedData (1.2.840.113549.1.7.2)"),
        (&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01], "Data (1.2.840.113549.1.7.1)"),
    ];
    if let Some((_, n)) = KNOWN.iter().find(|(o, _)| *o == oid) {
        return n.to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut v: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        v = (v << 7) | (b & 0x7F) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first.to_string());
                parts.push((v - first * 40).to_string());
            } else {
                parts.push(v.to_string());
            }
            v = 0;
        }
        if i > 64 {
            break;
        }
    }
    format!("OID {}", parts.join("."))
}

/// What [`inspect`] learns about an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The recipients, as named in errors (issuer and serial, or subject key id).
    pub recipients: Vec<String>,
    pub cipher: Cipher,
    /// Bytes of encrypted content (`None`: detached envelope).
    pub content_len: Option<u64>,
}

/// Parses a whole envelope from `r` without keys: its recipients, cipher and content size.
/// The content is read and dropped chunk by chunk. This is the fuzz target's entry point.
pub fn inspect<R: Read>(r: R, name: &Path) -> Result<EnvelopeInfo, CryptoError> {
    let mut s = Stream::new(r);
    let p = parse_prefix(&mut s).map_err(|e| e.at(name))?;
    let content_len = match p.content {
        None => None,
        Some(h) => {
            let mut buf = vec![0u8; 64 << 10];
            Some(s.stream_octets(h, &mut buf, &mut |_| Ok(()), 0).map_err(|e| e.at(name))?)
        }
    };
    Ok(EnvelopeInfo {
        recipients: p.recipients.iter().map(RecipientInfo::describe).collect(),
        cipher: p.cipher,
        content_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_names() {
        assert_eq!(oid_name(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05]), "OID 1.2.840.113549.1.1.5");
        assert!(oid_name(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x07]).starts_with("des-ede3-cbc"));
        assert_eq!(trim_int(&[0, 0, 0x81]), &[0x81]);
        assert_eq!(trim_int(&[0]), &[0]);
    }

    #[test]
    fn committed_fixture_parses() {
        let f = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/recordings/cc1/Environment/2025/06/24/CALLC0000000000000000000000000003/",
            "CALLC0000000000000000000000000003_0001.mp3"
        );
        let info = inspect(std::fs::File::open(f).unwrap(), Path::new(f)).unwrap();
        assert_eq!(info.cipher, Cipher::Aes256Cbc);
        assert_eq!(info.recipients.len(), 1);
        assert!(info.recipients[0].contains("CN=reclife test recording key"), "{:?}", info.recipients);
        let plain = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/media/voice-880.mp3")).unwrap();
        assert_eq!(info.content_len, Some((plain.len() / 16 + 1) * 16));
    }
}
