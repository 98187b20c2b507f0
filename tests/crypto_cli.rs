//! `reclife encrypt` and `reclife decrypt` end to end on the built binary, with the openssl CLI
//! as the oracle; a bad file in a batch is named and the rest go on (exit status 3).

mod crypto_support;

use crypto_support::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn reclife(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .env_remove("RECLIFE_NOW")
        .env_remove("RECLIFE_KEY_PASSWORD")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn encrypt_then_decrypt_a_batch() {
    let t = tempfile::tempdir().unwrap();
    let a = new_pair(t.path(), "alpha");
    let b = new_pair(t.path(), "beta");
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let (one, two) = (src.join("one.mp3"), src.join("two.wav"));
    std::fs::write(&one, sample(12_345, 1)).unwrap();
    std::fs::write(&two, sample(777, 2)).unwrap();
    let missing = src.join("missing.mp3");
    let sealed = t.path().join("sealed");

    let (code, out, err) = reclife(&[
        "encrypt",
        "--cert",
        s(&a.cert),
        "--cert",
        s(&b.cert),
        "--cipher",
        "aes-128-cbc",
        s(&one),
        s(&missing),
        s(&two),
        "--out",
        s(&sealed),
    ]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("missing.mp3"), "{err}");
    assert!(out.contains("encrypted 2 of 3"), "{out}");
    for (f, pair) in [("one.mp3", &a), ("two.wav", &b)] {
        let o = t.path().join("oracle");
        openssl_open(&sealed.join(f), &pair.key, &o);
        assert_eq!(std::fs::read(&o).unwrap(), std::fs::read(src.join(f)).unwrap());
    }

    let keys = store(&t.path().join("keys"), &[(&b.key, "beta-key.pem"), (&b.cert, "beta-cert.pem")]);
    let plain = t.path().join("plain");
    let (code, out, err) = reclife(&[
        "decrypt",
        "--key-dir",
        s(&keys),
        s(&sealed.join("one.mp3")),
        s(&sealed.join("two.wav")),
        "--out",
        s(&plain),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for f in ["one.mp3", "two.wav"] {
        assert_eq!(std::fs::read(plain.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap());
        assert_eq!(std::fs::metadata(plain.join(f)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Decrypting into the source folder would overwrite the source: refused, source intact.
    let before = std::fs::read(sealed.join("one.mp3")).unwrap();
    let (code, _, err) = reclife(&["decrypt", "--key-dir", s(&keys), s(&sealed.join("one.mp3")), "--out", s(&sealed)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("over the source"), "{err}");
    assert_eq!(std::fs::read(sealed.join("one.mp3")).unwrap(), before);

    // A file sealed for someone else is named with the recipient it wants; the batch goes on.
    let other = new_pair(t.path(), "gamma");
    let foreign = t.path().join("foreign.mp3");
    openssl_seal(&one, &foreign, "aes-256-cbc", &[], &[&other.cert]);
    let plain2 = t.path().join("plain2");
    let (code, _, err) =
        reclife(&["decrypt", "--key-dir", s(&keys), s(&foreign), s(&sealed.join("two.wav")), "--out", s(&plain2)]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("foreign.mp3") && err.contains("CN=gamma"), "{err}");
    assert!(plain2.join("two.wav").exists() && !plain2.join("foreign.mp3").exists());
}

#[test]
fn expired_certificate_is_refused_with_now() {
    let t = tempfile::tempdir().unwrap();
    let a = new_pair(t.path(), "alpha");
    let f = t.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let (code, _, err) = reclife(&[
        "--now",
        "2099-01-01T00:00:00Z",
        "encrypt",
        "--cert",
        s(&a.cert),
        s(&f),
        "--out",
        s(&t.path().join("o")),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not valid at 2099"), "{err}");
}

#[test]
fn decrypt_detached_with_pkcs7() {
    let t = tempfile::tempdir().unwrap();
    let a = new_pair(t.path(), "alpha");
    let plain = t.path().join("voice.mp3");
    std::fs::write(&plain, sample(3000, 7)).unwrap();
    let sealed = t.path().join("sealed.mp3");
    openssl_seal(&plain, &sealed, "aes-128-cbc", &[], &[&a.cert]);
    let raw = t.path().join("raw").join("voice.mp3");
    std::fs::create_dir(raw.parent().unwrap()).unwrap();
    let pem = reclife::crypto::detach_file(&sealed, &raw).unwrap();
    let pkcs7 = t.path().join("pkcs7.txt");
    std::fs::write(&pkcs7, pem).unwrap();
    let keys = store(&t.path().join("keys"), &[(&a.key, "alpha-key.pem"), (&a.cert, "alpha-cert.pem")]);
    let out = t.path().join("plain");
    let (code, o, err) = reclife(&[
        "decrypt",
        "--key-dir",
        s(&keys),
        "--pkcs7",
        s(&pkcs7),
        "--cert-alias",
        "alpha-cert",
        s(&raw),
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{o}{err}");
    assert_eq!(std::fs::read(out.join("voice.mp3")).unwrap(), std::fs::read(&plain).unwrap());
}

#[test]
fn a_hostile_twelve_byte_file_fails_alone_and_the_batch_goes_on() {
    let t = tempfile::tempdir().unwrap();
    let keys = t.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let a = new_pair(&keys, "alpha");
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let good = src.join("good.mp3");
    std::fs::write(&good, sample(4_000, 3)).unwrap();
    let sealed = t.path().join("sealed");
    let (code, out, err) = reclife(&["encrypt", "--cert", s(&a.cert), s(&good), "--out", s(&sealed)]);
    assert_eq!(code, 0, "{out}{err}");
    let hostile = sealed.join("hostile.bin");
    std::fs::write(&hostile, [0x30, 0x80, 0x06, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB]).unwrap();
    let sealed_good = std::fs::read_dir(&sealed).unwrap().map(|e| e.unwrap().path()).find(|p| p != &hostile).unwrap();
    let plain = t.path().join("plain");
    let (code, out, err) =
        reclife(&["decrypt", "--key-dir", s(&keys), s(&hostile), s(&sealed_good), "--out", s(&plain)]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("hostile.bin"), "the bad file is named: {err}");
    assert!(out.contains("decrypted 1 of 2"), "{out}");
    let restored = std::fs::read_dir(&plain).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read(restored).unwrap(), sample(4_000, 3));
}
