//! Decrypt throughput (MB/s on one core) and per-file overhead of `KeyStore::decrypt_file`.
//! `benches/crypto_vs_openssl.sh` compares the same work with `openssl cms -decrypt`.
//!
//!     cargo bench --bench crypto

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use reclife::crypto::{load_recipients, seal_file, Cipher, KeyStore};
use std::path::{Path, PathBuf};

fn setup(dir: &Path) -> (KeyStore, PathBuf) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", "bench").unwrap();
    let n = n.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let cert = keys.join("bench-cert.pem");
    std::fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
    std::fs::write(keys.join("bench-key.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (KeyStore::load(&keys, None).unwrap(), cert)
}

fn sealed(dir: &Path, cert: &Path, name: &str, len: usize) -> PathBuf {
    let plain = dir.join(format!("{name}.plain"));
    let data: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&plain, data).unwrap();
    let out = dir.join(format!("{name}.sealed"));
    let r = load_recipients(&[cert.to_path_buf()]).unwrap();
    seal_file(&plain, &out, &r, Cipher::Aes256Cbc, chrono::Utc::now()).unwrap();
    out
}

fn decrypt(c: &mut Criterion) {
    let t = tempfile::tempdir().unwrap();
    let (ks, cert) = setup(t.path());
    let big = sealed(t.path(), &cert, "big", 50 << 20);
    let small = sealed(t.path(), &cert, "small", 50 << 10);
    let out = t.path().join("out");

    let mut g = c.benchmark_group("decrypt");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(50 << 20));
    g.bench_function("50MB aes-256-cbc", |b| b.iter(|| ks.decrypt_file(&big, &out, None, &[]).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("per-file");
    g.throughput(Throughput::Elements(1));
    g.bench_function("50KB aes-256-cbc", |b| b.iter(|| ks.decrypt_file(&small, &out, None, &[]).unwrap()));
    g.finish();
}

criterion_group!(benches, decrypt);
criterion_main!(benches);
