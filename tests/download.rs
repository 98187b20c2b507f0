//! `reclife download` against real servers: `reclife serve` over recordings whose media is on
//! SeaweedFS (deploy/servers.sh). Layout, never twice, resume, slices, checkpoint, overlap,
//! patterns, instances, the lock, bad configs, a 401, a missing object.

mod download_support;
mod storage_support;

use reclife::storage::MediaStoreExt as _;

use download_support::*;
use std::path::Path;

const NOW: &str = "2025-03-12T06:00:00Z";

fn four() -> Vec<Rec> {
    vec![
        Rec::new(
            "RECA",
            "2025-03-10T09:15:00Z",
            "2025-03-10T09:20:00Z",
            vec![Media::new("A.mp3", "audio/mp3", content(1, 40_000))],
        ),
        // Crosses midnight: found with the slice it started in, once.
        Rec::new(
            "RECB",
            "2025-03-10T23:58:00Z",
            "2025-03-11T00:03:00Z",
            vec![
                Media::new("B.mp3", "audio/mp3", content(2, 30_000)),
                Media::new("B.mp4", "video/mp4", content(3, 90_000)),
            ],
        ),
        Rec::new(
            "RECC",
            "2025-03-11T12:00:00Z",
            "2025-03-11T12:05:00Z",
            vec![
                Media::new("C.mp3", "audio/mp3", content(4, 20_000)),
                Media::new("C.wav", "audio/wav", content(5, 10_000)),
            ],
        ),
        Rec::new(
            "RECD",
            "2025-03-12T01:00:00Z",
            "2025-03-12T01:10:00Z",
            vec![Media::new("D.mp3", "audio/mp3", content(6, 50_000))],
        ),
    ]
}

fn node_with(recs: &[Rec]) -> Option<Node> {
    let mut n = Node::new()?;
    n.ingest(recs);
    n.serve();
    Some(n)
}

/// The tree a full download of [`four`] must leave, media only (metadata checked apart).
fn expected_media(recs: &[Rec], pattern: &str) -> Vec<(String, Vec<u8>)> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
    let mut out = Vec::new();
    for r in recs {
        let t = chrono::DateTime::parse_from_rfc3339(&r.start).unwrap();
        let dir = format!("{}/{}", t.format("%Y/%m/%d/%H"), r.id);
        for m in r.media.iter().filter(|m| re.is_match(&m.mime)) {
            out.push((format!("{dir}/{}", m.id), m.bytes.clone()));
        }
    }
    out
}

fn assert_complete(node: &Node, target: &Path, recs: &[Rec], pattern: &str) {
    let got = tree(target);
    let mut want: std::collections::BTreeMap<String, Vec<u8>> = expected_media(recs, pattern).into_iter().collect();
    for r in recs {
        let t = chrono::DateTime::parse_from_rfc3339(&r.start).unwrap();
        let meta = format!("{}/{}/meta-data.json", t.format("%Y/%m/%d/%H"), r.id);
        let doc: serde_json::Value =
            serde_json::from_slice(got.get(&meta).unwrap_or_else(|| panic!("no {meta}"))).unwrap();
        assert_eq!(doc, node.api_doc(&r.id), "{meta} is the API's document");
        want.insert(meta.clone(), got[&meta].clone());
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "exactly the expected files");
    for (k, v) in &want {
        assert!(got[k] == *v, "{k}: content differs");
    }
}

