//! Every input of the fuzz corpora (`fuzz/corpus/<target>`, where `bash fuzz/run.sh` keeps what
//! the fuzzers found interesting, crashes included once fixed) through the real binary: each
//! gets an answer or an error naming it, never a panic (the `media_bytes` parsers, which have no
//! command of their own, run in this process; the `api_query` inputs go to a real `reclife
//! serve` as the query strings of its listings).

mod api_support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    // Keep CI bounded however large a corpus grows.
    out.truncate(200);
    out
}

fn reclife(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .arg("--data-dir")
        .arg(data)
        .arg("-q")
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn no_panic(what: &Path, (code, err): (Option<i32>, String)) {
    assert!(code.is_some() && code != Some(101), "{}: killed or panicked ({code:?}): {err}", what.display());
    assert!(!err.contains("panicked"), "{}: {err}", what.display());
}

#[test]
fn every_corpus_input_gets_an_answer_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys");
    let mut n = 0;
    for f in corpus("envelope") {
        let out = tmp.path().join("out");
        no_panic(
            &f,
            reclife(
                &data,
                &["decrypt", "--key-dir", keys.to_str().unwrap(), f.to_str().unwrap(), "--out", out.to_str().unwrap()],
            ),
        );
        n += 1;
    }
    for f in corpus("metadata") {
        let dir = tmp.path().join(format!("meta-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&f, dir.join("meta-data.json")).unwrap();
        no_panic(&f, reclife(&data, &["ingest", dir.to_str().unwrap()]));
        n += 1;
    }
    for f in corpus("zip_ingest") {
        no_panic(&f, reclife(&data, &["ingest", f.to_str().unwrap()]));
        n += 1;
    }
    for f in corpus("rule") {
        let dir = tmp.path().join(format!("rules-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&f, dir.join("rule.toml")).unwrap();
        no_panic(&f, reclife(&data, &["rules", "validate", dir.to_str().unwrap()]));
        n += 1;
    }
    for f in corpus("config") {
        no_panic(&f, reclife(&data, &["--config", f.to_str().unwrap(), "rules", "list"]));
        n += 1;
    }
    assert!(n >= 10, "the corpora are there ({n} inputs)");
}

/// The muxer's own byte parsers (MP4 boxes up to the screen's sample description, MP3 frames and
/// the LAME tag) over the `media_bytes` corpus, in this process: a panic fails the test naming
/// the input.
#[test]
fn media_corpus_inputs_parse_without_a_panic() {
    let inputs = corpus("media_bytes");
    assert!(inputs.len() >= 5, "the media_bytes corpus is there ({} inputs)", inputs.len());
    for f in inputs {
        let data = std::fs::read(&f).unwrap();
        let r = std::panic::catch_unwind(|| reclife::media::parse_untrusted(&data));
        assert!(r.is_ok(), "{}: the media parsers panicked", f.display());
    }
}

/// Every `api_query` input as the query string of each RWS listing of a real `reclife serve`:
/// a page, or a client error in the envelope; never a server error, a dropped connection or a
/// panic in the log.
#[test]
fn api_query_corpus_inputs_get_a_page_or_a_client_error() {
    let inputs = corpus("api_query");
    assert!(inputs.len() >= 10, "the api_query corpus is there ({} inputs)", inputs.len());
    let node = api_support::Node::new(0);
    let s = node.serve(&[]);
    let listings = ["/api/v2/recordings", "/api/v2/screen-recordings", "/api/v2/ops/contact-centers/cc1/recordings"];
    for f in &inputs {
        let q =
            std::fs::read_to_string(f).unwrap_or_else(|_| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into());
        for path in listings {
            let url = format!("{}{path}?{}", s.url, q.trim_end());
            let r = s.client().get(&url).basic_auth(api_support::OPS.0, Some(api_support::OPS.1)).send();
            let r = r.unwrap_or_else(|e| panic!("{}: {path}: no answer: {e}", f.display()));
            let st = r.status();
            let v: serde_json::Value = r.json().unwrap_or_else(|e| panic!("{}: {path}: not JSON: {e}", f.display()));
            assert!(st.is_success() || st.is_client_error(), "{}: {path}: {st} {v}", f.display());
            assert_eq!(st.is_success(), v["statusCode"] == 0, "{}: {path}: {st} {v}", f.display());
        }
    }
    let log = api_support::read(&s.stderr);
    assert!(!log.contains("panicked"), "{log}");
}
