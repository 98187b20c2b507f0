//! End to end on the built binary: ingest the sample recordings (folder and zip), list,
//! show, export, hold and label, re-ingest idempotently, and reject bad input by name.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn reclife(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reclife"))
        .arg("--data-dir")
        .arg(data)
        .arg("--quiet")
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .env_remove("RECLIFE_NOW")
        .output()
        .expect("run reclife")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn list_json(data: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["recordings", "list", "--json"];
    args.extend_from_slice(extra);
    ok(&reclife(data, &args)).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

const A: &str = "CALLA0000000000000000000000000001";
const C: &str = "CALLC0000000000000000000000000003";

#[test]
fn ingest_list_and_reingest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(&reclife(&data, &["ingest", testdata().join("recordings").to_str().unwrap()]));
    assert!(out.contains("ingested 6, updated 0, unchanged 0, rejected 0"), "{out}");

    let all = list_json(&data, &[]);
    let ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(ids[0], A, "start-time order");
    let a = &all[0];
    assert_eq!(a["type"], "voice");
    assert_eq!(a["startTime"], "2024-03-10T09:15:00.000Z");
    assert_eq!(a["region"], "us");
    assert_eq!(a["callType"], "Inbound");
    assert_eq!(a["mediaCount"], 1);
    assert_eq!(a["held"], false);
    let screens = list_json(&data, &["--type", "screen"]);
    assert_eq!(screens.len(), 2);
    assert!(screens.iter().any(|s| s["callRecordingId"] == A), "screen under screen/ belongs to its call");
    assert_eq!(list_json(&data, &["--held"]).len(), 1, "nonDelete is held");
    assert_eq!(list_json(&data, &["--has-screen"]).len(), 2);
    assert_eq!(list_json(&data, &["--attached", "CustomerSegment=gold"]).len(), 1);
    assert_eq!(list_json(&data, &["--from", "2025-06-24", "--to", "2025-06-25", "--type", "voice"]).len(), 2);
    assert_eq!(list_json(&data, &["--region", "eu"]).len(), 1);
    assert_eq!(list_json(&data, &["--label", "quality-review"]).len(), 1);
    assert_eq!(list_json(&data, &["--agent", "agent2000"]).len(), 1);
    assert_eq!(list_json(&data, &["--limit", "2"]).len(), 2);

    // Re-ingest: nothing new, nothing duplicated.
    let out = ok(&reclife(&data, &["ingest", testdata().join("recordings").to_str().unwrap()]));
    assert!(out.contains("ingested 0, updated 0, unchanged 6, rejected 0"), "{out}");
    assert_eq!(list_json(&data, &[]).len(), 6);

    // A changed document updates.
    let copy = tmp.path().join("copy");
    copy_tree(&testdata().join("recordings"), &copy);
    let meta = walk(&copy)
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains(A) && p.ends_with("meta-data.json") && !p.to_string_lossy().contains("screen")
        })
        .unwrap();
    let text = std::fs::read_to_string(&meta).unwrap().replace("\"region\": \"us\"", "\"region\": \"emea\"");
    std::fs::write(&meta, text).unwrap();
    let out = ok(&reclife(&data, &["ingest", copy.to_str().unwrap()]));
    assert!(out.contains("ingested 0, updated 1, unchanged 5"), "{out}");
    assert_eq!(list_json(&data, &["--region", "emea"]).len(), 1);
}