/// The `(N bytes)` figure of the summary line.
fn bytes_downloaded(o: &std::process::Output) -> u64 {
    let s = stdout(o);
    let rest = s.split(" file(s) (").nth(1).unwrap_or_else(|| panic!("no summary: {s}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn layout_never_twice_resume_and_check() {
    let recs = four();
    let Some(node) = node_with(&recs) else { return };
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let args = ["--now", NOW, "--max-age", "3"];
    let o = node.download(&target, &args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // 5 media files: the WAV does not match the default pattern; the midnight call's two once.
    assert_eq!(downloaded(&o), 5, "{}", stdout(&o));
    assert_complete(&node, &target, &recs, "audio/mp3|video/mp4");
    assert_eq!(checkpoint(&target), Some(ms(NOW)), "the last slice's end");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&target.join("2025/03/10/23/RECB/B.mp4")), 0o600);
    assert_eq!(mode(&target.join("2025/03/10/23/RECB/meta-data.json")), 0o600);
    assert_eq!(mode(&target.join("2025/03/10/23/RECB")), 0o700);

    // Never twice: a rerun fetches nothing and rewrites no metadata.
    let o = node.download(&target, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("5 already present, metadata 0 written / 4 unchanged"), "{}", stdout(&o));

    // Resume: half of a file already in .part is not fetched again, from S3 and from the API.
    for via in [&[][..], &["--via-api"][..]] {
        let target2 = t.path().join(format!("resume{}", via.len()));
        let dir = target2.join("2025/03/10/09/RECA");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("A.mp3.part"), &recs[0].media[0].bytes[..15_000]).unwrap();
        let o = node.download(&target2, &[&args[..], via].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let total: u64 = expected_media(&recs, "audio/mp3|video/mp4").iter().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(bytes_downloaded(&o), total - 15_000, "{via:?}: {}", stdout(&o));
        assert_complete(&node, &target2, &recs, "audio/mp3|video/mp4");
    }

    // maxAge=0 (no limit): the period starts in 1970, but slicing begins at the first recording.
    let target3 = t.path().join("all");
    let o = node.download(&target3, &["--now", NOW, "--max-age", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("4 recording(s) in 3 slice(s) from 1970-01-01"), "{}", stdout(&o));
    assert_complete(&node, &target3, &recs, "audio/mp3|video/mp4");

    // --check: clean, then a missing file, a stray one and a wrong size are reported.
    let o = node.download(&target, &["--now", NOW, "--max-age", "3", "--check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    std::fs::remove_file(target.join("2025/03/11/12/RECC/C.mp3")).unwrap();
    std::fs::write(target.join("2025/03/10/09/RECA/junk"), b"x").unwrap();
    std::fs::write(target.join("2025/03/12/01/RECD/D.mp3"), b"short").unwrap();
    let o = node.download(&target, &["--now", NOW, "--max-age", "3", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("missing: RECC: C.mp3"), "{out}");
    assert!(out.contains("extra: RECA: junk"), "{out}");
    assert!(out.contains("mismatch: RECD: D.mp3: 5 bytes"), "{out}");
    assert!(out.contains("1 missing, 1 extra, 1 mismatched"), "{out}");
}

#[test]
fn checkpoint_catch_up_and_overlap() {
    let e1 = Media::new("E1.mp3", "audio/mp3", content(10, 8_000));
    let e = Rec::new("RECE", "2025-04-01T16:00:00Z", "2025-04-01T16:05:00Z", vec![e1.clone()]);
    let Some(node) = node_with(std::slice::from_ref(&e)) else { return };
    let t = tempfile::tempdir().unwrap();
    let o = node.download(t.path(), &["--now", "2025-04-01T20:00:00Z", "--max-age", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 1);
    assert_eq!(checkpoint(t.path()), Some(ms("2025-04-01T20:00:00Z")));
    // While the machine is off: late media for E (within the 6 h overlap), a call on a day the
    // age window of the next run no longer covers, and a recent one.
    let late = Rec::new("RECE", &e.start, &e.stop, vec![e1, Media::new("E2.mp3", "audio/mp3", content(11, 9_000))]);
    let f = Rec::new(
        "RECF",
        "2025-04-02T10:00:00Z",
        "2025-04-02T10:05:00Z",
        vec![Media::new("F.mp3", "audio/mp3", content(12, 7_000))],
    );
    let g = Rec::new(
        "RECG",
        "2025-04-04T10:00:00Z",
        "2025-04-04T10:05:00Z",
        vec![Media::new("G.mp3", "audio/mp3", content(13, 7_000))],
    );
    node.ingest(&[late.clone(), f.clone(), g.clone()]);
    let o = node.download(t.path(), &["--now", "2025-04-05T00:00:00Z", "--max-age", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 3, "E2 (late, in the overlap), F (the gap), G: {}", stdout(&o));
    assert_complete(&node, t.path(), &[late, f, g], "audio/mp3|video/mp4");
    assert_eq!(checkpoint(t.path()), Some(ms("2025-04-05T00:00:00Z")));
}

#[test]
fn properties_file_pattern_and_metadata_only() {
    let recs = four();
    let Some(node) = node_with(&recs) else { return };
    let t = tempfile::tempdir().unwrap();
    let props = t.path().join("config.properties");
    let target = t.path().join("video");
    std::fs::write(
        &props,
        format!(
            "# an RCBS config.properties, unchanged\ngwsUriPrefix={}\ntargetDir={}\nmaxAge=P3D\nminAge=0\n\
             mediaTypePattern=video\\/mp4\nrecordingFolderFormat=yyyy/MM/dd/HH\nshardBy=1\noverlap=6\n\
             downloadMode=multithread\nnumThreads=4\nencryptionFormat=AES-128\nusePayloadSigning=false\n",
            node.prefix(),
            target.display()
        ),
    )
    .unwrap();
    // RCBS's own spelling (`-config FILE`, as its cron lines have it) first, then reclife's.
    let spelling = std::cell::Cell::new("-config");
    let run = |extra: &[&str]| {
        std::process::Command::new(bin())
            .args(["--quiet", "download", spelling.replace("--properties")])
            .arg(&props)
            .args(["--now", NOW])
            .args(extra)
            .env("GWS_USERNAME", USER.0)
            .env("GWS_PASSWORD", USER.1)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 1);
    assert_complete(&node, &target, &recs, "video/mp4");
    let meta_only = t.path().join("meta");
    let o = run(&["--metadata-only", "true", "--target-dir", meta_only.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 0);
    assert_complete(&node, &meta_only, &recs, "none");
}

#[test]
fn one_download_per_folder() {
    let Some(node) = node_with(&four()) else { return };
    let t = tempfile::tempdir().unwrap();
    let held = reclife::download::lock::TargetLock::acquire(t.path()).unwrap();
    let started = std::time::Instant::now();
    let o = node.download(t.path(), &["--now", NOW]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("is in use by process"), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "exits at once");
    drop(held);
    assert!(node.download(t.path(), &["--now", NOW, "--max-age", "3"]).status.success());
}

#[test]
fn instances_split_the_work_exactly_once() {
    let recs: Vec<Rec> = (0..24)
        .map(|i| {
            let start = format!("2025-03-11T{:02}:00:00Z", i);
            let stop = format!("2025-03-11T{:02}:30:00Z", i);
            Rec::new(
                &format!("SPLIT{i:03}"),
                &start,
                &stop,
                vec![Media::new(&format!("S{i}.mp3"), "audio/mp3", content(100 + i, 3000))],
            )
        })
        .collect();
    let Some(node) = node_with(&recs) else { return };
    let t = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..3 {
        let target = t.path().join(format!("i{i}"));
        let o = node.download(
            &target,
            &["--now", NOW, "--max-age", "3", "--total-rcbs-instances", "3", "--rcbs-instance-id", &i.to_string()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        for k in tree(&target).keys().filter(|k| k.ends_with(".mp3")) {
            assert!(seen.insert(k.clone(), i).is_none(), "{k} downloaded by two instances");
        }
    }
    assert_eq!(seen.len(), recs.len(), "every recording by some instance");
    let per: Vec<usize> = (0..3).map(|i| seen.values().filter(|&&v| v == i).count()).collect();
    assert!(per.iter().all(|&n| n > 0), "{per:?}");
}

#[test]
fn bad_config_lines_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let props = t.path().join("config.properties");
    for (text, want) in [
        ("gwsUriPrefix=http://127.0.0.1:9/api/v2\nmaxAge=2\nfooBar=1\n", "line 3: unknown key \"fooBar\""),
        ("minAge=soon\n", "line 1: minAge"),
        ("mediaTypePattern=audio/(mp3\n", "line 1: mediaTypePattern"),
        ("minDate=2018-01-02\nmaxDate=2018-01-04\n", "minDate"),
        ("recordingFolderFormat=yyyy/../MM\n", "line 1: recordingFolderFormat"),
    ] {
        std::fs::write(&props, text).unwrap();
        let o = std::process::Command::new(bin())
            .args(["download", "--properties"])
            .arg(&props)
            .env("GWS_USERNAME", "u")
            .env("GWS_PASSWORD", "p")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{text}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{text}: {}", stderr(&o));
    }
}

#[test]
fn wrong_password_is_401_exit_2() {
    let Some(node) = node_with(&four()) else { return };
    let t = tempfile::tempdir().unwrap();
    let o = node.download_cmd(t.path(), &["--now", NOW]).env("GWS_PASSWORD", "wrong-pw-5150").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("HTTP 401") && err.contains("GWS_PASSWORD"), "{err}");
    assert!(!err.contains("wrong-pw-5150") && !stdout(&o).contains("wrong-pw-5150"), "the password is never shown");
    // --verify: the API alone, S3 alone (its credentials checked on one object the API names).
    let o = node.download(t.path(), &["--now", NOW, "--max-age", "3", "--verify", "api"]);
    assert!(o.status.success() && stdout(&o).contains("credentials accepted"), "{}{}", stdout(&o), stderr(&o));
    let o = node.download(t.path(), &["--now", NOW, "--max-age", "3", "--verify", "s3"]);
    assert!(o.status.success() && stdout(&o).contains("read RECA/A.mp3"), "{}{}", stdout(&o), stderr(&o));
    let o = node
        .download_cmd(t.path(), &["--now", NOW, "--max-age", "3", "--verify", "s3"])
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-77")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(!stderr(&o).contains("not-the-secret-77"), "{}", stderr(&o));
    assert!(tree(t.path()).is_empty(), "verify and a refused run download nothing");
}

#[test]
fn missing_object_is_reported_and_the_rest_go_on() {
    let recs = four();
    let Some(node) = node_with(&recs) else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(node.store().delete(&reclife::storage::Key::media("RECB", "B.mp4").unwrap())).unwrap();
    let t = tempfile::tempdir().unwrap();
    let o = node.download(t.path(), &["--now", NOW, "--max-age", "3"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("failed: recording RECB file B.mp4"), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 4, "{}", stdout(&o));
    let got = tree(t.path());
    assert!(got.contains_key("2025/03/10/23/RECB/B.mp3"));
    assert!(!got.contains_key("2025/03/10/23/RECB/meta-data.json"), "metadata only with all its media");
    assert!(got.contains_key("2025/03/12/01/RECD/meta-data.json"));
    // The first slice (10 March, where slicing starts: the first recording) failed: no checkpoint.
    assert_eq!(checkpoint(t.path()), None, "not past the slice that failed");
    // Once the object is back, a rerun finishes the recording and the checkpoint goes to the end.
    let b4 = &recs[1].media[1];
    rt.block_on(
        node.store().put_bytes(&reclife::storage::Key::media("RECB", "B.mp4").unwrap(), b4.bytes.clone().into()),
    )
    .unwrap();
    let o = node.download(t.path(), &["--now", NOW, "--max-age", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 1, "only the missing one: {}", stdout(&o));
    assert_complete(&node, t.path(), &recs, "audio/mp3|video/mp4");
    assert_eq!(checkpoint(t.path()), Some(ms(NOW)));
}

#[test]
fn kill_9_at_random_moments_then_rerun_leaves_exactly_the_set() {
    // Small data, a few bigger files so that kills land inside transfers too.
    let mut recs: Vec<Rec> = (0..16)
        .map(|i| {
            let start = format!("2025-03-11T{:02}:{:02}:00Z", i / 2, (i % 2) * 30);
            let stop = format!("2025-03-11T{:02}:{:02}:10Z", i / 2, (i % 2) * 30);
            Rec::new(
                &format!("KILL{i:03}"),
                &start,
                &stop,
                vec![Media::new(&format!("K{i}.mp3"), "audio/mp3", content(200 + i, 64 * 1024))],
            )
        })
        .collect();
    for i in 0..2u64 {
        let start = format!("2025-03-11T2{i}:00:00Z");
        let stop = format!("2025-03-11T2{i}:10:00Z");
        recs.push(Rec::new(
            &format!("KILLBIG{i}"),
            &start,
            &stop,
            vec![Media::new(&format!("big{i}.mp4"), "video/mp4", content(300 + i, 3 << 20))],
        ));
    }
    let Some(node) = node_with(&recs) else { return };
    let t = tempfile::tempdir().unwrap();
    let args = ["--now", NOW, "--max-age", "3", "--num-threads", "4"];
    let started = std::time::Instant::now();
    let o = node.download(&t.path().join("full"), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let full = started.elapsed();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = seed | 1;
    let mut delays = Vec::new();
    let (mut parts_left, mut done_before) = (0, 0);
    for trial in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Anywhere from process start to a little past a whole run.
        let delay = std::time::Duration::from_micros(rng % (full.as_micros() as u64 * 12 / 10 + 1));
        delays.push(delay.as_millis());
        let target = t.path().join(format!("trial{trial}"));
        let mut child = node
            .download_cmd(&target, &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let left = tree(&target);
        if left.keys().any(|k| k.ends_with(".part")) {
            parts_left += 1;
        }
        done_before += left.keys().filter(|k| !k.ends_with(".part")).count();
        let o = node.download(&target, &args);
        assert!(o.status.success(), "trial {trial} (seed {seed}, kill after {delay:?}): {}", stderr(&o));
        assert_complete(&node, &target, &recs, "audio/mp3|video/mp4");
        assert_eq!(checkpoint(&target), Some(ms(NOW)), "trial {trial}");
    }
    eprintln!(
        "kill -9 after (ms): {delays:?}; a full run took {full:?}; {parts_left} kill(s) left a .part to resume; \
         {done_before} finished file(s) found after the kills in all"
    );
}

#[test]
fn decrypt_while_downloading_matches_openssl() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys");
    let work = tempfile::tempdir().unwrap();
    let mut recs = Vec::new();
    let mut plain = std::collections::BTreeMap::new();
    for i in 0..3u64 {
        let p = work.path().join(format!("p{i}"));
        let bytes = content(400 + i, 50_000 + i as usize * 1000);
        std::fs::write(&p, &bytes).unwrap();
        let e = work.path().join(format!("e{i}"));
        let st = std::process::Command::new("openssl")
            .args(["cms", "-encrypt", "-binary", "-outform", "DER", "-aes-128-cbc", "-in"])
            .arg(&p)
            .arg("-out")
            .arg(&e)
            .arg(keys.join("recording-cert.pem"))
            .status()
            .unwrap();
        assert!(st.success());
        let id = format!("ENC{i}");
        plain.insert(id.clone(), bytes);
        let start = format!("2025-03-11T1{i}:00:00Z");
        let stop = format!("2025-03-11T1{i}:05:00Z");
        recs.push(Rec::new(
            &id,
            &start,
            &stop,
            vec![Media::new(&format!("{id}.mp3"), "audio/mp3", std::fs::read(&e).unwrap())],
        ));
    }
    let Some(node) = node_with(&recs) else { return };
    let target = work.path().join("target");
    let plain_dir = work.path().join("plain");
    let key_dir = keys.to_str().unwrap();
    let o = node.download(
        &target,
        &[
            "--now",
            NOW,
            "--max-age",
            "3",
            "--decrypt",
            "--key-dir",
            key_dir,
            "--plain-dir",
            plain_dir.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3 decrypted"), "{}", stdout(&o));
    assert_complete(&node, &target, &recs, "audio/mp3|video/mp4");
    for r in &recs {
        let rel = format!("2025/03/11/{}/{}/{}.mp3", &r.start[11..13], r.id, r.id);
        let oracle = work.path().join(format!("{}.oracle", r.id));
        let st = std::process::Command::new("openssl")
            .args(["cms", "-decrypt", "-inform", "DER", "-binary", "-in"])
            .arg(target.join(&rel))
            .arg("-inkey")
            .arg(keys.join("recording-key.pem"))
            .arg("-out")
            .arg(&oracle)
            .status()
            .unwrap();
        assert!(st.success());
        let got = std::fs::read(plain_dir.join(&rel)).unwrap();
        assert!(got == std::fs::read(&oracle).unwrap(), "{rel}: equals openssl cms -decrypt");
        assert!(got == plain[&r.id], "{rel}: equals the original");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(plain_dir.join(&rel)).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // --plain-only: the encrypted copies go once decrypted, and a rerun fetches nothing.
    let target2 = work.path().join("target2");
    let plain2 = work.path().join("plain2");
    let args = [
        "--now",
        NOW,
        "--max-age",
        "3",
        "--decrypt",
        "--plain-only",
        "--key-dir",
        key_dir,
        "--plain-dir",
        plain2.to_str().unwrap(),
    ];
    let o = node.download(&target2, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tree(&target2).keys().all(|k| k.ends_with("meta-data.json")), "{:?}", tree(&target2).keys());
    assert_eq!(tree(&plain2).len(), 3);
    let o = node.download(&target2, &args);
    assert_eq!(downloaded(&o), 0, "{}", stdout(&o));
}

/// An attached DER envelope of `plain` for the certificate `cert` (openssl cms -encrypt).
fn seal_for(work: &Path, name: &str, plain: &[u8], cert: &Path) -> Vec<u8> {
    let (p, e) = (work.join(format!("{name}.plain")), work.join(format!("{name}.p7")));
    std::fs::write(&p, plain).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["cms", "-encrypt", "-binary", "-outform", "DER", "-aes-256-cbc", "-in"])
        .arg(&p)
        .arg("-out")
        .arg(&e)
        .arg(cert)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(&e).unwrap()
}

/// Issue 24: `--decrypt` over a mixed estate (encrypted voice, plain screen video, a plain
/// call, and a call sealed for a key this node does not hold): plain files are passed through
/// to the plain folder (hard links), the envelope is opened, the one that cannot be opened is
/// reported, and no recording's `meta-data.json` is withheld, so `reclife ingest` of the
/// downloaded folder takes every recording.
#[test]
fn decrypt_passes_plain_files_through_and_never_withholds_metadata() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys");
    let work = tempfile::tempdir().unwrap();
    // A certificate whose key this node does not have.
    let (okey, ocert) = (work.path().join("other-key.pem"), work.path().join("other-cert.pem"));
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other", "-days", "2", "-keyout"])
        .arg(&okey)
        .arg("-out")
        .arg(&ocert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let voice = content(501, 40_000);
    let screen = content(502, 70_000);
    let plain_call = content(503, 30_000);
    let foreign = content(504, 20_000);
    let recs = vec![
        Rec::new(
            "MIX1",
            "2025-03-11T10:00:00Z",
            "2025-03-11T10:05:00Z",
            vec![
                Media::new(
                    "MIX1.mp3",
                    "audio/mp3",
                    seal_for(work.path(), "mix1", &voice, &keys.join("recording-cert.pem")),
                ),
                Media::new("MIX1.mp4", "video/mp4", screen.clone()),
            ],
        ),
        Rec::new(
            "PLAIN2",
            "2025-03-11T11:00:00Z",
            "2025-03-11T11:05:00Z",
            vec![Media::new("PLAIN2.mp3", "audio/mp3", plain_call.clone())],
        ),
        Rec::new(
            "OTHER3",
            "2025-03-11T12:00:00Z",
            "2025-03-11T12:05:00Z",
            vec![Media::new("OTHER3.mp3", "audio/mp3", seal_for(work.path(), "other3", &foreign, &ocert))],
        ),
    ];
    let Some(node) = node_with(&recs) else { return };
    let target = work.path().join("target");
    let plain_dir = work.path().join("plain");
    let args = [
        "--now",
        NOW,
        "--max-age",
        "3",
        "--decrypt",
        "--key-dir",
        keys.to_str().unwrap(),
        "--plain-dir",
        plain_dir.to_str().unwrap(),
    ];
    let o = node.download(&target, &args);
    let (out, err) = (stdout(&o), stderr(&o));
    // The one file no key opens is a failure (exit 1, the checkpoint held for a retry)...
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("1 decrypted, 2 plain passed through") && out.contains("1 failed"), "{out}");
    assert!(err.contains("OTHER3") && err.contains("no key in the key store opens this file"), "{err}");
    assert_eq!(err.matches("failed:").count(), 1, "the plain files are not failures: {err}");
    // ...but every recording is downloaded whole, metadata included.
    assert_complete(&node, &target, &recs, "audio/mp3|video/mp4");
    let got = tree(&plain_dir);
    let want: Vec<(String, &Vec<u8>)> = vec![
        ("2025/03/11/10/MIX1/MIX1.mp3".into(), &voice),
        ("2025/03/11/10/MIX1/MIX1.mp4".into(), &screen),
        ("2025/03/11/11/PLAIN2/PLAIN2.mp3".into(), &plain_call),
    ];
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());
    for (rel, bytes) in &want {
        assert!(got[rel] == **bytes, "{rel}: the plaintext, or the plain file as downloaded");
    }
    // Plain files are hard links to the download (no second copy), 0600 like every output.
    use std::os::unix::fs::MetadataExt;
    for rel in ["2025/03/11/10/MIX1/MIX1.mp4", "2025/03/11/11/PLAIN2/PLAIN2.mp3"] {
        let (a, b) = (std::fs::metadata(target.join(rel)).unwrap(), std::fs::metadata(plain_dir.join(rel)).unwrap());
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "{rel} is linked");
        assert_eq!(b.mode() & 0o777, 0o600, "{rel}");
    }
    // A rerun passes nothing through twice and tries the failed decryption again.
    let o = node.download(&target, &args);
    assert!(
        stdout(&o).contains("0 decrypted, 0 plain passed through") && stdout(&o).contains("1 failed"),
        "{}",
        stdout(&o)
    );

    // `reclife ingest` of the downloaded folder takes every recording.
    let fresh = work.path().join("fresh");
    std::fs::create_dir_all(fresh.join("rules")).unwrap();
    std::fs::write(fresh.join("reclife.toml"), "contact_center_id = \"cc1\"\nrules_dir = \"rules\"\n").unwrap();
    let o = std::process::Command::new(bin())
        .arg("--data-dir")
        .arg(fresh.join("data"))
        .arg("--config")
        .arg(fresh.join("reclife.toml"))
        .arg("ingest")
        .arg(&target)
        .env_remove("RECLIFE_NOW")
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ingested 3"), "{}", stdout(&o));
}

/// Issue 20 (9): the downloader keeps a hold (the folder's meta-data.json carries the API's
/// `hold`, with who placed it), and `reclife ingest` of that folder into a fresh node brings
/// the recording back held, so a purge there leaves it.
#[test]
fn a_downloaded_hold_is_applied_again_by_ingest() {
    let recs = four();
    let Some(node) = node_with(&recs) else { return };
    let o =
        node.cmd().args(["recordings", "hold", "RECB", "--reason", "case 21"]).env("USER", "dana").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let o = node.download(&target, &["--now", NOW, "--max-age", "3", "--media-type-pattern", ".*"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("2025/03/10/23/RECB/meta-data.json")).unwrap()).unwrap();
    assert_eq!(
        (meta["hold"]["reason"].as_str(), meta["hold"]["by"].as_str()),
        (Some("case 21"), Some("dana")),
        "{meta}"
    );

    // A fresh node (its own data dir and media) ingests the downloaded folder.
    let fresh = t.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("reclife.toml"), "contact_center_id = \"cc1\"\nrules_dir = \"rules\"\n").unwrap();
    std::fs::create_dir_all(fresh.join("rules")).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin())
            .arg("--data-dir")
            .arg(fresh.join("data"))
            .arg("--config")
            .arg(fresh.join("reclife.toml"))
            .args(["--now", "2026-01-01T00:00:00Z"])
            .args(args)
            .env_remove("RECLIFE_NOW")
            .env_remove("RECLIFE_CONFIG")
            .output()
            .unwrap();
        assert!(o.status.success(), "reclife {args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let ingested = run(&["ingest", target.to_str().unwrap()]);
    assert!(ingested.contains("ingested 4") && ingested.contains("held 1"), "{ingested}");
    let shown: serde_json::Value = serde_json::from_str(&run(&["recordings", "show", "RECB"])).unwrap();
    assert_eq!(shown["reclifeHold"]["by"], "dana", "{shown}");
    assert!(shown.get("hold").is_none(), "the API's field is not kept in the stored document");
    run(&["purge", "--type", "voice", "--min-age", "30"]);
    let left = run(&["recordings", "list", "--json"]);
    let ids: Vec<String> = left
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["RECB"], "only the held recording is left");
}

// --- Against a hostile RWS look-alike (tests/download_support/hostile.rs): no S3, media by URI.

use download_support::hostile::{self, Body, Resp};

/// `reclife download` against the look-alike at `origin` (prefix `<origin>/api/v2`).
fn hostile_cmd(origin: &str, target: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.args(["--quiet", "download", "--gws-uri-prefix", &format!("{origin}/api/v2"), "--target-dir"])
        .arg(target)
        .args(["--now", NOW, "--max-age", "3"])
        .env("GWS_USERNAME", USER.0)
        .env("GWS_PASSWORD", USER.1)
        .env_remove("RECLIFE_NOW")
        .env_remove("RECLIFE_CONFIG");
    c
}

fn basic() -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", USER.0, USER.1)))
}

/// `<yyyy/MM/dd/HH>/<id>/<id>.mp3` of a recording started at `start`.
fn mp3_path(id: &str, start: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(start).unwrap();
    format!("{}/{id}/{id}.mp3", t.format("%Y/%m/%d/%H"))
}

/// The media of the tree (leaving out meta-data.json).
fn media_of(target: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(target).into_iter().filter(|(k, _)| !k.ends_with("/meta-data.json")).collect()
}

#[test]
fn hostile_credentials_never_leave_the_prefix_origin() {
    let (a, b) = (hostile::bind(), hostile::bind());
    let (a_url, b_url) = (a.url.clone(), b.url.clone());
    let data = |i: u64| content(100 + i, 30_000 + i as usize);
    // R1's media on the origin (a path below the prefix), R2's on the foreign port, the next
    // page on the foreign port too, and there R3 whose media is back on the origin.
    let (r1, r2, r3) = ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z", "2025-03-11T09:00:00Z");
    let end = |s: &str| s.replace(":00:00Z", ":05:00Z");
    let page1 = serde_json::json!({"recordings": [
        hostile::doc("H1", r1, &end(r1), "/recordings/H1/play/H1.mp3", 30_001),
        hostile::doc("H2", r2, &end(r2), &format!("{b_url}/media/H2.mp3"), 30_002)],
        "nextUri": format!("{b_url}/api/v2/recordings?page=2")});
    // H4's media is on the foreign port, which asks for credentials it is not given: that file
    // fails, and the run goes on.
    let r4 = "2025-03-11T10:00:00Z";
    let page2 = serde_json::json!({"recordings": [
        hostile::doc("H3", r3, &end(r3), &format!("{a_url}/api/v2/recordings/H3/play/H3.mp3"), 30_003),
        hostile::doc("H4", r4, &end(r4), &format!("{b_url}/media/H4.mp3"), 10)]});
    let a = a.serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page1),
        "/api/v2/recordings/H1/play/H1.mp3" => Resp::bytes(200, data(1)),
        "/api/v2/recordings/H3/play/H3.mp3" => Resp::bytes(200, data(3)),
        _ => Resp::not_found(),
    });
    let b = b.serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page2),
        "/media/H2.mp3" => Resp::bytes(200, data(2)),
        "/media/H4.mp3" => Resp::bytes(401, Vec::new()).header("WWW-Authenticate", "Basic realm=\"x\""),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let o = hostile_cmd(&a.url, &target).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("failed: recording H4 file H4.mp3:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
    // H4's slice (the 11th) is not complete: the checkpoint stops at its start.
    assert_eq!(checkpoint(&target), Some(ms("2025-03-11T00:00:00Z")));
    let want: std::collections::BTreeMap<_, _> =
        [("H1", r1, 1), ("H2", r2, 2), ("H3", r3, 3)].iter().map(|(id, s, i)| (mp3_path(id, s), data(*i))).collect();
    assert_eq!(media_of(&target), want);
    let foreign = b.requests();
    assert_eq!(foreign.len(), 3, "the foreign port served the page, H2 and H4: {foreign:?}");
    for (r, _) in &foreign {
        assert_eq!(r.authorization, None, "{} reached the foreign origin with credentials", r.target);
    }
    let own = a.requests();
    assert!(own.len() >= 3, "{own:?}");
    for (r, _) in &own {
        assert_eq!(r.authorization.as_deref(), Some(basic().as_str()), "{} on the origin", r.target);
    }
}

#[test]
fn hostile_listing_order_outside_period_and_failed_recording() {
    // Slices (days, from now − 3 d): [09 06:00, 10), [10, 11), [11, 12), [12, 06:00).
    let recs = [
        ("O1", "2025-03-09T08:00:00Z"),
        ("O2", "2025-03-10T09:00:00Z"),
        ("O3", "2025-03-11T12:00:00Z"),
        ("O4", "2025-03-12T01:00:00Z"),
    ];
    let data = |i: usize| content(200 + i as u64, 20_000 + i);
    let d = |i: usize| {
        let (id, s) = recs[i];
        hostile::doc(
            id,
            s,
            &s.replace(":00:00Z", ":04:00Z"),
            &format!("/recordings/{id}/play/{id}.mp3"),
            data(i).len() as u64,
        )
    };
    // After the period's end (listed though it should not be), first of all.
    let late =
        hostile::doc("LATE", "2025-03-12T07:00:00Z", "2025-03-12T07:04:00Z", "/recordings/LATE/play/LATE.mp3", 5);
    // Shuffled, the latest first, O2 listed twice, the earliest on the last page.
    let page1 = serde_json::json!({"recordings": [late, d(3), d(1)], "nextUri": "/recordings?page=2"});
    let page2 = serde_json::json!({"recordings": [d(2), d(0), d(1)]});
    let o2_fails = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fails = o2_fails.clone();
    let a = hostile::bind().serve(move |r| {
        let p = r.path();
        if p == "/api/v2/recordings" {
            return Resp::json(if r.target.contains("page=2") { &page2 } else { &page1 });
        }
        for (i, (id, _)) in recs.iter().enumerate() {
            if p == format!("/api/v2/recordings/{id}/play/{id}.mp3") {
                if i == 1 && fails.load(std::sync::atomic::Ordering::SeqCst) {
                    return Resp::not_found();
                }
                return Resp::bytes(200, data(i));
            }
        }
        Resp::not_found()
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    // O2 fails: the others are fetched whatever their place in the listing; the checkpoint
    // stays at the start of O2's slice, before O2.
    let o = hostile_cmd(&a.url, &target).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("failed: recording O2 file O2.mp3"), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped: recording LATE"), "{}", stderr(&o));
    let want = |ids: &[usize]| -> std::collections::BTreeMap<String, Vec<u8>> {
        ids.iter().map(|&i| (mp3_path(recs[i].0, recs[i].1), data(i))).collect()
    };
    assert_eq!(media_of(&target), want(&[0, 2, 3]));
    assert!(!tree(&target).contains_key("2025/03/10/09/O2/meta-data.json"));
    assert_eq!(checkpoint(&target), Some(ms("2025-03-10T00:00:00Z")));
    // O2 can be fetched now: the next run takes it (its slice was never covered), and all is
    // done: the checkpoint reaches the period's end. LATE is skipped again, not a failure.
    o2_fails.store(false, std::sync::atomic::Ordering::SeqCst);
    let o = hostile_cmd(&a.url, &target).output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("skipped: recording LATE"), "{}", stderr(&o));
    assert_eq!(downloaded(&o), 1, "{}", stdout(&o));
    assert_eq!(media_of(&target), want(&[0, 1, 2, 3]));
    for (id, s) in recs {
        let meta = mp3_path(id, s).replace(&format!("{id}.mp3"), "meta-data.json");
        assert!(tree(&target).contains_key(&meta), "{meta}");
    }
    assert_eq!(checkpoint(&target), Some(ms(NOW)));
    // O2 listed twice was fetched once in each run.
    let o2 = a.requests().iter().filter(|(r, _)| r.path().ends_with("/O2.mp3")).count();
    assert_eq!(o2, 2, "O2 asked for once per run");
}

#[test]
fn hostile_oversized_page_is_refused() {
    // Valid JSON, 17 MiB of it: past the page cap.
    let mut body = br#"{"recordings": [], "padding": ""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 17 << 20));
    body.extend_from_slice(br#""}"#);
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::bytes(200, body.clone()).header("Content-Type", "application/json"),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let o = hostile::output_within(hostile_cmd(&a.url, &t.path().join("target")), 60);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("listing page is larger than"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{}/api/v2/recordings?startTime=", a.url)), "{}", stderr(&o));
    assert_eq!(checkpoint(&t.path().join("target")), None);
}

#[test]
fn hostile_self_looping_next_uri_is_an_error() {
    let a = hostile::bind();
    let me = format!("{}/api/v2/recordings?page=loop", a.url);
    let me2 = me.clone();
    let a = a.serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&serde_json::json!({"recordings": [], "nextUri": me2})),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let o = hostile::output_within(hostile_cmd(&a.url, &t.path().join("target")), 60);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains(&format!("{me}: this listing page was already read")), "{}", stderr(&o));
    assert!(a.requests().len() <= 3, "{} requests", a.requests().len());
    assert_eq!(checkpoint(&t.path().join("target")), None);
    // `--check` walks the same listing: the same error, not a loop.
    let mut c = hostile_cmd(&a.url, &t.path().join("target"));
    c.arg("--check");
    let o = hostile::output_within(c, 60);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains(&format!("{me}: this listing page was already read")), "{}", stderr(&o));
}

#[test]
fn hostile_oversized_body_and_wrong_content_range() {
    // BIG states 300 000 bytes and sends 64 MiB; RES is resumed from 15 000 bytes, answered
    // with a 206 for bytes 0-24999 (the right length to finish the file, the wrong bytes).
    let (big, res) = ("2025-03-10T09:00:00Z", "2025-03-11T09:00:00Z");
    let data = content(300, 40_000);
    let d2 = data.clone();
    let page = serde_json::json!({"recordings": [
        hostile::doc("BIG", big, "2025-03-10T09:05:00Z", "/recordings/BIG/play/BIG.mp3", 300_000),
        hostile::doc("RES", res, "2025-03-11T09:05:00Z", "/recordings/RES/play/RES.mp3", 40_000)]});
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page),
        "/api/v2/recordings/BIG/play/BIG.mp3" => {
            Resp { status: 200, headers: Vec::new(), body: Body::Repeat(b'z', 64 << 20) }
        }
        "/api/v2/recordings/RES/play/RES.mp3" => match &r.range {
            Some(_) => Resp::bytes(206, d2[..25_000].to_vec()).header("Content-Range", "bytes 0-24999/40000"),
            None => Resp::bytes(200, d2.clone()),
        },
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let res_dir = target.join("2025/03/11/09/RES");
    std::fs::create_dir_all(&res_dir).unwrap();
    std::fs::write(res_dir.join("RES.mp3.part"), &data[..15_000]).unwrap();
    let o = hostile::output_within(hostile_cmd(&a.url, &target), 90);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("failed: recording BIG file BIG.mp3: the source sent more than the 300000 bytes"),
        "{}",
        stderr(&o)
    );
    // Nothing of BIG stays, and the client stopped reading soon after the stated size.
    assert!(!target.join("2025/03/10/09/BIG/BIG.mp3").exists());
    assert!(!target.join("2025/03/10/09/BIG/BIG.mp3.part").exists());
    // (The server notes what it sent once its write fails or ends.)
    let big_sent = || a.requests().iter().find(|(r, _)| r.path().ends_with("/BIG.mp3")).map(|(_, n)| *n).unwrap();
    let t0 = std::time::Instant::now();
    while big_sent() == 0 && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = big_sent();
    assert!(sent > 0 && sent < 32 << 20, "the server sent {sent} bytes of BIG before the client stopped");
    // RES: the wrong range was not appended; the file was fetched again whole.
    assert_eq!(std::fs::read(res_dir.join("RES.mp3")).unwrap(), data);
    assert!(!res_dir.join("RES.mp3.part").exists());
    let ranges: Vec<_> =
        a.requests().iter().filter(|(r, _)| r.path().ends_with("/RES.mp3")).map(|(r, _)| r.range.clone()).collect();
    assert_eq!(ranges, [Some("bytes=15000-".to_string()), None]);
    // BIG failed in the first slice: no checkpoint.
    assert_eq!(checkpoint(&target), None);
}

/// Issue 22: the seeds' RCBS example record carries neither a `mediaDescriptor` nor a
/// `mediaUri` (its voice file is an encrypted `…-00000001.mp3.bin`): the downloader fetches it
/// from RWS's documented play path below `gwsUriPrefix`, `/recordings/<id>/play/<mediaId>`,
/// with each id percent-encoded, instead of failing the record.
#[test]
fn an_rcbs_record_without_a_descriptor_or_uri_is_fetched_from_the_play_path() {
    let id = "021L6BI58K8FH7R5USI402LAES00000A";
    let media = "021L6BI58K8FH7R5USI402LAES00000A_2021-07-21_16-49-00-334B020F-10002D91-00000001.mp3.bin";
    let body = content(7, 146_304);
    // The seed's record (000_59c18c59257a2678.txt, "Metadata format"), its first media file as
    // printed, at a time inside this test's period.
    let rec = serde_json::json!({
        "id": id, "callerPhoneNumber": "+19059683343", "dialedPhoneNumber": "+15126401290",
        "startTime": "2025-03-10T16:49:00.000+0000", "stopTime": "2025-03-10T16:49:37.000+0000",
        "mediaFiles": [{
            "startTime": "2025-03-10T16:49:00.000+0000", "stopTime": "2025-03-10T16:49:37.000+0000",
            "callUUID": id, "mediaId": media, "type": "audio/mp3", "duration": "36800",
            "tenant": "Tenant_2027", "ivrprofile": "record", "size": "146304",
            "parameters": {"agentId": "103001", "callUuid": id, "username": "agent_103001"},
            "certAlias": ["rcs_Environment:1:CN=Basic Certification Authority:5"],
            "partitions": [], "accessgroups": ["/"], "channels": 2 }],
        "callType": "Internal", "region": "usw1" });
    let play = format!("/api/v2/recordings/{id}/play/{media}");
    let (page, b2) = (serde_json::json!({ "recordings": [rec] }), body.clone());
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page),
        p if p == play => Resp::bytes(200, b2.clone()),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let o = hostile_cmd(&a.url, &target).output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let files = media_of(&target);
    assert_eq!(files.len(), 1, "{:?}", files.keys().collect::<Vec<_>>());
    let (path, got) = files.into_iter().next().unwrap();
    assert!(path.contains(id) && path.ends_with(".bin"), "{path}");
    assert_eq!(got, body);
    for (r, _) in a.requests() {
        assert_eq!(r.authorization.as_deref(), Some(basic().as_str()), "{}", r.target);
    }
}

