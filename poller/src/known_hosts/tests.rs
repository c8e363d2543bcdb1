//! known_hosts matching, with keys made by ssh-keygen (hashed line by `ssh-keygen -H`).

use super::*;

const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMQW/o5I31kq5aACnb1TMLnhTduv4XfNqpkCdU41yNka";
const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBtLT9oz7t9mUaKUu22uTInSMX8VBrv03hq1gk9Kw4Tq";
const K3_ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBO/8IoFkGOaH6qSSZavbs3xKZl6AO6BXjkM0Xj5+cEycvi8J/Id3teuffgF7Q95nyCUp2xaQBT0M2Ex0WJytODE=";

fn key(b64: &str) -> PublicKey {
    russh::keys::parse_public_key_base64(b64).unwrap()
}

fn file(text: &str) -> (tempfile::TempDir, KnownHosts) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_hosts");
    std::fs::write(&path, text).unwrap();
    let kh = KnownHosts::load(&path).unwrap();
    (dir, kh)
}

#[test]
fn plain_port_and_wildcard_names() {
    let text = format!(
        "# comment\n\
         db1,10.0.0.5 ssh-ed25519 {K1}\n\
         [gpu01]:2222 ssh-ed25519 {K1}\n\
         *.dc1,!bad.dc1 ssh-ed25519 {K2}\n"
    );
    let (_d, kh) = file(&text);
    assert_eq!(kh.check("db1", 22, &key(K1)), Verdict::Trusted);
    assert_eq!(kh.check("10.0.0.5", 22, &key(K1)), Verdict::Trusted);
    assert_eq!(kh.check("gpu01", 2222, &key(K1)), Verdict::Trusted);
    assert_eq!(kh.check("gpu01", 22, &key(K1)), Verdict::Unknown);
    assert_eq!(kh.check("n7.DC1", 22, &key(K2)), Verdict::Trusted);
    assert_eq!(kh.check("bad.dc1", 22, &key(K2)), Verdict::Unknown);
    assert!(matches!(
        kh.check("db1", 22, &key(K2)),
        Verdict::Changed { line: 2, .. }
    ));
}

#[test]
fn hashed_names_match() {
    let text =
        format!("|1|JhxLFh8BXJMSi68BPvV+5zO5pVM=|Fjhgz6wMX+snFbd3ma0nQfjtV2M= ssh-ed25519 {K1}\n");
    let (_d, kh) = file(&text);
    assert_eq!(kh.check("hashed.example", 2222, &key(K1)), Verdict::Trusted);
    assert_eq!(kh.check("hashed.example", 22, &key(K1)), Verdict::Unknown);
    assert!(matches!(
        kh.check("hashed.example", 2222, &key(K2)),
        Verdict::Changed { .. }
    ));
}

/// russh's own helper reads two keys of one host as a change; OpenSSH accepts either.
#[test]
fn two_keys_for_one_host_both_trusted() {
    let text =
        format!("h ssh-ed25519 {K1}\nh ssh-ed25519 {K2}\nh ecdsa-sha2-nistp256 {K3_ECDSA}\n");
    let (_d, kh) = file(&text);
    for k in [K1, K2, K3_ECDSA] {
        assert_eq!(kh.check("h", 22, &key(k)), Verdict::Trusted);
    }
}

#[test]
fn revoked_key_is_refused_everywhere() {
    let text = format!("@revoked * ssh-ed25519 {K2}\nh ssh-ed25519 {K2}\n");
    let (_d, kh) = file(&text);
    assert_eq!(kh.check("h", 22, &key(K2)), Verdict::Revoked { line: 1 });
}

#[test]
fn learned_keys_are_appended_and_trusted() {
    let (dir, kh) = file("# no newline at end");
    kh.learn("127.0.1.9", 2200, &key(K1)).unwrap();
    kh.learn("127.0.1.9", 2200, &key(K1)).unwrap();
    assert_eq!(kh.check("127.0.1.9", 2200, &key(K1)), Verdict::Trusted);
    let text = std::fs::read_to_string(dir.path().join("known_hosts")).unwrap();
    assert_eq!(
        text,
        format!("# no newline at end\n[127.0.1.9]:2200 ssh-ed25519 {K1}\n")
    );
    let reread = KnownHosts::load(&dir.path().join("known_hosts")).unwrap();
    assert_eq!(reread.check("127.0.1.9", 2200, &key(K1)), Verdict::Trusted);
}

#[test]
fn missing_file_knows_nothing() {
    let kh = KnownHosts::load(Path::new("/nonexistent/dcmon/known_hosts")).unwrap();
    assert_eq!(kh.check("h", 22, &key(K1)), Verdict::Unknown);
}
