//! Bad input ends in a clear error naming the file (and what it wants), never a panic, and
//! leaves no output behind: corrupt and truncated envelopes, no matching recipient, unsupported
//! algorithms, wrong or missing key passwords, expired or unchained certificates.

mod crypto_support;

use crypto_support::*;
use reclife::crypto::{check_chain, load_recipients, seal_file, Cipher, CryptoError, KeyStore};
use std::path::{Path, PathBuf};

struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    pair: Pair,
    ks: KeyStore,
    plain: PathBuf,
    sealed: PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let pair = new_pair(&dir, "rec");
    let ks = KeyStore::load(&store(&dir.join("ks"), &[(&pair.key, "k.pem"), (&pair.cert, "c.pem")]), None).unwrap();
    let plain = dir.join("plain");
    std::fs::write(&plain, sample(10_000, 9)).unwrap();
    let sealed = dir.join("sealed");
    openssl_seal(&plain, &sealed, "aes-256-cbc", &[], &[&pair.cert]);
    Fixture { _t: t, dir, pair, ks, plain, sealed }
}

fn open(f: &Fixture, input: &Path) -> (CryptoError, bool) {
    let out = f.dir.join("out");
    let _ = std::fs::remove_file(&out);
    let e = f.ks.decrypt_file(input, &out, None, &[]).expect_err("must fail");
    let leftovers =
        std::fs::read_dir(&f.dir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    (e, out.exists() || leftovers)
}

#[test]
fn truncated_and_corrupt_envelopes() {
    let f = fixture();
    let bytes = std::fs::read(&f.sealed).unwrap();
    let cut = f.dir.join("cut");
    for n in [0, 1, 3, 30, 200, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..n]).unwrap();
        let (e, left) = open(&f, &cut);
        let msg = e.to_string();
        assert!(matches!(e, CryptoError::Truncated { .. } | CryptoError::Malformed { .. }), "cut at {n}: {msg}");
        assert!(msg.contains("cut"), "names the file: {msg}");
        assert!(!left, "no output for a failed file");
    }
    let junk = f.dir.join("junk.mp3");
    std::fs::write(&junk, b"ID3\x04\x00 not an envelope").unwrap();
    let (e, _) = open(&f, &junk);
    assert!(matches!(e, CryptoError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("junk.mp3"));

    // Damaged ciphertext: the last block's padding no longer checks out.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let flipped = f.dir.join("flipped");
    std::fs::write(&flipped, &bad).unwrap();
    let (e, left) = open(&f, &flipped);
    assert!(matches!(e, CryptoError::Decrypt { .. }), "{e}");
    assert!(!left);

    // Every single-byte corruption of the header is an error or (rarely) a clean result: no panic.
    for i in 0..300.min(bytes.len()) {
        let mut b = bytes.clone();
        b[i] ^= 0xA5;
        std::fs::write(&flipped, &b).unwrap();
        let _ = f.ks.decrypt_file(&flipped, &f.dir.join("o"), None, &[]);
    }
}

#[test]
fn no_matching_recipient_names_what_the_file_wants() {
    let f = fixture();
    let other = new_pair(&f.dir, "Someone Else");
    let sealed = f.dir.join("for-other");
    openssl_seal(&f.plain, &sealed, "aes-128-cbc", &[], &[&other.cert]);
    let (e, left) = open(&f, &sealed);
    let msg = e.to_string();
    assert!(matches!(e, CryptoError::NoMatchingKey { .. }), "{msg}");
    assert!(msg.contains("CN=Someone Else") && msg.contains("serial"), "{msg}");
    assert!(msg.contains("for-other"), "{msg}");
    assert!(!left);

    let by_ski = f.dir.join("by-ski");
    openssl_seal(&f.plain, &by_ski, "aes-128-cbc", &["-keyid"], &[&other.cert]);
    let (e, _) = open(&f, &by_ski);
    assert!(e.to_string().contains("subject key id"), "{e}");
}

