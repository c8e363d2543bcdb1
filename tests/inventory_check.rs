//! `dcmon inventory check` and `list` as an operator runs them: every broken inventory
//! gets its exact `FILE:LINE:COL: message`, and exit code 1.

mod testbed;

use testbed::{dcmon, json_lines};

/// (case, inventory text, the one expected line after `FILE:`)
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "unknown_key",
        "[defaults]\nuser = \"m\"\nusr = \"x\"\n\n[[hosts]]\nname = \"a\"\n",
        "3:1: unknown key `usr` in [defaults], did you mean `user`?",
    ),
    (
        "duplicate_host",
        "[[hosts]]\nname = \"db1\"\n\n[[hosts]]\nname = \"db1\"\n",
        "5:8: duplicate host `db1` (first defined on line 2)",
    ),
    (
        "unclosed_range",
        "[groups.gpu]\nhosts = [\"gpu[01-16.dc1\"]\n",
        "2:10: unclosed `[` in host pattern `gpu[01-16.dc1`",
    ),
    (
        "backwards_range",
        "[groups.gpu]\nhosts = [\"gpu01.dc1\", \"gpu[16-01].dc1\"]\n",
        "2:23: range `16-01` in host pattern `gpu[16-01].dc1` runs backwards (start > end)",
    ),
    (
        "missing_identity",
        "[defaults]\nidentity = \"/nonexistent/dcmon_ed25519\"\n\n[[hosts]]\nname = \"a\"\n",
        "2:12: identity file /nonexistent/dcmon_ed25519 not found",
    ),
    (
        "unknown_probe",
        "[groups.gpu]\nhosts = [\"g1\"]\nprobes = [\"os\", \"oss\"]\n",
        "3:17: unknown probe `oss`, did you mean `os`? (known probes: os, fs, ipmi, ",
    ),
    (
        "toml_syntax",
        "[defaults]\nuser = \"m\n",
        "2:10: TOML syntax: invalid basic string, expected `\"`",
    ),
    (
        "wrong_type",
        "[[hosts]]\nname = \"a\"\nport = \"22\"\n",
        "3:8: `port`: invalid type: string \"22\", expected a whole number from 0 to 65535",
    ),
    (
        "unknown_group",
        "[[hosts]]\nname = \"a\"\ngroups = [\"gpus\"]\n\n[groups.gpu]\nhosts = []\n",
        "3:11: unknown group `gpus`, did you mean `gpu`?",
    ),
    (
        "bad_duration",
        "[defaults]\ntimeout = \"soon\"\n[[hosts]]\nname = \"a\"\n",
        "2:11: timeout `soon` is not a duration like \"10s\" or \"1m30s\" (expected number at 0)",
    ),
    (
        "key_at_wrong_level",
        "[defaults]\nname = \"x\"\n[[hosts]]\nname = \"a\"\n",
        "2:1: `name` is not allowed in [defaults]: it belongs in [[hosts]] or [groups.NAME]",
    ),
    (
        "bad_label_name",
        "[[hosts]]\nname = \"a\"\nlabels = { \"rack-id\" = \"r1\" }\n",
        "3:12: label name `rack-id` must match [a-zA-Z_][a-zA-Z0-9_]*",
    ),
    (
        "host_without_name",
        "[[hosts]]\naddress = \"10.0.0.1\"\n",
        "1:1: [[hosts]] entry has no `name`",
    ),
    (
        "no_hosts",
        "[defaults]\nuser = \"m\"\n",
        "1:1: the inventory defines no hosts: add [[hosts]] entries or [groups.NAME] hosts = [...]",
    ),
];