#[test]
fn show_export_hold_label() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&reclife(&data, &["ingest", testdata().join("recordings").to_str().unwrap()]));

    // show prints the stored document: the inner object of the API wrapper, unchanged.
    let shown: Value = serde_json::from_str(&ok(&reclife(&data, &["recordings", "show", A]))).unwrap();
    let src =
        walk(&testdata().join("recordings")).into_iter().find(|p| p.ends_with(format!("{A}/meta-data.json"))).unwrap();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    assert_eq!(shown, original["recording"]);
    assert_eq!(shown["x-undocumented"]["kept"], true);

    // export writes the document and the media as stored (encrypted stays encrypted).
    let top = tmp.path().join("export");
    ok(&reclife(&data, &["recordings", "export", C, "--out", top.to_str().unwrap()]));
    let out = top.join(C);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o700, "export folder is owner-only");
        for f in walk(&out) {
            assert_eq!(mode(&f), 0o600, "{} is not owner-only", f.display());
        }
    }
    let exported = std::fs::read(out.join(format!("{C}_0001.mp3"))).unwrap();
    let stored =
        std::fs::read(testdata().join(format!("recordings/cc1/Environment/2025/06/24/{C}/{C}_0001.mp3"))).unwrap();
    assert_eq!(exported, stored);
    assert_eq!(exported[0], 0x30, "still a CMS envelope");

    ok(&reclife(&data, &["recordings", "hold", A, "--reason", "litigation 7"]));
    // The nonDelete call, A, and A's screen recording (a call's hold protects its screens).
    let held = list_json(&data, &["--held"]);
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(held.iter().any(|r| r["callRecordingId"] == A && r["held"] == true), "{held:?}");
    ok(&reclife(&data, &["recordings", "unhold", A]));
    assert_eq!(list_json(&data, &["--held"]).len(), 1);
    ok(&reclife(&data, &["recordings", "label", A, "vip"]));
    let vip = list_json(&data, &["--label", "vip"]);
    assert_eq!(vip.len(), 1);
    assert_eq!(vip[0]["labels"], serde_json::json!(["vip"]));
    ok(&reclife(&data, &["recordings", "unlabel", A, "vip"]));
    assert!(list_json(&data, &["--label", "vip"]).is_empty());

    let o = reclife(&data, &["recordings", "show", "NOPE"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOPE"));
}

#[test]
fn bad_input_is_named_and_the_rest_goes_in() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bad = testdata().join("bad");
    let o = reclife(&data, &["ingest", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "exit 3 when something was rejected");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stdout.contains("ingested 1, updated 0, unchanged 0, rejected 6"), "{stdout}");
    for (dir, why) in [
        ("malformed", "malformed JSON"),
        ("no-id", "missing field `id`"),
        ("bad-time", "`startTime` has a time that does not parse"),
        ("missing-media", "missing media file"),
        ("escaping-media", "mediaFiles[0].mediaId"),
        ("escaping-id", "field `id` is invalid"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("bad/{dir}/meta-data.json")))
            .unwrap_or_else(|| panic!("no line for {dir}: {stderr}"));
        assert!(line.starts_with("rejected ") && line.contains(why), "{dir}: {line}");
    }
    assert_eq!(list_json(&data, &[]).len(), 1);
    // Nothing escaped the data directory.
    assert!(!tmp.path().join("etc").exists());
}

