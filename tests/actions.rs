//! Dashboard actions through `dcmon serve`: an admin logs in (curl keeps the cookies, as
//! a browser would), sets a fan mode with the form's CSRF token, follows the output as
//! server-sent events, and finds the run in the audit trail. It goes over the session
//! serve already holds (sshd sees no new login). A POST without the token sends nothing.

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use testbed::dashboard::Dashboard;
use testbed::shims::recording_ipmitool;
use testbed::{Sshd, dcmon, json_lines};

const TOKEN: &str = "0123456789abcdef-admin";

/// curl keeping cookies in `jar`, as a browser would.
fn curl(jar: &str, args: &[&str]) -> (u16, String) {
    let mut all = vec!["-b", jar, "-c", jar];
    all.extend_from_slice(args);
    testbed::dashboard::curl(&all)
}

fn field(html: &str, name: &str) -> String {
    testbed::dashboard::form_field(html, name)
}

fn logins(bed: &Sshd) -> usize {
    bed.log().matches("Accepted publickey").count()
}

#[test]
fn an_admin_sets_a_fan_mode_from_the_dashboard_over_the_live_session() {
    let root = tempfile::Builder::new()
        .prefix("dcmon-act-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = root.path().join("calls.log");
    recording_ipmitool(root.path(), &log);
    let bed = Sshd::start_with(&[("127.6.1.1", root.path())]);
    let known_hosts = bed.write(
        "known_hosts",
        &bed.known_hosts_lines(&["127.6.1.1".to_string()]),
    );
    let token = bed.write("admin.token", &format!("{TOKEN}\n"));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let inventory = format!(
        "{}interval = \"1s\"\n\n[[hosts]]\nname = \"sm\"\naddress = \"127.6.1.1\"\nfan_profile = \"supermicro\"\n\n[web]\nadmin_token_file = \"{}\"\n",
        bed.defaults(&known_hosts, "10s"),
        token.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let serve = Dashboard::serve(&inv, &db);
    serve.wait_for_json("/api/hosts", Duration::from_secs(30), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter()
                .any(|h| h["host"] == "sm" && h["status"] == "online")
        })
    });
    let url = |path: &str| format!("{}{path}", serve.url);
    let jar_file = bed.dir.path().join("cookies.txt");
    let jar = jar_file.to_str().unwrap();

    // Log in as admin through the form.
    let (_, page) = curl(jar, &[&url("/login")]);
    let (status, answer) = curl(
        jar,
        &[
            "--data-urlencode",
            &format!("token={TOKEN}"),
            "--data-urlencode",
            &format!("csrf={}", field(&page, "csrf")),
            &url("/login"),
        ],
    );
    assert_eq!(status, 303, "{answer}");
    let (_, host_page) = curl(jar, &[&url("/hosts/sm")]);
    let csrf = field(&host_page, "csrf");
    let before = logins(&bed);
    assert!(before >= 1, "serve's own login is in sshd's log");

    // Without the form's CSRF token: refused, and nothing reaches the host.
    let (status, body) = curl(
        jar,
        &[
            "-d",
            "action=fan-set&mode=full&confirm=yes",
            &url("/hosts/sm/actions"),
        ],
    );
    assert_eq!(status, 403, "{body}");
    assert!(!log.exists() || !std::fs::read_to_string(&log).unwrap().contains("0x45 0x01"));

    // With it: the mode is set, and the output streams.
    let form = format!("action=fan-set&mode=full&confirm=yes&csrf={csrf}");
    let (status, answer) = curl(jar, &["-d", &form, &url("/hosts/sm/actions")]);
    assert_eq!(status, 303, "{answer}");
    let location = testbed::dashboard::location(&answer);
    assert!(location.starts_with("/actions/"), "{location}");
    let (status, events) = curl(
        jar,
        &[
            "-N",
            "--max-time",
            "20",
            &url(&format!("{location}/events")),
        ],
    );
    assert_eq!(status, 200, "{events}");
    assert!(
        events.contains("content-type: text/event-stream"),
        "{events}"
    );
    assert!(
        events.contains("event: done\ndata: {\"exit_code\":0,\"status\":\"ok\"}"),
        "{events}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l == "raw 0x30 0x45 0x01 0x01"),
        "{calls}"
    );
    assert_eq!(logins(&bed), before, "the action used serve's own session");

    // System information: its output is on the action's page.
    let (status, answer) = curl(
        jar,
        &[
            "-d",
            &format!("action=sysinfo&csrf={csrf}"),
            &url("/hosts/sm/actions"),
        ],
    );
    assert_eq!(status, 303, "{answer}");
    let location = testbed::dashboard::location(&answer);
    let (_, events) = curl(
        jar,
        &[
            "-N",
            "--max-time",
            "20",
            &url(&format!("{location}/events")),
        ],
    );
    assert!(events.contains("event: done"), "{events}");
    let (_, page) = curl(jar, &[&url(&location)]);
    assert!(page.contains("Linux"), "uname -a: {page}");
    assert!(page.contains("Device ID"), "ipmitool mc info: {page}");

    // Both are in the audit trail, with who asked.
    let audit = json_lines(&dcmon(&["audit", "--db", db.to_str().unwrap(), "--json"]));
    let set = audit
        .iter()
        .find(|e| e["action"] == "fan-set")
        .expect("fan-set audited");
    assert_eq!(set["who"], "web:admin@127.0.0.1");
    assert_eq!(set["status"], "ok");
    assert_eq!(
        set["command"],
        "'ipmitool' 'raw' '0x30' '0x45' '0x01' '0x01'"
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "sysinfo" && e["status"] == "ok"),
        "{audit:?}"
    );
    let (_, page) = curl(jar, &[&url("/audit")]);
    assert!(page.contains("web:admin@127.0.0.1"), "{page}");
}