#[test]
fn unsupported_algorithms() {
    let f = fixture();
    let des = f.dir.join("des3");
    openssl_seal(&f.plain, &des, "des3", &[], &[&f.pair.cert]);
    let (e, _) = open(&f, &des);
    assert!(matches!(e, CryptoError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("des-ede3-cbc"), "{e}");

    let signed = f.dir.join("signed");
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-outform",
        "DER",
        "-in",
        s(&f.plain),
        "-out",
        s(&signed),
        "-signer",
        s(&f.pair.cert),
        "-inkey",
        s(&f.pair.key),
    ]);
    let (e, _) = open(&f, &signed);
    assert!(e.to_string().contains("SignedData"), "{e}");
}

#[test]
fn key_passwords() {
    let f = fixture();
    let enc = f.dir.join("enc.pem");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        s(&f.pair.key),
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:right-one",
        "-out",
        s(&enc),
    ]);
    let dir = store(&f.dir.join("encks"), &[(&enc, "k.pem"), (&f.pair.cert, "c.pem")]);
    let e = KeyStore::load(&dir, Some("wrong-one")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, CryptoError::WrongPassword { .. }) && msg.contains("k.pem"), "{msg}");
    assert!(!msg.contains("wrong-one") && !msg.contains("right-one"), "no password in errors: {msg}");
    let e = KeyStore::load(&dir, None).unwrap_err();
    assert!(matches!(e, CryptoError::NoPassword { .. }) && e.to_string().contains("RECLIFE_KEY_PASSWORD"), "{e}");
    let ks = KeyStore::load(&dir, Some("right-one")).unwrap();
    assert!(!format!("{ks:?}").contains("right-one"));

    let empty = f.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(KeyStore::load(&empty, None).unwrap_err().to_string().contains("no private keys"));
}

#[test]
fn source_is_never_overwritten() {
    let f = fixture();
    let before = std::fs::read(&f.sealed).unwrap();
    let e = f.ks.decrypt_file(&f.sealed, &f.sealed, None, &[]).unwrap_err();
    assert!(matches!(e, CryptoError::SourceOverwrite { .. }), "{e}");
    assert_eq!(std::fs::read(&f.sealed).unwrap(), before);
}

#[test]
fn sealing_checks_validity_and_chain() {
    let f = fixture();
    let r = load_recipients(std::slice::from_ref(&f.pair.cert)).unwrap();
    let past = chrono::DateTime::parse_from_rfc3339("2001-01-01T00:00:00Z").unwrap().to_utc();
    let e = seal_file(&f.plain, &f.dir.join("x"), &r, Cipher::Aes256Cbc, past).unwrap_err();
    assert!(matches!(e, CryptoError::CertNotValid { .. }) && e.to_string().contains("CN=rec"), "{e}");
    assert!(!f.dir.join("x").exists());
    assert!(matches!(
        seal_file(&f.plain, &f.dir.join("x"), &[], Cipher::Aes256Cbc, chrono::Utc::now()),
        Err(CryptoError::NoRecipients)
    ));

    // A CA, a leaf signed by it, and an unrelated CA.
    let ca = new_pair(&f.dir, "Test CA");
    let stranger = new_pair(&f.dir, "Other CA");
    let leaf_key = f.dir.join("leaf-key.pem");
    let csr = f.dir.join("leaf.csr");
    let leaf = f.dir.join("leaf-cert.pem");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(&leaf_key),
        "-out",
        s(&csr),
        "-subj",
        "/CN=leaf",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca.cert),
        "-CAkey",
        s(&ca.key),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        s(&leaf),
    ]);
    let r = load_recipients(&[leaf]).unwrap();
    check_chain(&r, &ca.cert, chrono::Utc::now()).unwrap();
    let e = check_chain(&r, &stranger.cert, chrono::Utc::now()).unwrap_err();
    assert!(matches!(e, CryptoError::CertChain { .. }) && e.to_string().contains("CN=leaf"), "{e}");
    let later = chrono::Utc::now() + chrono::Duration::days(400);
    assert!(check_chain(&r, &ca.cert, later).is_err(), "leaf expired by then");
    assert!(load_recipients(&[f.dir.join("missing.pem")]).unwrap_err().to_string().contains("missing.pem"));
}