#[test]
fn each_broken_inventory_gets_its_located_message() {
    let dir = tempfile::tempdir().unwrap();
    for (case, text, expected) in BROKEN {
        let file = dir.path().join(format!("{case}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = dcmon(&["inventory", "check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{case}: exit code");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: one problem, one line: {stderr}");
        // Exact, except that the list of known probes grows as probes are added.
        let wanted = format!("{}:{expected}", file.display());
        let matches =
            lines[0] == wanted || (wanted.ends_with(", ") && lines[0].starts_with(&wanted));
        assert!(matches, "{case}:\n got: {}\nwant: {wanted}", lines[0]);
    }
}

/// `dcmon inventory check FILE`'s problems, `FILE:` taken off; it must exit 1.
fn problems(file: &std::path::Path) -> Vec<String> {
    let out = dcmon(&["inventory", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            l.strip_prefix(&format!("{}:", file.display()))
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn all_problems_of_one_file_are_reported_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.toml");
    std::fs::write(&file, "[defaults]\nport = 0\n\n[groups.gpu]\nhosts = [\"gpu[1-]\"]\nprobes = [\"os\", \"os\"]\n\n[[hosts]]\nname = \"a b\"\n").unwrap();
    let lines = problems(&file);
    assert_eq!(
        lines,
        [
            "2:8: port 0 is not a usable SSH port",
            "5:10: `1-` in host pattern `gpu[1-]` is not a number or a `start-end` range",
            "6:17: probe `os` is listed twice",
            "9:8: host name `a b` contains ' ', which host names may not",
        ]
    );
}

/// Type errors used to stop serde at the first one and hide the rest: ten problems,
/// four of them wrong types, all come out in file order.
#[test]
fn type_errors_hide_no_other_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ten.toml");
    std::fs::write(
        &file,
        "[defaults]\nport = \"22\"\nbecome = \"yes\"\nusr = \"x\"\ntimeout = \"soon\"\n\n[[hosts]]\nname = \"a\"\nport = 99999\noffline_after = -1\nprobes = [\"os\", \"oss\"]\n\n[[hosts]]\nname = \"a\"\nlabels = { \"rack-id\" = \"r1\" }\n\n[groups.g]\nhosts = [\"gpu[16-01]\"]\n",
    )
    .unwrap();
    let lines = problems(&file);
    assert_eq!(
        lines,
        [
            "2:8: `port`: invalid type: string \"22\", expected a whole number from 0 to 65535",
            "3:10: `become`: invalid type: string \"yes\", expected true or false",
            "4:1: unknown key `usr` in [defaults], did you mean `user`?",
            "5:11: timeout `soon` is not a duration like \"10s\" or \"1m30s\" (expected number at 0)",
            "9:8: `port`: invalid value: integer `99999`, expected a whole number from 0 to 65535",
            "10:17: `offline_after`: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
            "11:17: unknown probe `oss`, did you mean `os`? (known probes: os, fs, ipmi, nvidia, nvidia_details, nvme, smart, sensors, apt, docker, logs, infiniband, pcie, custom)",
            "14:8: duplicate host `a` (first defined on line 8)",
            "15:12: label name `rack-id` must match [a-zA-Z_][a-zA-Z0-9_]*",
            "18:10: range `16-01` in host pattern `gpu[16-01]` runs backwards (start > end)",
        ]
    );
    // Wrong types inside lists, tables and [web] are located too, each at its value.
    std::fs::write(
        &file,
        "[[hosts]]\nname = \"a\"\nprobes = [\"os\", 7]\nlabels = { rack = 12 }\nbmc = { address = \"10.0.0.9\", port = \"623\" }\n[web]\nthresholds = { cpu = [1, \"x\"] }\ntrusted_proxies = \"10.0.0.1\"\n",
    )
    .unwrap();
    let lines = problems(&file);
    assert_eq!(
        lines,
        [
            "1:1: host `a`: bmc has no user, password_file (set it in [defaults], the group or the host)",
            "3:17: `probes` entry 2: invalid type: integer `7`, expected a string",
            "4:19: `labels.rack`: invalid type: integer `12`, expected a string",
            "5:38: `port`: invalid type: string \"623\", expected a whole number from 0 to 65535",
            "7:26: `cpu` entry 2: invalid type: string \"x\", expected a number",
            "8:19: `trusted_proxies`: invalid type: string \"10.0.0.1\", expected an array of strings",
        ]
    );
}

/// A file saved in another encoding: one problem, at the first bad byte.
#[test]
fn a_file_that_is_not_utf8_is_one_located_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.toml");
    std::fs::write(&file, b"[defaults]\nuser = \"m\xfcller\"\n").unwrap();
    let out = dcmon(&["inventory", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:2:10: not UTF-8 text: byte 20 is 0xfc; save the inventory as UTF-8\n",
            file.display()
        )
    );
}

/// `--resolved` shows each run's timeout and the setting it came from.
#[test]
fn list_resolved_shows_each_probe_timeout_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inv.toml");
    std::fs::write(
        &file,
        "[defaults]\nprobes = [\"os\", \"apt\", \"nvidia\"]\n[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"b\"\ntimeout = \"1500ms\"\n[probes.nvidia]\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let out = dcmon(&[
        "inventory",
        "list",
        file.to_str().unwrap(),
        "--resolved",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = json_lines(&out);
    let plan = |h: usize| -> Vec<(String, String)> {
        hosts[h]["plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    format!(
                        "{} {}",
                        p["probe"].as_str().unwrap(),
                        p["timeout"].as_str().unwrap()
                    ),
                    p["timeout_from"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let row = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        plan(0),
        [
            row("os 10s", "the probe's default"),
            row("fs 10s", "the probe's default"),
            row("apt 1m", "the probe's default"),
            row("nvidia 2s", "[probes.NAME] timeout"),
        ]
    );
    assert_eq!(
        plan(1),
        [
            row("os 1s 500ms", "timeout (defaults, group or host)"),
            row("fs 1s 500ms", "timeout (defaults, group or host)"),
            row("apt 1s 500ms", "timeout (defaults, group or host)"),
            row("nvidia 2s", "[probes.NAME] timeout"),
        ]
    );
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let out = dcmon(&["inventory", "check", "/nonexistent/inventory.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .starts_with("dcmon: cannot read inventory /nonexistent/inventory.toml: No such file"),
        "{stderr}"
    );
}

#[test]
fn list_resolves_ranges_inheritance_and_selectors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inv.toml");
    std::fs::write(
        &file,
        "[defaults]\nuser = \"monitor\"\nlabels = { dc = \"dc1\" }\n\n[groups.gpu]\nhosts = [\"gpu[01-03].dc1\"]\nlabels = { rack = \"r12\" }\nbecome = true\n\n[[hosts]]\nname = \"db1\"\naddress = \"10.0.0.5\"\nport = 2222\n",
    )
    .unwrap();
    let inv = file.to_str().unwrap();
    let out = dcmon(&["inventory", "list", inv, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = json_lines(&out);
    let names: Vec<&str> = hosts.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db1", "gpu01.dc1", "gpu02.dc1", "gpu03.dc1"]);
    assert_eq!(hosts[0]["address"], "10.0.0.5");
    assert_eq!(hosts[0]["port"], 2222);
    assert_eq!(hosts[0]["become"], false);
    assert_eq!(hosts[2]["user"], "monitor");
    assert_eq!(hosts[2]["become"], true);
    assert_eq!(
        hosts[2]["labels"],
        serde_json::json!({"dc": "dc1", "rack": "r12"})
    );
    assert_eq!(hosts[2]["timeout"], "each probe's default");

    for (selector, expected) in [
        ("group:gpu", vec!["gpu01.dc1", "gpu02.dc1", "gpu03.dc1"]),
        ("gpu0[13]*", vec!["gpu01.dc1", "gpu03.dc1"]),
        (
            "label:rack=r12,db1",
            vec!["db1", "gpu01.dc1", "gpu02.dc1", "gpu03.dc1"],
        ),
        ("db1", vec!["db1"]),
    ] {
        let out = dcmon(&["inventory", "list", inv, selector, "--json"]);
        assert!(
            out.status.success(),
            "{selector}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let names: Vec<String> = json_lines(&out)
            .iter()
            .map(|h| h["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, expected, "{selector}");
    }
    let out = dcmon(&["inventory", "list", inv, "group:db"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "dcmon: selector `group:db`: no group `db` in the inventory (groups: gpu)"
    );
    let out = dcmon(&["inventory", "list", inv, "nothere*"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "dcmon: selector `nothere*` matches no host"
    );
}

/// The annotated reference inventory must stay valid.
#[test]
fn example_inventory_is_valid() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/dcmon_ed25519"), "placeholder").unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args(["inventory", "check", example])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Alert rules and receivers are checked with the rest, each problem at its place.
#[test]
fn alert_rules_and_receivers_are_checked_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.toml");
    std::fs::write(
        &file,
        "[[hosts]]\nname = \"a\"\n[alerting]\nevaluation_interval = \"soon\"\ndisable = [\"CpuBsy\"]\n[[alerts]]\nname = \"Bad\"\nexpr = 'topk(3, node_load1)'\n[[alerts]]\nname = \"Bad2\"\nexpr = 'rate(x[5m]'\nannotations = { summary = \"{{ $labels.host \" }\n[[notify]]\nname = \"m\"\nsmtp = { server = \"mail\", from = \"x\", to = [\"ops@x\"] }\n[[notify]]\nname = \"am\"\nalertmanager = \"127.0.0.1:9093\"\n[[notify]]\nname = \"hook\"\nwebhook = \"ftp://x\"\ngroup_by = [\"host\", \"a-b\"]\ngroup_wait = \"-1s\"\n[[notify]]\nname = \"two\"\nslack = \"https://hooks.slack.com/x\"\nwebhook = \"http://x\"\n[[notify]]\nname = \"none\"\n",
    )
    .unwrap();
    let lines = problems(&file);
    let wanted = [
        "4:23: evaluation_interval `soon` is not a duration",
        "5:12: `CpuBsy` is not a built-in alert, did you mean `CpuBusy`?",
        "8:8: alert `Bad`: not supported by dcmon: aggregation `topk`",
        "11:8: alert `Bad2`: PromQL syntax: unclosed left parenthesis",
        "12:27: alert `Bad2`: annotation `summary` is not a template",
        "15:19: receiver `m`: smtp server `mail` is not host:port",
        "15:34: receiver `m`: `x` is not an e-mail address",
        "18:16: receiver `am`: alertmanager `127.0.0.1:9093` is not an http:// or https:// address",
        "21:11: receiver `hook`: webhook `ftp://x` is not an http:// or https:// address",
        "22:21: receiver `hook`: group_by `a-b` must be a label name or `...`",
        "23:14: receiver `hook`: group_wait `-1s` is not a duration",
        "26:1: receiver `two` has both `webhook` and `slack`: one target per receiver",
        "28:1: receiver `none` has no target",
    ];
    assert_eq!(lines.len(), wanted.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(wanted) {
        assert!(line.starts_with(want), "{line}\nwanted: {want}");
    }
}

/// `alerts = "FILE"`: the rules live in their own file, checked there and reported at
/// their place in it; a missing file is reported where the inventory names it.
#[test]
fn alert_rules_in_their_own_file_are_checked_there() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[alerts]]\nname = \"GpuHot\"\nexpr = 'max by (host) (nvidia_gpu_temperature_celsius) > 85'\nfor = \"2m\"\n\n[[alerts]]\nname = \"Bad\"\nexpr = 'topk(3, node_load1)'\nsevrity = \"page\"\n[web]\nlisten = \"x\"\n",
    )
    .unwrap();
    let inventory = dir.path().join("inv.toml");
    std::fs::write(
        &inventory,
        "alerts = \"rules.toml\"\n[[hosts]]\nname = \"a\"\n",
    )
    .unwrap();
    let out = dcmon(&["inventory", "check", inventory.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = rules.display().to_string();
    for want in [
        format!("{shown}:8:8: alert `Bad`: not supported by dcmon: aggregation `topk`"),
        format!("{shown}:9:1: unknown key `sevrity` in [[alerts]] entry #2"),
        format!("{shown}:10:2: `web` does not belong in an alerts file"),
    ] {
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    // Fixed, the rules are the inventory's.
    std::fs::write(
        &rules,
        "[[alerts]]\nname = \"GpuHot\"\nexpr = 'max by (host) (nvidia_gpu_temperature_celsius) > 85'\nfor = \"2m\"\n",
    )
    .unwrap();
    let out = dcmon(&[
        "alerts",
        "rules",
        "--json",
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(r#""name":"GpuHot","#) && listed.contains(r#""builtin":false"#),
        "{listed}"
    );
    // A file that is not there is named where the inventory names it.
    std::fs::write(
        &inventory,
        "alerts = \"missing.toml\"\n[[hosts]]\nname = \"a\"\n",
    )
    .unwrap();
    let lines = problems(&inventory);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("1:10: alerts file `missing.toml`"),
        "{lines:?}"
    );
}