/// Issue 22: `diskBudget` caps what one run adds to the disk. A run that would pass it stops
/// cleanly at the recording that does not fit (named, exit 1), with the complete slices before
/// it checkpointed; the next run (same budget: it counts only what that run writes) goes on
/// from there. A file of unstated size is stopped at the budget as it arrives.
#[test]
fn disk_budget_stops_the_run_at_the_recording_that_does_not_fit() {
    let recs = [
        ("B1", "2025-03-09T08:00:00Z"),
        ("B2", "2025-03-10T09:00:00Z"),
        ("B3", "2025-03-11T12:00:00Z"),
        ("B4", "2025-03-12T01:00:00Z"),
    ];
    let data = |i: usize| content(400 + i as u64, 100_000);
    let d = |i: usize| {
        let (id, s) = recs[i];
        hostile::doc(id, s, &s.replace(":00:00Z", ":04:00Z"), &format!("/recordings/{id}/play/{id}.mp3"), 100_000)
    };
    // Listed out of order: the budget goes by slice, not by place in the listing.
    let page = serde_json::json!({"recordings": [d(3), d(1), d(2), d(0)]});
    let a = hostile::bind().serve(move |r| {
        if r.path() == "/api/v2/recordings" {
            return Resp::json(&page);
        }
        for (i, (id, _)) in recs.iter().enumerate() {
            if r.path() == format!("/api/v2/recordings/{id}/play/{id}.mp3") {
                return Resp::bytes(200, data(i));
            }
        }
        Resp::not_found()
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let run = || {
        let mut c = hostile_cmd(&a.url, &target);
        c.args(["--disk-budget", "250000", "--num-threads", "4"]);
        hostile::output_within(c, 60)
    };
    // B1 and B2 (2 × 100 000 bytes and their metadata) fit in 250 000; B3 does not.
    let o = run();
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("stopped: recording B3: the disk budget of 250000 bytes would be passed"),
        "{}",
        stderr(&o)
    );
    let want = |ids: &[usize]| -> std::collections::BTreeMap<String, Vec<u8>> {
        ids.iter().map(|&i| (mp3_path(recs[i].0, recs[i].1), data(i))).collect()
    };
    assert_eq!(media_of(&target), want(&[0, 1]));
    assert!(!target.join("2025/03/11/12/B3").exists(), "nothing of B3 was written");
    assert_eq!(checkpoint(&target), Some(ms("2025-03-11T00:00:00Z")), "complete slices before B3's");
    let fetched = |id: &str| a.requests().iter().filter(|(r, _)| r.path().ends_with(&format!("/{id}.mp3"))).count();
    assert_eq!((fetched("B3"), fetched("B4")), (0, 0));
    // The same budget again: B1 and B2 are there (nothing written for them), B3 and B4 fit.
    let o = run();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(downloaded(&o), 2, "{}", stdout(&o));
    assert_eq!(media_of(&target), want(&[0, 1, 2, 3]));
    assert_eq!(checkpoint(&target), Some(ms(NOW)));

    // A file whose size is not stated, endless: stopped at the budget, nothing of it kept.
    let mut doc = hostile::doc("U1", "2025-03-11T12:00:00Z", "2025-03-11T12:04:00Z", "/recordings/U1/play/U1.mp3", 0);
    doc["mediaFiles"][0].as_object_mut().unwrap().remove("size");
    let page = serde_json::json!({ "recordings": [doc] });
    let u = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page),
        "/api/v2/recordings/U1/play/U1.mp3" => {
            Resp { status: 200, headers: Vec::new(), body: Body::Repeat(b'u', 64 << 20) }
        }
        _ => Resp::not_found(),
    });
    let target = t.path().join("target-u");
    let mut c = hostile_cmd(&u.url, &target);
    c.args(["--disk-budget", "1M"]);
    let o = hostile::output_within(c, 60);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("stopped: recording U1 file U1.mp3: disk budget reached"), "{}", stderr(&o));
    let left: Vec<_> = walkdir::WalkDir::new(&target)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().to_string_lossy().contains("U1"))
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // U1's slice is the first of the run (the period starts at the earliest recording listed).
    assert_eq!(checkpoint(&target), None);
}

