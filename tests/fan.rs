//! `dcmon fan` against test-bed hosts: `ipmitool` shims that record the arguments they
//! were given prove each mode sends the documented bytes for each profile; one host's
//! real ipmitool talks lanplus to OpenIPMI's ipmi_sim; refusals send nothing; every
//! action is in the audit trail.

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use testbed::ipmi_sim::IpmiSim;
use testbed::shims::{ipmitool_via, recording_ipmitool};
use testbed::{Sshd, dcmon, json_lines};

struct Bed {
    _sshd: Sshd,
    _root: tempfile::TempDir,
    _sim: IpmiSim,
    inv: PathBuf,
    db: PathBuf,
    /// What each recording host's ipmitool was asked: sm, dell, plain.
    logs: [PathBuf; 3],
}

fn bed() -> Bed {
    let sim = IpmiSim::start();
    let root = tempfile::Builder::new()
        .prefix("dcmon-fan-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dirs: Vec<PathBuf> = ["sm", "dell", "plain", "sim"]
        .iter()
        .map(|n| {
            let d = root.path().join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
            d
        })
        .collect();
    let logs = [0, 1, 2].map(|i| dirs[i].join("calls.log"));
    for i in 0..3 {
        recording_ipmitool(&dirs[i], &logs[i]);
    }
    ipmitool_via(&dirs[3], &sim.ipmitool_args());
    let addrs = ["127.6.0.1", "127.6.0.2", "127.6.0.3", "127.6.0.4"];
    let sshd = Sshd::start_with(&[
        (addrs[0], &dirs[0]),
        (addrs[1], &dirs[1]),
        (addrs[2], &dirs[2]),
        (addrs[3], &dirs[3]),
    ]);
    let addresses: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let known_hosts = sshd.write("known_hosts", &sshd.known_hosts_lines(&addresses));
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"sm\"\naddress = \"127.6.0.1\"\nfan_profile = \"supermicro\"\n\n[[hosts]]\nname = \"dell\"\naddress = \"127.6.0.2\"\nfan_profile = \"dell\"\n\n[[hosts]]\nname = \"plain\"\naddress = \"127.6.0.3\"\n\n[[hosts]]\nname = \"sim\"\naddress = \"127.6.0.4\"\nfan_profile = \"supermicro\"\n",
        sshd.defaults(&known_hosts, "10s")
    );
    let inv = sshd.write("inventory.toml", &inventory);
    let db = sshd.dir.path().join("dcmon.db");
    Bed {
        _sshd: sshd,
        _root: root,
        _sim: sim,
        inv,
        db,
        logs,
    }
}

impl Bed {
    fn fan(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "fan",
            "-i",
            self.inv.to_str().unwrap(),
            "--db",
            self.db.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        dcmon(&all)
    }

    /// The calls host `i`'s ipmitool received since the last look, one per line.
    fn calls(&self, i: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.logs[i]).unwrap_or_default();
        let _ = std::fs::remove_file(&self.logs[i]);
        text.lines().map(str::to_string).collect()
    }
}

#[test]
fn each_mode_sends_the_documented_bytes_for_each_profile() {
    let bed = bed();
    for (mode, byte) in [
        ("standard", "0x00"),
        ("full", "0x01"),
        ("optimal", "0x02"),
        ("heavy-io", "0x04"),
    ] {
        let out = bed.fan(&["sm", "set", mode]);
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("sm: fan mode {mode}: ok\n")
        );
        assert_eq!(
            bed.calls(0),
            [format!("raw 0x30 0x45 0x01 {byte}")],
            "{mode}"
        );
    }
    let out = bed.fan(&["dell", "set", "30%"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        bed.calls(1),
        ["raw 0x30 0x30 0x01 0x00", "raw 0x30 0x30 0x02 0xff 0x1e"]
    );
    let out = bed.fan(&["dell", "set", "auto"]);
    assert!(out.status.success());
    assert_eq!(bed.calls(1), ["raw 0x30 0x30 0x01 0x01"]);

    // Dry run: the exact commands, per host, and nothing sent.
    let out = bed.fan(&["sm,dell", "set", "full", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "dell has no `full`: refused whole"
    );
    let out = bed.fan(&["sm", "set", "full", "--dry-run"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sm: 'ipmitool' 'raw' '0x30' '0x45' '0x01' '0x01'\n"
    );
    assert!(bed.calls(0).is_empty(), "a dry run sends nothing");

    // Unknown modes and read-only profiles are refused before anything is sent.
    let out = bed.fan(&["sm,plain", "set", "turbo"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sm: fan mode `turbo` is not one of the supermicro profile's: standard, full, optimal, pue, heavy-io"), "{stderr}");
    assert!(
        stderr.contains("plain: the generic profile only reads fans"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    let out = bed.fan(&["dell", "set", "120%"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(bed.calls(0).is_empty() && bed.calls(1).is_empty() && bed.calls(2).is_empty());

    // Every action that ran is in the audit trail, with the exact command.
    let audit = json_lines(&dcmon(&[
        "audit",
        "--db",
        bed.db.to_str().unwrap(),
        "--json",
    ]));
    let sets: Vec<&serde_json::Value> = audit.iter().filter(|e| e["action"] == "fan-set").collect();
    assert_eq!(sets.len(), 6, "{audit:?}");
    assert!(sets.iter().all(|e| e["status"] == "ok"));
    assert!(sets.iter().any(|e| e["host"] == "dell" && e["command"] == "'ipmitool' 'raw' '0x30' '0x30' '0x01' '0x00' && 'ipmitool' 'raw' '0x30' '0x30' '0x02' '0xff' '0x1e'"));
}

#[test]
fn status_reads_mode_and_fans_from_shims_and_from_a_simulated_bmc() {
    let bed = bed();
    let out = bed.fan(&["sm,plain,sim", "status", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let statuses = json_lines(&out);
    let of = |h: &str| statuses.iter().find(|s| s["host"] == h).unwrap().clone();
    let sm = of("sm");
    assert_eq!(sm["mode"], "optimal", "{sm}");
    assert_eq!(
        sm["fans"][0],
        serde_json::json!({"sensor": "Fan1", "rpm": 5040.0, "status": "ok"})
    );
    assert_eq!(bed.calls(0), ["raw 0x30 0x45 0x00", "sdr type Fan"]);
    let plain = of("plain");
    assert!(
        plain["mode"].is_null(),
        "the generic profile reads no mode: {plain}"
    );
    assert_eq!(bed.calls(2), ["sdr type Fan"]);
    // ipmi_sim over lanplus: fans from the simulated sensors; the OEM mode command is
    // not something the simulator knows, and the BMC's refusal is shown.
    let sim = of("sim");
    assert_eq!(sim["status"], "ok", "{sim}");
    let fans = sim["fans"].as_array().unwrap();
    assert_eq!(fans.len(), 2, "{sim}");
    assert_eq!(
        fans[0],
        serde_json::json!({"sensor": "FAN1", "rpm": 4800.0, "status": "ok"})
    );
    assert_eq!(
        sim["mode"],
        "unreadable: Unable to send RAW command (channel=0x0 netfn=0x30 lun=0x0 cmd=0x45 rsp=0xc1): Invalid command",
        "{sim}"
    );
    let audit = json_lines(&dcmon(&[
        "audit",
        "--db",
        bed.db.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        audit.iter().filter(|e| e["action"] == "fan-status").count(),
        3
    );
}
