//! `reclife rules validate`: every problem with its file and line, a non-zero exit; the shipped
//! example rules validate.

use std::process::Command;

fn validate(dir: &std::path::Path) -> (bool, String, String) {
    let data = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .args(["--data-dir", data.path().to_str().unwrap(), "rules", "validate", dir.to_str().unwrap()])
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

#[test]
fn the_shipped_rules_validate() {
    // The examples ship disabled, with a placeholder location that validation flags.
    let (ok, out, err) = validate(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"));
    assert!(!ok, "{out}{err}");
    let flagged: Vec<&str> = err.lines().filter(|l| l.contains("is the shipped placeholder")).collect();
    assert_eq!(flagged.len(), 2, "{err}");
    assert!(
        err.lines().all(|l| l.is_empty()
            || l.contains("placeholder")
            || l.contains("warning: rule [Purge old files]")
            || l.contains("warning: rule [Selective recording]")),
        "only the placeholder is flagged: {err}"
    );
    for f in ["backup-and-purge.toml", "daily-backup.toml", "purge-old.toml", "selective-recording.toml"] {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules").join(f)).unwrap();
        assert!(text.lines().any(|l| l.starts_with("enabled = false")), "{f} ships enabled");
    }
    // The demo's rules validate, with the demo's private default location.
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("demo.toml");
    std::fs::write(&cfg, format!("default_backup_location = \"file://{}/backups\"\n", data.path().display())).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .args(["--data-dir", data.path().to_str().unwrap(), "--config", cfg.to_str().unwrap(), "rules", "validate"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo-rules"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 rule(s) valid, 0 problem(s)"));
}

#[test]
fn problems_name_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = tmp.path().join("backups");
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let cases = [
        ("unknown.toml", "name = \"a\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfiltr = {}\n", 5, "filtr"),
        ("cron.toml", "name = \"b\"\n\nschedule = \"0 0 2 * *\"\n[[tasks]]\ntype = \"purge\"\n", 3, "cron"),
        (
            "ages.toml",
            "name = \"c\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { minAge = 9, maxAge = 3 }\n",
            5,
            "min_age",
        ),
        (
            "order.toml",
            "name = \"d\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\n[[tasks]]\ntype = \"purge\"\n",
            3,
            "must be the last",
        ),
        (
            "two.toml",
            "name = \"e\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\n[[tasks]]\ntype = \"purge\"\n",
            5,
            "only one purge",
        ),
        (
            "differ.toml",
            &format!(
                "name = \"f\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"backup\"\nfilter = {{ min_age = 365 }}\nlocation = \"file://{}\"\n[[tasks]]\ntype = \"purge\"\nfilter = {{ min_age = 30 }}\n",
                loc.display()
            ),
            9,
            "must equal",
        ),
        (
            "unwritable.toml",
            &format!(
                "name = \"g\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"backup\"\nlocation = \"file://{}/sub\"\n",
                blocker.display()
            ),
            5,
            "cannot create",
        ),
        ("ftp.toml", "name = \"h\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"backup\"\n\nlocation = \"ftp://b/p\"\n", 6, "unknown scheme"),
        ("type.toml", "name = \"i\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"archive\"\n", 4, "archive"),
        (
            "huge.toml",
            "name = \"j\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 4294967295 }\n",
            5,
            "more than 36500 days",
        ),
        (
            "no-min-age.toml",
            "name = \"k\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { recording_type = \"voice\" }\n",
            5,
            "a purge needs min_age",
        ),
    ];
    for (file, text, line, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), text).unwrap();
        let (ok, _, err) = validate(dir.path());
        assert!(!ok, "{file}: accepted");
        let prefix = format!("{}:{line}:", dir.path().join(file).display());
        assert!(
            err.lines().any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "{file}: wanted {prefix} … {needle}, got {err}"
        );
    }
}