/// Issue 22: memory stays bounded whatever the API sends: a listing page just under the page
/// cap (one recording padded to 15 MiB) whose media is a 400 MiB body. The child's peak
/// resident set (VmHWM from /proc, read until it exits) stays far below the body's size: the
/// page is held once (and its recording spooled), the body streamed to disk. A loose bound, not
/// a timing.
#[test]
fn memory_stays_bounded_with_a_huge_page_and_body() {
    const BODY: u64 = 400 << 20;
    let mut doc =
        hostile::doc("M1", "2025-03-11T12:00:00Z", "2025-03-11T12:04:00Z", "/recordings/M1/play/M1.mp3", BODY);
    doc["x-padding"] = serde_json::Value::String("p".repeat(15 << 20));
    let page = serde_json::to_vec(&serde_json::json!({ "recordings": [doc] })).unwrap();
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::bytes(200, page.clone()).header("Content-Type", "application/json"),
        "/api/v2/recordings/M1/play/M1.mp3" => {
            Resp { status: 200, headers: Vec::new(), body: Body::Repeat(b'm', BODY) }
        }
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let mut c = hostile_cmd(&a.url, &target);
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(v) = s.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                peak_kib = peak_kib.max(v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
            }
        }
        assert!(t0.elapsed().as_secs() < 300, "still running after 300 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let file = target.join("2025/03/11/12/M1/M1.mp3");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), BODY);
    assert!(peak_kib > 0, "VmHWM never read");
    assert!(peak_kib < 200 << 10, "peak resident set {peak_kib} KiB with a 15 MiB page and a 400 MiB body");
    eprintln!("peak resident set: {peak_kib} KiB");
}

