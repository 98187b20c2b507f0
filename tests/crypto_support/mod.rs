//! Helpers shared by the crypto tests: the openssl CLI as the oracle, keys made in temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl ARGS…`; panics with its stderr when it fails.
pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl CLI is installed");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `openssl ARGS…` and returns (success, stderr).
pub fn openssl_status(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl CLI is installed");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A key (PKCS#8 PEM) and its self-signed certificate.
pub struct Pair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// Makes `<dir>/<name>-key.pem` and `<dir>/<name>-cert.pem` (RSA 2048, CN=`<name>`).
pub fn new_pair(dir: &Path, name: &str) -> Pair {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    let subj = format!("/CN={name}/O=reclife tests");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(&key),
        "-out",
        s(&cert),
        "-days",
        "3650",
        "-subj",
        &subj,
    ]);
    Pair { key, cert }
}

/// Deterministic bytes that do not repeat with the AES block size.
pub fn sample(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// `openssl cms -encrypt -binary -outform DER FLAGS… -CIPHER -in IN -out OUT -recip CERT… KEYOPTS…`
/// (`-keyopt` pairs in `extra` go after the recipients, as openssl requires).
pub fn openssl_seal(input: &Path, output: &Path, cipher: &str, extra: &[&str], certs: &[&Path]) {
    let mut args = vec!["cms", "-encrypt", "-binary", "-outform", "DER"];
    let mut keyopts = Vec::new();
    let mut it = extra.iter();
    while let Some(a) = it.next() {
        if *a == "-keyopt" {
            keyopts.push(*a);
            keyopts.push(it.next().expect("-keyopt takes a value"));
        } else {
            args.push(a);
        }
    }
    let c = format!("-{cipher}");
    args.extend_from_slice(&[&c, "-in", s(input), "-out", s(output)]);
    for cert in certs {
        args.extend_from_slice(&["-recip", s(cert)]);
    }
    args.extend(keyopts);
    openssl(&args);
}

/// `openssl cms -decrypt -inform DER -binary -inkey KEY -in IN -out OUT`
pub fn openssl_open(input: &Path, key: &Path, output: &Path) {
    openssl(&["cms", "-decrypt", "-inform", "DER", "-binary", "-inkey", s(key), "-in", s(input), "-out", s(output)]);
}

/// A key store folder holding copies of the given files under the given names.
pub fn store(dir: &Path, files: &[(&Path, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (src, name) in files {
        std::fs::copy(src, dir.join(name)).unwrap();
    }
    dir.to_path_buf()
}
