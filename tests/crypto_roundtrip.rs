//! Property test: whatever the content and cipher, what reclife seals reclife opens, byte for
//! byte, and the envelope reports the cipher and the exact ciphertext size.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use proptest::prelude::*;
use reclife::crypto::{inspect, load_recipients, seal_file, Cipher, KeyStore, Recipient};
use std::sync::OnceLock;

struct Keys {
    dir: tempfile::TempDir,
    store: KeyStore,
    recipients: Vec<Recipient>,
}

/// Two small RSA keys with self-signed certificates, made once for the whole binary.
fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut certs = Vec::new();
        for (i, name) in ["first", "second"].iter().enumerate() {
            let key = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
            let mut n = X509NameBuilder::new().unwrap();
            n.append_entry_by_text("CN", name).unwrap();
            let n = n.build();
            let mut b = X509::builder().unwrap();
            b.set_version(2).unwrap();
            b.set_serial_number(&BigNum::from_u32(1000 + i as u32).unwrap().to_asn1_integer().unwrap()).unwrap();
            b.set_subject_name(&n).unwrap();
            b.set_issuer_name(&n).unwrap();
            b.set_pubkey(&key).unwrap();
            b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
            b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
            let cert = dir.path().join(format!("{name}.crt"));
            std::fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
            certs.push(cert);
        }
        let store = KeyStore::load(dir.path(), None).unwrap();
        let recipients = load_recipients(&certs).unwrap();
        Keys { dir, store, recipients }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn seal_then_open(data in proptest::collection::vec(any::<u8>(), 0..6000), c in 0usize..3, both in any::<bool>()) {
        let k = keys();
        let cipher = Cipher::ALL[c];
        let t = tempfile::tempdir_in(k.dir.path()).unwrap();
        let (plain, sealed, out) = (t.path().join("p"), t.path().join("s"), t.path().join("o"));
        std::fs::write(&plain, &data).unwrap();
        let recipients = if both { &k.recipients[..] } else { &k.recipients[1..] };
        seal_file(&plain, &sealed, recipients, cipher, chrono::Utc::now()).unwrap();
        let info = inspect(std::fs::File::open(&sealed).unwrap(), &sealed).unwrap();
        prop_assert_eq!(info.cipher, cipher);
        prop_assert_eq!(info.recipients.len(), recipients.len());
        prop_assert_eq!(info.content_len, Some((data.len() as u64 / 16 + 1) * 16));
        k.store.decrypt_file(&sealed, &out, None, &[]).unwrap();
        prop_assert_eq!(std::fs::read(&out).unwrap(), data);
    }
}

/// A real envelope to mutate: a BER (`-stream`) one from the fuzz corpus.
const SEED: &[u8] = include_bytes!("../fuzz/corpus/envelope/ber-keyid-aes256");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    /// The fuzz target's property on stable Rust: any bytes, or a real envelope with bytes
    /// overwritten or cut, parse to a result or an error, never a panic.
    #[test]
    fn parser_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let _ = inspect(&junk[..], std::path::Path::new("junk"));
        let mut b = SEED.to_vec();
        for (i, v) in edits {
            let n = b.len();
            b[i % n] = v;
        }
        b.truncate(cut % (b.len() + 1));
        let _ = inspect(&b[..], std::path::Path::new("mutated"));
    }
}

/// The 12-byte file that made the parser panic: an OID with an 8-byte length of 2^64 - 5.
const LONG_LENGTH_12: [u8; 12] = [0x30, 0x80, 0x06, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB];

#[test]
fn an_eight_byte_length_is_an_error_not_a_panic() {
    let e = inspect(&LONG_LENGTH_12[..], std::path::Path::new("twelve.bin")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("twelve.bin"), "the error names the file: {msg}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    /// Long-form lengths (1 to 8 length bytes, any value, near-maximal ones included) spliced
    /// in where an element header starts: every position-plus-length sum is checked.
    #[test]
    fn long_form_lengths_never_panic(
        at in any::<usize>(),
        tag in any::<u8>(),
        n in 1usize..=8,
        value in prop_oneof![any::<u64>(), Just(u64::MAX), Just(u64::MAX - 4), Just(1u64 << 48), Just((1u64 << 48) + 1)],
        keep_tail in any::<bool>(),
    ) {
        let mut b = SEED.to_vec();
        let at = at % b.len();
        let mut header = vec![tag, 0x80 | n as u8];
        header.extend_from_slice(&value.to_be_bytes()[8 - n..]);
        let tail = if keep_tail { b.split_off(at) } else { Vec::new() };
        b.truncate(at);
        b.extend_from_slice(&header);
        b.extend_from_slice(&tail);
        let _ = inspect(&b[..], std::path::Path::new("long-form"));
        // And as a whole file of its own, after a constructed indefinite-length header.
        let mut f = vec![0x30, 0x80];
        f.extend_from_slice(&header);
        let _ = inspect(&f[..], std::path::Path::new("long-form-alone"));
    }
}
