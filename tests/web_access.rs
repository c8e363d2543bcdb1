//! `dcmon serve`'s dashboard behind a login and over HTTPS: settings from the
//! inventory's `[web]`, a real TLS client (curl) checking our certificate, bearer tokens
//! for the API, a login through the form, and clear refusals of unsafe token files.

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use testbed::dashboard::Dashboard;

const TOKEN: &str = "0123456789abcdef-admin";

/// A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `dir`).
fn certificate(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=dcmon-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn inventory(dir: &Path, web: &str) -> std::path::PathBuf {
    let path = dir.join("inventory.toml");
    write(
        &path,
        &format!(
            "[[hosts]]\nname = \"me\"\ntransport = \"local\"\nprobes = [\"os\"]\n\n[web]\n{web}"
        ),
        0o644,
    );
    path
}

/// curl with our CA: (status, headers and body).
fn curl(dir: &Path, args: &[&str]) -> (u16, String) {
    let ca = dir.join("cert.pem");
    let mut all = vec!["--cacert", ca.to_str().unwrap()];
    all.extend_from_slice(args);
    testbed::dashboard::curl(&all)
}

#[test]
fn https_with_login_bearer_tokens_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificate(d);
    write(&d.join("admin.token"), &format!("{TOKEN}\n"), 0o600);
    let inv = inventory(
        d,
        "view = \"login\"\nadmin_token_file = \"admin.token\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    );
    let db = d.join("dcmon.db");
    let serve = Dashboard::serve(&inv, &db);
    assert!(serve.url.starts_with("https://127.0.0.1:"), "{}", serve.url);
    let url = |path: &str| format!("{}{path}", serve.url);

    // curl verifies our certificate against the CA file: this is real TLS.
    let (status, _) = curl(d, &[&url("/health")]);
    assert_eq!(status, 200);
    let (status, body) = curl(d, &[&url("/api/hosts")]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\":\"log in first"), "{body}");
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (status, body) = curl(d, &["-H", &bearer, &url("/api/hosts")]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = curl(d, &[&url("/hosts/me")]);
    assert_eq!(status, 303, "{body}");
    assert!(
        body.contains("location: /login?next=%2Fhosts%2Fme"),
        "{body}"
    );

    // The login form, with curl keeping cookies like a browser would.
    let jar = d.join("cookies.txt");
    let jar = jar.to_str().unwrap();
    let (_, page) = curl(d, &["-c", jar, &url("/login")]);
    let csrf = testbed::dashboard::form_field(&page, "csrf");
    let (status, answer) = curl(
        d,
        &[
            "-b",
            jar,
            "-c",
            jar,
            "--data-urlencode",
            &format!("token={TOKEN}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "next=/probes",
            &url("/login"),
        ],
    );
    assert_eq!(status, 303, "{answer}");
    let cookie = answer
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: dcmon_session=")
        })
        .unwrap_or_else(|| panic!("{answer}"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let (status, body) = curl(d, &["-b", jar, &url("/probes")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Probe health"), "{body}");

    // Plain HTTP on the HTTPS port gets nothing useful.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}/health", serve.address))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}

#[test]
fn unsafe_or_missing_files_stop_serve_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("dcmon.db");
    let start = |web: &str| {
        let inv = inventory(d, web);
        let out = Command::new(env!("CARGO_BIN_EXE_dcmon"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--inventory",
                inv.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{web}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    write(&d.join("open.token"), &format!("{TOKEN}\n"), 0o644);
    let err = start("admin_token_file = \"open.token\"\n");
    assert!(
        err.contains(&format!(
            "token file {}/open.token is open to every user (mode 0644)",
            d.display()
        )),
        "{err}"
    );
    write(&d.join("short.token"), "hunter2\n", 0o600);
    let err = start("admin_token_file = \"short.token\"\n");
    assert!(err.contains("holds 7 characters; use at least 16"), "{err}");
    let err = start("tls_cert = \"nowhere.pem\"\ntls_key = \"nowhere.key\"\n");
    assert!(
        err.contains(&format!(
            "cannot use TLS certificate {}/nowhere.pem",
            d.display()
        )),
        "{err}"
    );
    let err = start("view = \"login\"\n");
    assert!(
        err.contains("view = \"login\" needs a token to log in with"),
        "{err}"
    );
}