/// Issue 22: `awsProxyHost`/`awsProxyPort` carry every S3 request, and `gwsProxyHost`/
/// `gwsProxyPort` every API request, through a real forward proxy (tinyproxy): its log holds
/// the listing and each media object's GET, and the download is complete.
#[test]
fn through_real_proxies_for_s3_and_the_api() {
    let recs = four();
    let Some(node) = node_with(&recs) else { return };
    let (aws, gws) = (Proxy::start(), Proxy::start());
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let (aws_port, gws_port) = (aws.port.to_string(), gws.port.to_string());
    let o = node.download(
        &target,
        &[
            "--now",
            NOW,
            "--max-age",
            "3",
            "--aws-proxy-host",
            "127.0.0.1",
            "--aws-proxy-port",
            &aws_port,
            "--gws-proxy-host",
            "http://127.0.0.1",
            "--gws-proxy-port",
            &gws_port,
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_complete(&node, &target, &recs, "audio/mp3|video/mp4");
    let (aws_log, gws_log) = (aws.log(), gws.log());
    // Every media file came from S3 through its proxy (the API's user is `ops`: store paths).
    let s3 = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    for (path, _) in expected_media(&recs, "audio/mp3|video/mp4") {
        let name = path.rsplit('/').next().unwrap();
        let line = aws_log.lines().find(|l| l.contains("GET ") && l.contains(name));
        assert!(
            line.is_some_and(|l| l.contains(s3.trim_end_matches('/'))),
            "{name} not fetched through the S3 proxy:\n{aws_log}"
        );
        assert!(!gws_log.contains(name), "{name} went through the API proxy:\n{gws_log}");
    }
    assert!(
        gws_log.contains(&format!("GET {}/recordings?", node.prefix())),
        "the listing not through the API proxy:\n{gws_log}"
    );
    assert!(!aws_log.contains("/api/v2/"), "API requests through the S3 proxy:\n{aws_log}");
}

/// Issue 22: as RCBS lays them out ("each recording folder has encrypted voice and screen
/// recording files"), a screen recording whose call is in the download lands inside the call's
/// folder, in `screen/<screen id>/` (GIR's backup layout, which `reclife ingest` reads back),
/// under the call's start time even when the screen started in the next hour, and wherever
/// the two were listed. A screen whose call is not in the download keeps a folder of its own
/// under its own start. `--check` agrees with that layout.
#[test]
fn screens_land_in_their_calls_folder() {
    let data = |i: u64| content(500 + i, 12_000 + i as usize);
    let screen = |id: &str, call: &str, start: &str, stop: &str, i: u64| {
        serde_json::json!({"id": id, "callRecordingId": call, "startTime": start, "stopTime": stop,
            "mediaFiles": [{"mediaId": format!("{id}.mp4"), "type": "video/mp4", "size": data(i).len().to_string(),
                "startTime": start, "stopTime": stop, "mediaUri": format!("/screen-recordings/{id}/play/{id}.mp4")}]})
    };
    let calls = serde_json::json!({"recordings": [
        hostile::doc("C1", "2025-03-10T09:59:00Z", "2025-03-10T10:06:00Z", "/recordings/C1/play/C1.mp3", data(1).len() as u64)]});
    // S1's call is C1; S2's call is not listed.
    let screens = serde_json::json!({"recordings": [
        screen("S2", "CX", "2025-03-10T10:30:00Z", "2025-03-10T10:35:00Z", 3),
        screen("S1", "C1", "2025-03-10T10:00:00Z", "2025-03-10T10:05:00Z", 2)]});
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&calls),
        "/api/v2/screen-recordings" => Resp::json(&screens),
        "/api/v2/recordings/C1/play/C1.mp3" => Resp::bytes(200, data(1)),
        "/api/v2/screen-recordings/S1/play/S1.mp4" => Resp::bytes(200, data(2)),
        "/api/v2/screen-recordings/S2/play/S2.mp4" => Resp::bytes(200, data(3)),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let o = hostile_cmd(&a.url, &target).output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let got: Vec<String> = tree(&target).into_keys().collect();
    assert_eq!(
        got,
        [
            "2025/03/10/09/C1/C1.mp3",
            "2025/03/10/09/C1/meta-data.json",
            "2025/03/10/09/C1/screen/S1/S1.mp4",
            "2025/03/10/09/C1/screen/S1/meta-data.json",
            "2025/03/10/10/S2/S2.mp4",
            "2025/03/10/10/S2/meta-data.json",
        ]
    );
    assert_eq!(std::fs::read(target.join("2025/03/10/09/C1/screen/S1/S1.mp4")).unwrap(), data(2));
    let mut c = hostile_cmd(&a.url, &target);
    c.arg("--check");
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("checked 3 recording(s), 3 media file(s): 0 missing, 0 extra, 0 mismatched"),
        "{}",
        stdout(&o)
    );
}