/// A purge with no age bound deletes every recording of its type: the CLI refuses it unless
/// told --all-ages --yes; a huge age is an error, not a panic.
#[test]
fn a_purge_without_an_age_bound_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
            .args(["--data-dir", data.path().to_str().unwrap(), "-q"])
            .args(args)
            .env_remove("RECLIFE_CONFIG")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    assert_eq!(run(&["init"]).0, Some(0));
    // Refused tasks are usage errors: exit 2.
    let (code, err) = run(&["purge", "--type", "voice"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("a purge needs min_age") && err.contains("--all-ages --yes"), "{err}");
    let (code, err) = run(&["purge", "--type", "voice", "--all-ages"]);
    assert_eq!(code, Some(2), "--all-ages alone is not enough: {err}");
    let (code, err) = run(&["purge", "--type", "voice", "--all-ages", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(&["purge", "--type", "voice", "--min-age", "4294967295", "--dry-run"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("more than 36500 days") && !err.contains("panicked"), "{err}");
    let (code, err) =
        run(&["backup", "--type", "voice", "--max-age", "4000000000", "--dry-run", "--location", "file:///tmp/x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A purge that follows a backup into a folder every local user can write is refused, by
/// validation and at run time.
#[test]
fn a_purge_after_a_backup_into_a_world_writable_folder_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("bp.toml"),
        format!(
            "name = \"bp\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"backup\"\nfilter = {{ min_age = 365 }}\nlocation = \"file://{}\"\n[[tasks]]\ntype = \"purge\"\nfilter = {{ min_age = 365 }}\n",
            open.display()
        ),
    )
    .unwrap();
    let (ok, _, err) = validate(&rules);
    assert!(!ok);
    assert!(err.contains("bp.toml:7:") && err.contains("which every local user can write"), "{err}");
}

/// A purge with no backup before it validates, with a warning.
#[test]
fn a_purge_without_a_backup_first_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "name = \"only purge\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 400 }\n",
    )
    .unwrap();
    let (ok, out, err) = validate(dir.path());
    assert!(ok, "{out}{err}");
    assert!(err.contains("p.toml: warning: rule [only purge] task 1 purges without backing up first"), "{err}");
}

/// Issue 20, sequence 10: the quickstart's demo touches nothing but its own scratch folder. A
/// real node's `RECLIFE_DATA_DIR` and `RECLIFE_CONFIG` in the environment are ignored (their
/// files are left as they were), a scratch folder the demo did not make is never removed, and
/// nothing the demo writes is tracked by git.
#[test]
fn the_demo_touches_only_its_own_scratch_folder() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real-node");
    std::fs::create_dir_all(real.join("media/KEEP")).unwrap();
    std::fs::write(real.join("catalog.db"), b"a real node's catalog").unwrap();
    std::fs::write(real.join("media/KEEP/a.mp3"), b"a real recording").unwrap();
    std::fs::write(real.join("node.toml"), "contact_center_id = \"real\"\n").unwrap();
    let demo = |dir: &std::path::Path| {
        Command::new("bash")
            .arg(repo.join("deploy/demo.sh"))
            .env("RECLIFE_DEMO_BIN", env!("CARGO_BIN_EXE_reclife"))
            .env("RECLIFE_DEMO_DIR", dir)
            .env("RECLIFE_DATA_DIR", &real)
            .env("RECLIFE_CONFIG", real.join("node.toml"))
            .env("RECLIFE_CATALOG", real.join("catalog.db"))
            .output()
            .unwrap()
    };
    let scratch = tmp.path().join("demo");
    for run in 0..2 {
        let o = demo(&scratch);
        assert!(
            o.status.success(),
            "demo run {run}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(scratch.join("backups/Environment-voice-0-365-20250625180000.zip").is_file());
        assert!(scratch.join("data/audit/deletions.jsonl").is_file());
    }
    assert_eq!(std::fs::read(real.join("catalog.db")).unwrap(), b"a real node's catalog");
    assert_eq!(std::fs::read(real.join("media/KEEP/a.mp3")).unwrap(), b"a real recording");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 3, "the demo wrote into the real node");
    // A folder the demo did not make is refused, not removed.
    let other = tmp.path().join("someones-folder");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious"), b"x").unwrap();
    let o = demo(&other);
    assert!(!o.status.success(), "the demo took over a folder it did not make");
    assert!(String::from_utf8_lossy(&o.stderr).contains("was not made by this demo"));
    assert!(other.join("precious").is_file());
    // The quickstart is light: the demo installs what building it needs, not the test
    // servers, browsers or Python tools (deploy/install.sh, for deploy/test.sh), and release
    // binaries carry no debug info (a profiling profile keeps it).
    let script = std::fs::read_to_string(repo.join("deploy/demo.sh")).unwrap();
    let code: String = script.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    assert!(!code.contains("install.sh"), "demo.sh runs the test install");
    for heavy in ["apache2", "postgresql", "chromium", "seaweedfs", "schemathesis", "playwright", "nodejs", "tinyproxy"]
    {
        assert!(!code.contains(heavy), "demo.sh installs {heavy}");
    }
    assert!(code.contains("libavcodec-dev") && code.contains("pkg-config"), "demo.sh installs what the build needs");
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(repo.join("Cargo.toml")).unwrap()).unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("debug").and_then(|d| d.as_bool()), Some(false), "{release}");
    assert_eq!(release.get("strip").and_then(|d| d.as_str()), Some("debuginfo"), "{release}");
    assert_eq!(manifest["profile"]["profiling"]["inherits"].as_str(), Some("release"));
    // Nothing of the demo's is tracked (the archives it used to rewrite in the repo are gone).
    let tracked = Command::new("git")
        .args(["ls-files", "--", "reclife-backups", "demo-run", "reclife-data"])
        .current_dir(repo)
        .output()
        .unwrap();
    if tracked.status.success() {
        assert!(tracked.stdout.is_empty(), "tracked: {}", String::from_utf8_lossy(&tracked.stdout));
    }
}
