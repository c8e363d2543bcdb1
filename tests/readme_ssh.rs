//! The examples of README's "Using your OpenSSH setup" are real: its ssh_config and
//! inventories load, and resolve to what the text says.

mod testbed;

use std::path::Path;
use testbed::{dcmon_env, json_lines};

/// The section's code blocks: (language, text), in order.
fn blocks() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("## Using your OpenSSH setup")
        .expect("README has the section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in section[..end].lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.to_string(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn the_openssh_examples_load_and_resolve_as_the_readme_says() {
    let blocks = blocks();
    let langs: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(langs, ["sshconfig", "toml", "toml", "toml"], "{blocks:?}");
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("config"), &blocks[0].1).unwrap();
    // The files the examples name.
    private(&ssh.join("dcmon_ed25519"), "");
    private(&ssh.join("dcmon_rsa"), "");
    private(&ssh.join("dcmon_rsa.pass"), "passphrase\n");
    let env = [("HOME", home.path())];
    let resolved = |n: usize, host: &str| -> serde_json::Value {
        let inventory = home.path().join(format!("inventory{n}.toml"));
        std::fs::write(&inventory, &blocks[n].1).unwrap();
        let file = inventory.display().to_string();
        let check = dcmon_env(&["inventory", "check", &file], &env);
        assert!(
            check.status.success(),
            "example {n}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let out = dcmon_env(
            &["inventory", "list", &file, host, "--resolved", "--json"],
            &env,
        );
        json_lines(&out)
            .pop()
            .unwrap_or_else(|| panic!("example {n}: no {host}"))
    };

    // Names only: everything from ssh_config, the bastion too.
    let gpu = resolved(1, "gpu01");
    assert_eq!(gpu["address"], "gpu01.dc1.example.net");
    assert_eq!(gpu["user"], "monitor");
    assert_eq!(
        gpu["identity"],
        format!("agent, {}", ssh.join("dcmon_ed25519").display())
    );
    assert_eq!(gpu["jump"][0]["address"], "203.0.113.10");
    assert_eq!(gpu["jump"][0]["user"], "jump");
    assert_eq!(gpu["jump"][0]["port"], 22);
    let config = ssh.join("config").display().to_string();
    assert_eq!(
        gpu["origins"]["user"],
        format!("ssh_config {config}:7 (Host gpu*)")
    );

    // The bastion as an inventory host: the chain, and the bastion itself direct.
    let gpu = resolved(2, "gpu01.dc1.example.net");
    assert_eq!(gpu["jump"].as_array().unwrap().len(), 1, "{gpu}");
    assert_eq!(gpu["jump"][0]["name"], "bastion");
    assert_eq!(gpu["jump"][0]["user"], "jump");
    assert_eq!(gpu["identity"], "agent");
    let bastion = resolved(2, "bastion");
    assert_eq!(bastion["jump"], serde_json::json!([]));

    // An encrypted RSA key and its passphrase file.
    let db = resolved(3, "db1.dc1.example.net");
    assert_eq!(db["identity"], ssh.join("dcmon_rsa").display().to_string());
    assert_eq!(
        db["passphrase_file"],
        ssh.join("dcmon_rsa.pass").display().to_string()
    );
}
