//! Log collection, custom scripts and `become` through `dcmon poll` on test-bed hosts.

mod testbed;

use rusqlite::Connection;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use testbed::{Sshd, json_lines, poll};

fn shared_dir() -> tempfile::TempDir {
    // The test-bed user must read what the test writes here.
    let dir = tempfile::Builder::new()
        .prefix("dcmon-logs-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn stored_lines(db: &Path, host: &str, source: &str) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT message FROM logs WHERE host = ?1 AND source = ?2 ORDER BY id")
        .unwrap();
    stmt.query_map([host, source], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn appended_lines_are_stored_once_across_rotation() {
    let files = shared_dir();
    let log = files.path().join("app.log");
    append(&log, "old history, never imported\n");
    let bed = Sshd::start();
    let host = "127.0.3.1";
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&[host.to_string()]));
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"{host}\"\nprobes = [\"logs\"]\nlog_files = [\"{}\"]\n",
        bed.defaults(&known_hosts, "20s"),
        log.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let source = log.display().to_string();
    let round = || {
        let out = poll(&inv, &db);
        let result = json_lines(&out).remove(0);
        assert_eq!(
            result["status"],
            "ok",
            "{result}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        result
    };
    round(); // first sight: starts at the end of the file
    assert_eq!(stored_lines(&db, host, &source), Vec::<String>::new());

    append(&log, "line 1\nline 2\nline 3 half");
    round();
    append(&log, " written\n");
    round();
    // logrotate: more lines land in the old file, it becomes app.log.1, a new file starts.
    append(&log, "line 4 before rotation\n");
    std::fs::rename(&log, files.path().join("app.log.1")).unwrap();
    append(&log, "line 5 after rotation\n");
    round();
    append(&log, "line 6\n");
    round();
    round(); // nothing new: nothing stored twice
    assert_eq!(
        stored_lines(&db, host, &source),
        [
            "line 1",
            "line 2",
            "line 3 half written",
            "line 4 before rotation",
            "line 5 after rotation",
            "line 6"
        ]
    );

    // dmesg is refused to normal users on Debian: a fact about the host, not a failure.
    let conn = Connection::open(&db).unwrap();
    let unavailable: Option<String> = conn
        .query_row(
            "SELECT value FROM facts WHERE host = ?1 AND key = 'logs_unavailable'",
            [host],
            |r| r.get(0),
        )
        .ok();
    if std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|v| v.trim() == "1") {
        assert!(
            unavailable.unwrap_or_default().starts_with("dmesg: "),
            "dmesg restricted here"
        );
    }
}

#[test]
fn custom_scripts_and_become_failures() {
    let files = shared_dir();
    let script = files.path().join("gpu-jobs.sh");
    std::fs::write(&script, "#!/bin/sh\necho '# TYPE gpu_jobs_running gauge'\necho 'gpu_jobs_running{queue=\"train\"} 7'\necho 'gpu_jobs_running{queue=\"infer\" 2'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bed = Sshd::start();
    let (custom, root) = ("127.0.3.2", "127.0.3.3");
    let known_hosts = bed.write(
        "known_hosts",
        &bed.known_hosts_lines(&[custom.to_string(), root.to_string()]),
    );
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"{custom}\"\nprobes = [\"custom\"]\ncustom_scripts = [\"{}\"]\n\n[[hosts]]\nname = \"{root}\"\nbecome = true\n",
        bed.defaults(&known_hosts, "20s"),
        script.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let out = poll(&inv, &db);
    let results = json_lines(&out);
    let conn = Connection::open(&db).unwrap();
    let jobs: f64 = conn
        .query_row("SELECT x.value FROM series s JOIN samples x ON x.series_id = s.id WHERE s.host = ?1 AND s.name = 'gpu_jobs_running' AND s.labels LIKE '%\"train\"%'", [custom], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs, 7.0);
    // The malformed line is reported with its number; the good line still counted.
    let warnings: String = conn
        .query_row(
            "SELECT warnings FROM probe_runs WHERE host = ?1 AND probe = 'custom'",
            [custom],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        warnings,
        format!(
            "section `{}` line 3: label set is not closed with `}}`",
            script.display()
        )
    );
    assert_eq!(results[0]["status"], "ok");

    // The test-bed user has no sudo rights: become = true fails as such, clearly.
    let become_error = results[1]["error"].as_str().unwrap();
    assert!(
        become_error
            .starts_with("sudo -n failed (passwordless sudo needed for become = true): sudo:")
            || become_error.starts_with("sudo is not installed on the host"),
        "{become_error}"
    );
}
