//! Interop with the openssl CLI, both ways: openssl seals and reclife opens (DER and `-stream`
//! BER, PKCS#1/PKCS#8/encrypted PKCS#8 keys, OAEP, subject key ids, two keys in the store), and
//! reclife seals and `openssl cms -decrypt` opens. Also the detached form GIR uses.

mod crypto_support;

use crypto_support::*;
use reclife::crypto::{attach_file, detach_file, inspect, load_recipients, seal_file, Cipher, KeyStore};
use std::path::Path;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[test]
fn openssl_seals_reclife_opens_every_key_format() {
    let t = tempfile::tempdir().unwrap();
    let p = new_pair(t.path(), "rec");
    let pkcs1 = t.path().join("pkcs1.pem");
    openssl(&["pkey", "-in", s(&p.key), "-traditional", "-out", s(&pkcs1)]);
    assert!(std::fs::read_to_string(&pkcs1).unwrap().contains("BEGIN RSA PRIVATE KEY"));
    let enc = t.path().join("enc.pem");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        s(&p.key),
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:s3cret pass",
        "-out",
        s(&enc),
    ]);
    assert!(std::fs::read_to_string(&enc).unwrap().contains("BEGIN ENCRYPTED PRIVATE KEY"));

    let plain = t.path().join("voice.mp3");
    std::fs::write(&plain, sample(100_003, 1)).unwrap();
    for (i, (key, pw)) in [(&p.key, None), (&pkcs1, None), (&enc, Some("s3cret pass"))].into_iter().enumerate() {
        let ks = KeyStore::load(&store(&t.path().join(format!("ks{i}")), &[(key, "k.pem"), (&p.cert, "k.crt")]), pw)
            .unwrap();
        for cipher in ["aes-128-cbc", "aes-256-cbc"] {
            let sealed = t.path().join(format!("sealed-{i}-{cipher}"));
            openssl_seal(&plain, &sealed, cipher, &[], &[&p.cert]);
            let out = t.path().join(format!("open-{i}-{cipher}"));
            ks.decrypt_file(&sealed, &out, None, &[]).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap(), "key {i} {cipher}");
            let info = inspect(std::fs::File::open(&sealed).unwrap(), &sealed).unwrap();
            assert_eq!(info.cipher.name(), cipher);
        }
    }
}

#[test]
fn ber_stream_oaep_and_subject_key_id() {
    let t = tempfile::tempdir().unwrap();
    let p = new_pair(t.path(), "rec");
    let ks = KeyStore::load(&store(&t.path().join("ks"), &[(&p.key, "k.pem"), (&p.cert, "c.pem")]), None).unwrap();
    let plain = t.path().join("screen.mp4");
    // Several MB so the BER content arrives in many segments and many AES chunks.
    std::fs::write(&plain, sample(3 * 1024 * 1024 + 5, 2)).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("stream", &["-stream"]),
        ("oaep", &["-keyopt", "rsa_padding_mode:oaep"]),
        (
            "oaep256",
            &["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"],
        ),
        ("keyid", &["-keyid", "-stream"]),
        ("aes192", &[]),
    ];
    for (name, extra) in cases {
        let sealed = t.path().join(format!("{name}.bin"));
        let cipher = if *name == "aes192" { "aes-192-cbc" } else { "aes-256-cbc" };
        openssl_seal(&plain, &sealed, cipher, extra, &[&p.cert]);
        let head = std::fs::read(&sealed).unwrap();
        if extra.contains(&"-stream") {
            assert_eq!(&head[..2], &[0x30, 0x80], "{name}: openssl -stream writes indefinite lengths");
        }
        let out = t.path().join(format!("{name}.out"));
        ks.decrypt_file(&sealed, &out, None, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(std::fs::read(&out).unwrap() == std::fs::read(&plain).unwrap(), "{name}: content differs");
    }
}