#[test]
fn zip_archive_in_gir_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("Environment-voice-0-0-20250625030000.zip");
    let st = Command::new("zip")
        .args(["-q", "-r", "-0", zip.to_str().unwrap(), "cc1"])
        .current_dir(testdata().join("recordings"))
        .status()
        .expect("zip CLI");
    assert!(st.success());
    let data = tmp.path().join("data");
    let out = ok(&reclife(&data, &["ingest", zip.to_str().unwrap()]));
    assert!(out.contains("ingested 6, updated 0, unchanged 0, rejected 0"), "{out}");
    // Same catalog as a folder ingest.
    let data2 = tmp.path().join("data2");
    ok(&reclife(&data2, &["ingest", testdata().join("recordings").to_str().unwrap()]));
    assert_eq!(list_json(&data, &[]), list_json(&data2, &[]));
    let out = ok(&reclife(&data, &["ingest", zip.to_str().unwrap()]));
    assert!(out.contains("unchanged 6"), "{out}");
    // Media bytes equal to the source files.
    let out_dir = tmp.path().join("x");
    ok(&reclife(&data, &["recordings", "export", A, "--out", out_dir.to_str().unwrap()]));
    let out_dir = out_dir.join(A);
    let src = walk(&testdata().join("recordings"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-0001.mp3") && p.to_string_lossy().contains(A))
        .unwrap();
    assert_eq!(
        std::fs::read(src).unwrap(),
        std::fs::read(out_dir.join(format!("{A}_2024-03-10_09-15-00-0001.mp3"))).unwrap()
    );
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for f in walk(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

fn doc(id: &str, media: &[&str]) -> String {
    let files: Vec<String> =
        media.iter().map(|m| format!(r#"{{"mediaId":"{m}","type":"audio/mp3","size":"4"}}"#)).collect();
    format!(
        r#"{{"id":"{id}","startTime":"2025-01-01T00:00:00Z","stopTime":"2025-01-01T00:01:00Z","mediaFiles":[{}]}}"#,
        files.join(",")
    )
}

/// Hostile folders and archives: a symlinked "media file" (pointing at a secret), a huge
/// metadata entry in a zip, a duplicate mediaId. Each is refused with its name; the good
/// recording beside them goes in; nothing panics; the secret never reaches the store.
#[test]
fn hostile_input_is_refused_and_named_and_the_rest_goes_in() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let src = tmp.path().join("src");
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, b"root:$6$hash").unwrap();
    for (id, media) in [("GOOD1", vec!["g.mp3"]), ("LINKED", vec!["l.mp3"]), ("DUP", vec!["d.mp3", "d.mp3"])] {
        let dir = src.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta-data.json"), doc(id, &media)).unwrap();
        for m in media {
            if id != "LINKED" {
                std::fs::write(dir.join(m), b"abcd").unwrap();
            }
        }
    }
    std::os::unix::fs::symlink(&secret, src.join("LINKED/l.mp3")).unwrap();
    let o = reclife(&data, &["ingest", src.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("LINKED") && err.contains("not a regular file"), "{err}");
    assert!(err.contains("DUP") && err.contains("mediaId d.mp3 appears twice"), "{err}");
    let ids: Vec<String> = list_json(&data, &[]).iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["GOOD1"]);
    for f in walk(&data.join("media")) {
        assert_ne!(std::fs::read(&f).unwrap(), b"root:$6$hash", "the symlink target was copied into the store");
    }
    // A zip whose metadata entry is larger than 16 MiB is refused without reading it whole.
    let zpath = tmp.path().join("big.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("cc/Environment/2025/01/01/HUGE/meta-data.json", opts).unwrap();
        let chunk = vec![b' '; 1 << 20];
        std::io::Write::write_all(&mut z, b"{\"id\":\"HUGE\",").unwrap();
        for _ in 0..17 {
            std::io::Write::write_all(&mut z, &chunk).unwrap();
        }
        z.start_file("cc/Environment/2025/01/01/OK2/meta-data.json", opts).unwrap();
        std::io::Write::write_all(&mut z, doc("OK2", &["o.mp3"]).as_bytes()).unwrap();
        z.start_file("cc/Environment/2025/01/01/OK2/o.mp3", opts).unwrap();
        std::io::Write::write_all(&mut z, b"abcd").unwrap();
        z.finish().unwrap();
    }
    let o = reclife(&data, &["ingest", zpath.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("HUGE") && err.contains("larger than the 16 MiB limit"), "{err}");
    let ids: Vec<String> = list_json(&data, &[]).iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["GOOD1", "OK2"]);
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `reclife ARGS` in `cwd` with no `--data-dir` (and none in the environment).
fn reclife_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reclife"))
        .current_dir(cwd)
        .arg("--quiet")
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .env_remove("RECLIFE_NOW")
        .env_remove("RECLIFE_DATA_DIR")
        .env_remove("RECLIFE_CATALOG")
        .output()
        .expect("run reclife")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Commands that only read or change data refuse a data dir with no catalog (exit 2, naming
/// it) and never create it; the commands that bring data in create it owner-only.
#[test]
fn a_data_dir_with_no_catalog_is_refused_by_name_and_never_created() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("reclife-dta");
    let loc = format!("file://{}", tmp.path().join("backups").display());
    for args in [
        &["check"][..],
        &["recordings", "list"],
        &["recordings", "show", A],
        &["recordings", "hold", A, "--reason", "x"],
        &["jobs", "list"],
        &["backup", "--type", "voice", "--min-age", "1", "--location", &loc, "--dry-run"],
        &["purge", "--type", "voice", "--min-age", "1", "--dry-run"],
        &["mux", "--once"],
        &["rules", "list"],
    ] {
        let o = reclife(&typo, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&typo.display().to_string()) && e.contains("no catalog"), "{args:?}: {e}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // Checking rule files reads no data: no data dir needed, none created.
    let o =
        reclife(&typo, &["rules", "validate", Path::new(env!("CARGO_MANIFEST_DIR")).join("rules").to_str().unwrap()]);
    assert!(!typo.exists() && o.status.code() != Some(2), "{}", stderr(&o));

    // init creates it (0700) and then the read-only commands find it.
    let data = tmp.path().join("data");
    ok(&reclife(&data, &["init"]));
    assert_eq!(mode(&data), 0o700);
    assert!(ok(&reclife(&data, &["check"])).contains("0 problem(s)"));
    // ingest creates its folders owner-only too, whatever the umask.
    let fresh = tmp.path().join("fresh/nested");
    ok(&reclife(&fresh, &["ingest", testdata().join("recordings").to_str().unwrap()]));
    for d in walk(&fresh).iter().filter_map(|f| f.parent()).chain([fresh.as_path(), fresh.join("media").as_path()]) {
        assert_eq!(mode(d), 0o700, "{} is not owner-only", d.display());
    }
    assert_eq!(mode(&tmp.path().join("fresh")), 0o700);
}

/// With no `--data-dir`: the config's `data_dir` (relative to the config file), else
/// `./reclife-data`, which only the data-creating commands create (with a note).
#[test]
fn the_default_data_dir_is_named_and_the_config_can_set_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = reclife_in(tmp.path(), &["recordings", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("./reclife-data"), "{}", stderr(&o));
    assert!(!tmp.path().join("reclife-data").exists());
    let o = reclife_in(tmp.path(), &["init"]);
    assert!(
        o.status.success() && stderr(&o).contains("note: creating the data directory ./reclife-data"),
        "{}",
        stderr(&o)
    );
    assert!(tmp.path().join("reclife-data/catalog.db").is_file());

    let etc = tmp.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("node.toml"), "data_dir = \"../var/node\"\n").unwrap();
    let cfg = etc.join("node.toml");
    let o = reclife_in(Path::new("/"), &["--config", cfg.to_str().unwrap(), "jobs", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("var/node"), "{}", stderr(&o));
    let src = testdata().join("recordings");
    let o = reclife_in(Path::new("/"), &["--config", cfg.to_str().unwrap(), "ingest", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp.path().join("var/node/catalog.db").is_file(), "data_dir is relative to the config file");
}

/// `export --out DIR`: one folder per recording; a folder that exists is refused and left as
/// it was.
#[test]
fn export_writes_one_folder_per_recording_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&reclife(&data, &["ingest", testdata().join("recordings").to_str().unwrap()]));
    let out = tmp.path().join("out");
    ok(&reclife(&data, &["recordings", "export", A, "--out", out.to_str().unwrap()]));
    ok(&reclife(&data, &["recordings", "export", C, "--out", out.to_str().unwrap()]));
    let doc = |id: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(id).join("meta-data.json")).unwrap()).unwrap()
    };
    assert_eq!(doc(A)["id"], A);
    assert_eq!(doc(C)["id"], C, "the second export did not replace the first");
    std::fs::write(out.join(A).join("meta-data.json"), "mine").unwrap();
    let o = reclife(&data, &["recordings", "export", A, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&out.join(A).display().to_string()) && stderr(&o).contains("never overwrites"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(out.join(A).join("meta-data.json")).unwrap(), "mine");
}

fn reclife_cfg(data: &Path, cfg: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    reclife(data, &all)
}

/// The command line's traps: usage errors found after parsing exit 2, dates wherever a time
/// is, help that keeps global options apart, purge-only flags on purge only, error text once,
/// seconds in output, jobs in creation order, a muxer pass that says where it looked, an
/// unlabel that changes nothing says so.
#[test]
fn cli_traps_exit_codes_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&reclife(&data, &["ingest", testdata().join("recordings").to_str().unwrap()]));

    // --from after --to: a usage error, not an empty answer.
    let o = reclife(&data, &["recordings", "list", "--from", "2025-06-25", "--to", "2025-06-24"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--from 2025-06-25T00:00:00Z is not before --to 2025-06-24T00:00:00Z"),
        "{}",
        stderr(&o)
    );
    // Dates for --now and --since/--until too (one parser).
    ok(&reclife(&data, &["--now", "2025-06-25", "recordings", "list"]));
    let out = ok(&reclife(&data, &["mux", "--since", "2025-06-01", "--until", "2025-06-02"]));
    assert!(out.contains("searched calls that ended from 2025-06-01T00:00:00Z to 2025-06-02T00:00:00Z"), "{out}");
    let o = reclife(&data, &["mux", "--since", "2025-06-02", "--until", "2025-06-01"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = ok(&reclife(&data, &["--now", "2025-06-25T12:00:00Z", "mux", "--once"]));
    assert!(out.contains("searched calls that ended from 2025-06-25T00:00:00Z to 2025-06-25T11:55:00Z"), "{out}");

    // Help: global options apart; --all-ages/--yes only where they mean something.
    let help = ok(&reclife(&data, &["backup", "--help"]));
    assert!(help.contains("Global options:"), "{help}");
    assert!(!help.contains("--all-ages") && !help.contains("--yes"), "{help}");
    let (own, global) = help.split_once("Global options:").unwrap();
    assert!(own.contains("--location") && !own.contains("--data-dir") && global.contains("--data-dir"), "{help}");
    assert!(ok(&reclife(&data, &["purge", "--help"])).contains("--all-ages"));
    let o = reclife(&data, &["purge", "--type", "voice", "--all-ages", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("confirm it with --yes"), "{}", stderr(&o));
    // A task the one task check refuses (no age) is a usage error too.
    let o = reclife(&data, &["purge", "--type", "voice", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A config file that does not exist: usage; an error with a cause is printed once.
    let o = reclife_cfg(&data, &tmp.path().join("nope.toml"), &["recordings", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = reclife_cfg(&data, tmp.path(), &["recordings", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).matches("(os error 21)").count(), 1, "{}", stderr(&o));

    // Unlabel of a label it does not have changes nothing and says so.
    let out = ok(&reclife(&data, &["recordings", "unlabel", A, "no-such-label"]));
    assert!(out.contains("has no label \"no-such-label\": nothing changed"), "{out}");

    // Jobs in creation order, even within one second of a fixed --now; times to the second.
    let loc = format!("file://{}", tmp.path().join("backups").display());
    let mut made = Vec::new();
    for _ in 0..5 {
        let out = ok(&reclife(
            &data,
            &["--now", "2026-01-01", "backup", "--type", "voice", "--min-age", "1", "--location", &loc, "--dry-run"],
        ));
        let id = out.split("planned as job ").nth(1).unwrap().split(' ').next().unwrap().to_string();
        made.push(id);
    }
    let list = ok(&reclife(&data, &["jobs", "list"]));
    let listed: Vec<&str> = list.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(listed, made, "{list}");
    assert!(list.lines().all(|l| l.ends_with("\t2026-01-01T00:00:00Z")), "{list}");
    let show = ok(&reclife(&data, &["jobs", "show", &made[0]]));
    assert!(show.contains("created 2026-01-01T00:00:00Z\n"), "{show}");
}

/// A typo in any section, `[download]` included, stops every command with the file and line;
/// `reclife config check` reports every section's problems with their lines.
#[test]
fn config_typos_are_named_with_their_line_and_config_check_checks_every_section() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&reclife(&data, &["init"]));
    let cfg = tmp.path().join("node.toml");
    std::fs::write(&cfg, "tenant = \"Environment\"\n\n[download]\nmin_age = 1\nmax_agee = 2\n").unwrap();
    for args in [&["recordings", "list"][..], &["jobs", "list"], &["config", "check"]] {
        let o = reclife_cfg(&data, &cfg, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&cfg.display().to_string()) && e.contains("line 5") && e.contains("max_agee"),
            "{args:?}: {e}"
        );
    }
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "rules_dir = \"{}\"\nmedia_location = \"ftp://x\"\n\n[download]\nmin_age = 1\nmax_age = \"soon\"\n",
            rules.display()
        ),
    )
    .unwrap();
    let o = reclife_cfg(&data, &cfg, &["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("{}:2: ", cfg.display())), "media_location on line 2: {out}");
    assert!(out.contains(&format!("{}:6: ", cfg.display())) && out.contains("maxAge"), "max_age on line 6: {out}");
    std::fs::write(&cfg, format!("rules_dir = \"{}\"\n[download]\nmin_age = 1\n", rules.display())).unwrap();
    let out = ok(&reclife_cfg(&data, &cfg, &["config", "check"]));
    assert!(out.contains("0 problem(s)"), "{out}");
}