/// `hostile_cmd` without `--quiet`: stderr is a pipe, so progress comes as plain lines.
fn hostile_cmd_with_lines(origin: &str, target: &Path) -> std::process::Command {
    let quiet = hostile_cmd(origin, target);
    let mut c = std::process::Command::new(bin());
    c.args(quiet.get_args().filter(|a| *a != "--quiet"))
        .env("GWS_USERNAME", USER.0)
        .env("GWS_PASSWORD", USER.1)
        .env_remove("RECLIFE_NOW")
        .env_remove("RECLIFE_CONFIG");
    c
}

/// Issue 24: without a terminal, progress lines are about slices that hold recordings (an empty
/// slice says nothing, where it used to print a 100 % line each), and a listing without sizes
/// shows the bytes as unknown, never `25076/0 bytes`.
#[test]
fn progress_lines_skip_empty_slices_and_show_unknown_sizes_as_unknown() {
    let id = "RECNOSIZE";
    let start = "2025-03-10T16:49:00.000+0000";
    let body = content(8, 25_076);
    let mut rec = hostile::doc(id, start, "2025-03-10T16:50:00.000+0000", "/media/nosize.mp3", 0);
    rec["mediaFiles"][0].as_object_mut().unwrap().remove("size");
    let (page, b2) = (serde_json::json!({ "recordings": [rec] }), body.clone());
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page),
        "/api/v2/media/nosize.mp3" => Resp::bytes(200, b2.clone()),
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let o = hostile::output_within(hostile_cmd_with_lines(&a.url, &target), 60);
    let err = stderr(&o);
    assert!(o.status.success(), "{}{err}", stdout(&o));
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("slice ")).collect();
    assert!(!lines.is_empty(), "no progress line at all: {err}");
    // Only the one slice holding the recording speaks (the period's other slices are empty).
    let slices: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(slices.len(), 1, "{err}");
    assert!(lines.iter().all(|l| l.contains("(1/1 recordings") || l.contains("(0/1 recordings")), "{err}");
    assert!(!err.contains("/0 bytes"), "an unknown total shown as 0: {err}");
    assert!(err.contains("25076 bytes (total unknown)"), "{err}");
}