#[test]
fn reclife_seals_openssl_opens_for_each_recipient() {
    let t = tempfile::tempdir().unwrap();
    let a = new_pair(t.path(), "old");
    let b = new_pair(t.path(), "new");
    let recipients = load_recipients(&[a.cert.clone(), b.cert.clone()]).unwrap();
    for (len, cipher) in [(0usize, Cipher::Aes128Cbc), (16, Cipher::Aes192Cbc), (70_001, Cipher::Aes256Cbc)] {
        let plain = t.path().join(format!("in-{len}"));
        std::fs::write(&plain, sample(len, 3)).unwrap();
        let sealed = t.path().join(format!("sealed-{len}"));
        seal_file(&plain, &sealed, &recipients, cipher, now()).unwrap();
        let info = inspect(std::fs::File::open(&sealed).unwrap(), &sealed).unwrap();
        assert_eq!((info.cipher, info.recipients.len()), (cipher, 2));
        for pair in [&a, &b] {
            let out = t.path().join("openssl.out");
            openssl_open(&sealed, &pair.key, &out);
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap(), "{cipher} len {len}");
        }
        // openssl parses it as strict DER too.
        let (ok, err) = openssl_status(&["cms", "-cmsout", "-inform", "DER", "-in", s(&sealed), "-noout"]);
        assert!(ok, "{err}");
    }
}

#[test]
fn two_keys_with_the_wrong_one_found_first() {
    let t = tempfile::tempdir().unwrap();
    let wrong = new_pair(t.path(), "aaa-old");
    let right = new_pair(t.path(), "zzz-new");
    let dir = store(
        &t.path().join("ks"),
        &[
            (&wrong.key, "a-key.pem"),
            (&wrong.cert, "a-cert.pem"),
            (&right.key, "b-key.pem"),
            (&right.cert, "b-cert.pem"),
        ],
    );
    let ks = KeyStore::load(&dir, None).unwrap();
    assert_eq!(ks.len(), 2);
    let plain = t.path().join("p");
    std::fs::write(&plain, sample(5000, 4)).unwrap();
    let sealed = t.path().join("sealed");
    openssl_seal(&plain, &sealed, "aes-128-cbc", &[], &[&right.cert]);
    let out = t.path().join("out");
    // Even an alias pointing at the wrong key does not stop the recipient's own key.
    ks.decrypt_file(&sealed, &out, None, &["a-cert".to_string()]).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
}

#[test]
fn committed_fixture_opens_with_committed_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let ks = KeyStore::load(&root.join("keys"), None).unwrap();
    let sealed = root.join(
        "recordings/cc1/Environment/2025/06/24/CALLC0000000000000000000000000003/CALLC0000000000000000000000000003_0001.mp3",
    );
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("voice.mp3");
    ks.decrypt_file(&sealed, &out, None, &["recording-cert".to_string()]).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(root.join("media/voice-880.mp3")).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn detached_form_opens_and_converts_to_attached() {
    let t = tempfile::tempdir().unwrap();
    let p = new_pair(t.path(), "rec");
    let ks = KeyStore::load(&store(&t.path().join("ks"), &[(&p.key, "k.pem"), (&p.cert, "c.pem")]), None).unwrap();
    let plain = t.path().join("voice.wav");
    std::fs::write(&plain, sample(40_000, 5)).unwrap();
    let sealed = t.path().join("sealed");
    openssl_seal(&plain, &sealed, "aes-256-cbc", &["-stream"], &[&p.cert]);

    let raw = t.path().join("raw.bin");
    let pem = detach_file(&sealed, &raw).unwrap();
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), (40_000 / 16 + 1) * 16);
    let pem_file = t.path().join("pkcs7.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    // openssl reads the detached envelope (no content) as a valid CMS structure.
    let (ok, err) = openssl_status(&["cms", "-cmsout", "-inform", "PEM", "-in", s(&pem_file), "-noout"]);
    assert!(ok, "{err}");

    // GIR metadata carries PEM, or bare base64: both open the raw ciphertext.
    let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for pkcs7 in [pem.as_str(), bare.as_str()] {
        let out = t.path().join("detached.out");
        ks.decrypt_file(&raw, &out, Some(pkcs7), &[]).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
    }

    let attached = t.path().join("attached.bin");
    attach_file(&raw, &attached, &bare).unwrap();
    let out = t.path().join("openssl.out");
    openssl_open(&attached, &p.key, &out);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
}
