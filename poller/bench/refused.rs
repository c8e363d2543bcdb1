//! (i) `dcmon poll` of many hosts that all refuse the connection (a rack powered off, a
//! wrong port in the defaults): the poller's peak memory and wall time. The hosts are
//! 127.x.y.z addresses on a port nothing listens on; each refuses at once.

use std::process::Command;

pub fn refused_round(hosts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status();
    assert!(keygen.is_ok_and(|s| s.success()), "ssh-keygen failed");
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    // 250 addresses per /24, as many /24s as needed, spread over 127.1-127.255.
    let nets = hosts.div_ceil(250);
    let patterns: Vec<String> = (0..nets)
        .map(|n| {
            let last = if n + 1 == nets { hosts - n * 250 } else { 250 };
            format!("\"127.{}.{}.[1-{last}]\"", 1 + n / 256, n % 256)
        })
        .collect();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "[defaults]\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\n[groups.all]\nhosts = [{}]\n",
            crate::testbed::free_port(),
            key.display(),
            known_hosts.display(),
            patterns.join(", ")
        ),
    )
    .unwrap();
    for (mode, json) in [("--json (streamed)", true), ("table", false)] {
        let db = dir.path().join(format!("dcmon-{json}.db"));
        let mut args = vec![
            "-f".to_string(),
            "%M %e".to_string(),
            env!("CARGO_BIN_EXE_dcmon").to_string(),
            "poll".to_string(),
            "-i".to_string(),
            inventory.display().to_string(),
            "--db".to_string(),
            db.display().to_string(),
        ];
        if json {
            args.push("--json".to_string());
        }
        let out = Command::new("/usr/bin/time")
            .args(&args)
            .output()
            .expect("/usr/bin/time (Debian package `time`)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        let mut fields = last.split_whitespace();
        let kb: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(f64::NAN);
        let secs: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(f64::NAN);
        let refused = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Connection refused"))
            .count();
        println!(
            "\n(i) poll of {hosts} refused hosts, {mode}: max RSS {:.0} MB ({:.1} KB per host; target 200 MB: {:.2}x), {secs:.1} s wall, {refused} refusals reported",
            kb / 1024.0,
            kb / hosts as f64,
            200.0 * 1024.0 / kb
        );
    }
}