/// Issue 24: SIGTERM stops a download where it is, with a line saying how far it got (exit 143).
#[test]
fn sigterm_stops_a_download_with_a_summary_line() {
    let start = "2025-03-10T16:49:00.000+0000";
    let stop = "2025-03-10T16:50:00.000+0000";
    let fast = content(9, 1000);
    let recs = vec![
        hostile::doc("RECFAST", start, stop, "/media/fast.mp3", 1000),
        hostile::doc("RECSLOW", "2025-03-11T16:49:00.000+0000", "2025-03-11T16:50:00.000+0000", "/media/slow.mp3", 10),
    ];
    let page = serde_json::json!({ "recordings": recs });
    // Set as the slow file is asked for (the server logs a request once it is answered).
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked2 = asked.clone();
    let a = hostile::bind().serve(move |r| match r.path() {
        "/api/v2/recordings" => Resp::json(&page),
        "/api/v2/media/fast.mp3" => Resp::bytes(200, fast.clone()),
        "/api/v2/media/slow.mp3" => {
            asked2.store(true, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_secs(60));
            Resp::bytes(200, vec![0; 10])
        }
        _ => Resp::not_found(),
    });
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let mut cmd = hostile_cmd_with_lines(&a.url, &target);
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while !asked.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(t0.elapsed().as_secs() < 60, "the slow file was never asked for");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let t1 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t1.elapsed().as_secs() > 20 {
            let _ = child.kill();
            panic!("still running 20 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    let line = err.lines().find(|l| l.starts_with("stopped by SIGTERM")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("1 recording(s) done") && line.contains("1000 bytes"), "{line}");
    assert!(line.contains("run again"), "{line}");
}
