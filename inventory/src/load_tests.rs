//! Tests of `load`: inheritance and located problems.

use super::*;

const PROBES: &[&str] = &["os", "fs", "ipmi", "nvidia", "nvme", "bmc"];

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("inv.toml"), PROBES) {
        Ok(_) => Vec::new(),
        Err(p) => p.to_string().lines().map(str::to_string).collect(),
    }
}

#[test]
fn inheritance_defaults_then_groups_then_host() {
    let text = r#"
[defaults]
user = "monitor"
port = 2222
timeout = "5s"
labels = { dc = "dc1" }

[groups.gpu]
hosts = ["gpu[01-03].dc1"]
labels = { rack = "r12" }
probes = ["os", "nvidia"]
become = true

[[hosts]]
name = "gpu02.dc1"
address = "10.0.0.2"
port = 22
labels = { rack = "r13" }

[[hosts]]
name = "db1"
address = "10.0.0.5"
"#;
    let inv = parse(text, Path::new("/etc/dcmon/inv.toml"), PROBES).unwrap();
    let names: Vec<_> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db1", "gpu01.dc1", "gpu02.dc1", "gpu03.dc1"]);
    let gpu02 = inv.host("gpu02.dc1").unwrap();
    assert_eq!(gpu02.address, "10.0.0.2");
    assert_eq!(gpu02.port, 22);
    assert_eq!(gpu02.user, "monitor");
    assert!(gpu02.become_);
    // Listing `os` brings `fs`, right after it.
    assert_eq!(gpu02.probes, ["os", "fs", "nvidia"]);
    assert_eq!(gpu02.groups, ["gpu"]);
    assert_eq!(gpu02.labels.get("rack").unwrap(), "r13");
    assert_eq!(gpu02.labels.get("dc").unwrap(), "dc1");
    assert_eq!(gpu02.timeout, Some(Duration::from_secs(5)));
    let gpu01 = inv.host("gpu01.dc1").unwrap();
    assert_eq!(gpu01.address, "gpu01.dc1");
    assert_eq!(gpu01.port, 2222);
    let db1 = inv.host("db1").unwrap();
    assert_eq!(db1.probes, ["os", "fs"]);
    assert!(!db1.become_);
    assert!(db1.groups.is_empty());
}

#[test]
fn relative_paths_anchor_at_the_inventory() {
    let text = "[defaults]\nknown_hosts = \"kh\"\n[[hosts]]\nname = \"a\"\n";
    let inv = parse(text, Path::new("/etc/dcmon/inv.toml"), PROBES).unwrap();
    assert_eq!(inv.hosts[0].known_hosts, Path::new("/etc/dcmon/kh"));
}

#[test]
fn every_problem_is_reported_with_its_place() {
    let text = "[defaults]\nusr = \"x\"\ntimeout = \"soon\"\n\n[[hosts]]\nname = \"a\"\nprobes = [\"os\", \"nvida\"]\nnmae = \"b\"\n";
    let got = problems(text);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[0].starts_with("inv.toml:2:1: unknown key `usr` in [defaults], did you mean `user`?"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("inv.toml:3:11: timeout `soon` is not a duration"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("inv.toml:7:17: unknown probe `nvida`, did you mean `nvidia`?"),
        "{got:?}"
    );
    assert!(
        got[3].starts_with(
            "inv.toml:8:1: unknown key `nmae` in [[hosts]] entry #1, did you mean `name`?"
        ),
        "{got:?}"
    );
}

#[test]
fn type_errors_keep_toml_spans() {
    let got = problems("[[hosts]]\nname = \"a\"\nport = \"twenty-two\"\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("inv.toml:3:8: "), "{got:?}");
}

#[test]
fn empty_inventory_is_a_problem() {
    let got = problems("");
    assert_eq!(
        got,
        [
            "inv.toml:1:1: the inventory defines no hosts: add [[hosts]] entries or [groups.NAME] hosts = [...]"
        ]
    );
}

#[test]
fn schedules_and_retention() {
    let text = "[defaults]\ninterval = \"10s\"\noffline_after = 2\n[[hosts]]\nname = \"a\"\n[probes.nvidia]\ninterval = \"5s\"\ntimeout = \"3s\"\n[probes.ipmi]\nschedule = \"0 */5 * * * *\"\n[retention]\nsamples = \"90d\"\n";
    let inv = parse(text, Path::new("inv.toml"), PROBES).unwrap();
    assert_eq!(inv.hosts[0].interval, Duration::from_secs(10));
    assert_eq!(inv.hosts[0].offline_after, 2);
    assert_eq!(
        inv.probe_schedules["nvidia"].interval,
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        inv.probe_schedules["ipmi"].schedule.as_deref(),
        Some("0 */5 * * * *")
    );
    assert_eq!(inv.retention.samples, Duration::from_secs(90 * 86400));
    assert_eq!(inv.retention.logs, Duration::from_secs(7 * 86400));
    let bad = "[[hosts]]\nname = \"a\"\n[probes.nvida]\ninterval = \"5s\"\n[probes.ipmi]\nschedule = \"*/5 * * * *\"\ninterval = \"1m\"\n[retention]\nlogs = \"a week\"\n";
    let got = problems(bad);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[0].starts_with(
            "inv.toml:3:9: [probes.nvida]: unknown probe `nvida`, did you mean `nvidia`?"
        ),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("inv.toml:6:1: [probes.ipmi] sets both `interval` and `schedule`"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with(
            "inv.toml:6:12: schedule `*/5 * * * *` is not a cron expression with seconds"
        ),
        "{got:?}"
    );
    assert!(
        got[3].starts_with("inv.toml:9:8: retention logs `a week`"),
        "{got:?}"
    );
    // The BMC reader has a schedule, but is not a probe to list.
    let bmc = "[[hosts]]\nname = \"a\"\n[probes.bmc]\ninterval = \"2m\"\n";
    let inv = parse(bmc, Path::new("inv.toml"), PROBES).unwrap();
    assert_eq!(
        inv.probe_schedules["bmc"].interval,
        Some(Duration::from_secs(120))
    );
    let listed = problems("[[hosts]]\nname = \"a\"\nprobes = [\"os\", \"bmc\"]\n");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].starts_with("inv.toml:3:17: `bmc` is not listed in probes: every host with a `bmc` setting has its BMC read"),
        "{listed:?}"
    );
}

#[test]
fn web_settings_resolve_and_their_mistakes_are_located() {
    let text = "[[hosts]]\nname = \"a\"\n[web]\nview = \"login\"\nadmin_token_file = \"admin.token\"\ntls_cert = \"/etc/dcmon/cert.pem\"\ntls_key = \"key.pem\"\n[web.thresholds]\ncpu = [50, 70]\n";
    let inv = parse(text, Path::new("/etc/dcmon/inv.toml"), PROBES).unwrap();
    assert_eq!(inv.web.view, crate::model::ViewAccess::Login);
    assert_eq!(
        inv.web.admin_token_file.as_deref(),
        Some(Path::new("/etc/dcmon/admin.token"))
    );
    assert_eq!(
        inv.web.tls,
        Some((
            PathBuf::from("/etc/dcmon/cert.pem"),
            PathBuf::from("/etc/dcmon/key.pem")
        ))
    );
    assert_eq!(inv.web.thresholds.cpu, (50.0, 70.0));
    assert_eq!(inv.web.thresholds.memory, (70.0, 90.0));
    let bad = "[[hosts]]\nname = \"a\"\n[web]\nview = \"closed\"\nlisten = \"localhost\"\ntls_key = \"k.pem\"\nadmin_tokn_file = \"t\"\n[web.thresholds]\ncpu = [90, 60]\nmemroy = [1, 2]\n";
    let got = problems(bad);
    assert_eq!(
        got,
        [
            "inv.toml:4:8: view `closed` is not `open` or `login`",
            "inv.toml:5:10: listen `localhost` is not an address and port like \"127.0.0.1:8000\" (or \"off\")",
            "inv.toml:6:1: tls_key is set without tls_cert: HTTPS needs both",
            "inv.toml:7:1: unknown key `admin_tokn_file` in [web] (keys: listen, view, admin_token_file, viewer_token_file, tls_cert, tls_key, trusted_proxies, thresholds, backend), did you mean `admin_token_file`?",
            "inv.toml:9:7: thresholds cpu = [90, 60]: write [warning, critical] with warning ≤ critical",
            "inv.toml:10:1: unknown key `memroy` in [web.thresholds] (keys: cpu, memory, gpu_temp, bmc_temp, nvme_wear), did you mean `memory`?",
        ]
    );
    let login_without_token = "[[hosts]]\nname = \"a\"\n[web]\nview = \"login\"\n";
    assert_eq!(
        problems(login_without_token),
        [
            "inv.toml:4:8: view = \"login\" needs a token to log in with: set admin_token_file or viewer_token_file"
        ]
    );
}

#[test]
fn fan_profiles_resolve_and_a_typo_gets_a_hint() {
    let text = "[defaults]\nfan_profile = \"dell\"\n[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"b\"\nfan_profile = \"supermicro\"\n";
    let inv = parse(text, Path::new("inv.toml"), PROBES).unwrap();
    assert_eq!(inv.hosts[0].fan_profile, crate::model::FanProfile::Dell);
    assert_eq!(
        inv.hosts[1].fan_profile,
        crate::model::FanProfile::Supermicro
    );
    let plain = parse("[[hosts]]\nname = \"a\"\n", Path::new("inv.toml"), PROBES).unwrap();
    assert_eq!(
        plain.hosts[0].fan_profile,
        crate::model::FanProfile::Generic
    );
    assert_eq!(
        problems("[[hosts]]\nname = \"a\"\nfan_profile = \"supermicr\"\n"),
        [
            "inv.toml:3:15: fan_profile `supermicr` is unknown: use generic, supermicro, dell, did you mean `supermicro`?"
        ]
    );
}

#[test]
fn bmc_settings_merge_pair_ranges_and_check_password_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bmc.pass");
    std::fs::write(&secret, "hunter2\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.path().join("inv.toml");
    let text = "[defaults]\nbmc = { user = \"admin\", password_file = \"bmc.pass\" }\n\n[groups.gpu]\nhosts = [\"gpu[01-03]\"]\nbmc = { address = \"10.1.0.[11-13]\" }\n\n[[hosts]]\nname = \"db1\"\nbmc = { address = \"{host}-ipmi.dc1\", port = 6230 }\n";
    let inv = parse(text, &file, PROBES).unwrap();
    let bmc = |n: &str| inv.host(n).unwrap().bmc.clone().unwrap();
    assert_eq!(bmc("gpu01").address, "10.1.0.11");
    assert_eq!(bmc("gpu03").address, "10.1.0.13");
    assert_eq!(
        (bmc("gpu02").port, bmc("gpu02").user.as_str()),
        (623, "admin")
    );
    assert_eq!(bmc("gpu02").password_file, secret);
    assert_eq!(
        (bmc("db1").address.as_str(), bmc("db1").port),
        ("db1-ipmi.dc1", 6230)
    );
    // Listing hosts never shows a password: only the file's path is in the model.
    let listed = serde_json::to_string(&inv.hosts).unwrap();
    assert!(!listed.contains("hunter2"));

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let problems_of = |text: &str| match parse(text, &file, PROBES) {
        Ok(_) => Vec::new(),
        Err(p) => p
            .to_string()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>(),
    };
    let got = problems_of(text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("inv.toml:2:41: bmc password_file")
            && got[0].contains("is readable by every user (mode 0644): run `chmod o-rwx"),
        "{got:?}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = "[groups.gpu]\nhosts = [\"gpu[01-03]\"]\nbmc = { address = \"10.1.0.[11-12]\", user = \"admin\", password_file = \"nowhere.pass\", pasword_file = \"x\" }\n\n[[hosts]]\nname = \"db1\"\nbmc = { address = \"db1-bmc\" }\n";
    let got = problems_of(bad);
    let joined = got.join("\n");
    for expected in [
        "bmc address `10.1.0.[11-12]` gives 2 addresses for the group's 3 hosts: they pair one by one",
        "bmc password_file",
        "nowhere.pass: No such file or directory",
        "unknown key `pasword_file` in",
        "did you mean `password_file`?",
        "host `db1`: bmc has no user, password_file (set it in [defaults], the group or the host)",
    ] {
        assert!(joined.contains(expected), "{expected} in:\n{joined}");
    }
    // ipmitool's `-C 17` habit: refused where it is written, with the way out.
    let suite = |n: u32| {
        format!(
            "[[hosts]]\nname = \"db1\"\nbmc = {{ address = \"db1-bmc\", user = \"admin\", password_file = \"bmc.pass\", cipher_suite = {n} }}\n"
        )
    };
    assert_eq!(problems_of(&suite(3)), Vec::<String>::new());
    let got = problems_of(&suite(17));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("inv.toml:3:")
            && got[0].contains("bmc cipher_suite 17: dcmon speaks RMCP+ cipher suite 3 only"),
        "{got:?}"
    );
}

#[test]
fn bmc_protocol_ports_and_tls_checks() {
    use crate::model::BmcProtocol;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bmc.pass");
    std::fs::write(&secret, "hunter2\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let file = dir.path().join("inv.toml");
    let load = |text: &str| parse(text, &file, PROBES);
    let problems_of = |text: &str| match load(text) {
        Ok(_) => Vec::new(),
        Err(p) => p
            .to_string()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>(),
    };
    let pin = "AB:".repeat(31) + "AB";
    let text = format!(
        "[defaults]\nbmc = {{ user = \"admin\", password_file = \"bmc.pass\" }}\n\n\
         [groups.new]\nhosts = [\"a\", \"b\"]\nbmc = {{ address = \"{{host}}-bmc\", protocol = \"redfish\", ca_file = \"ca.pem\" }}\n\n\
         [[hosts]]\nname = \"b\"\nbmc = {{ port = 8443, tls_fingerprint = \"sha256:{pin}\" }}\n\n\
         [[hosts]]\nname = \"c\"\nbmc = {{ address = \"c-bmc\", protocol = \"auto\", port = 6230, redfish_port = 8443, insecure_tls = true }}\n\n\
         [[hosts]]\nname = \"d\"\nbmc = {{ address = \"d-bmc\", firmware_interval = \"6h\" }}\n"
    );
    let inv = load(&text).unwrap();
    let bmc = |n: &str| inv.host(n).unwrap().bmc.clone().unwrap();
    // Redfish: `port` is the HTTPS port; by default 443.
    assert_eq!(bmc("a").protocol, BmcProtocol::Redfish);
    assert_eq!(bmc("a").redfish_port, 443);
    assert_eq!(bmc("b").redfish_port, 8443);
    assert_eq!(bmc("a").tls.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(bmc("b").tls.fingerprint, Some("ab".repeat(32)));
    // auto: `port` stays IPMI's, `redfish_port` is Redfish's.
    assert_eq!((bmc("c").port, bmc("c").redfish_port), (6230, 8443));
    assert_eq!(bmc("c").protocol, BmcProtocol::Auto);
    assert!(bmc("c").tls.insecure);
    // No protocol: IPMI, as every bmc setting meant before.
    assert_eq!((bmc("d").protocol, bmc("d").port), (BmcProtocol::Ipmi, 623));
    assert!(!bmc("d").tls.insecure);
    assert_eq!(bmc("d").firmware_interval.as_secs(), 6 * 3600);
    assert_eq!(bmc("a").firmware_interval.as_secs(), 3600);
    // Listed as people write it, like the other durations.
    let listed = serde_json::to_value(bmc("d")).unwrap();
    assert_eq!(listed["firmware_interval"], "6h");
    assert_eq!(listed["protocol"], "ipmi");

    let bad = "[defaults]\nbmc = { user = \"admin\", password_file = \"bmc.pass\", insecure_tls = true }\n\n\
               [[hosts]]\nname = \"a\"\nbmc = { address = \"a-bmc\", protocol = \"https\", ca_file = \"none.pem\", tls_fingerprint = \"12:34\" }\n\n\
               [[hosts]]\nname = \"b\"\nbmc = { address = \"b-bmc\", insecure_tls = true, ca_file = \"ca.pem\", firmware_interval = \"hourly\" }\n";
    let got = problems_of(bad).join("\n");
    for expected in [
        "inv.toml:2:68: bmc insecure_tls is taken only on a host's own bmc",
        "inv.toml:6:39: bmc protocol `https`: use one of ipmi, redfish, auto",
        "bmc ca_file",
        "none.pem: No such file or directory",
        "bmc tls_fingerprint `12:34`: write the certificate's SHA-256 as 64 hex digits",
        "host `b`: bmc insecure_tls = true with a ca_file or tls_fingerprint",
        "bmc firmware_interval `hourly` is not a duration like",
    ] {
        assert!(got.contains(expected), "{expected} in:\n{got}");
    }
}

/// A value left out for its type is reported once: what follows from its absence (no
/// hosts listed, a host without a name) is not a second problem.
#[test]
fn a_mistyped_value_is_one_problem_not_two() {
    let problems = |text: &str| match parse(text, Path::new("inv.toml"), PROBES) {
        Ok(_) => Vec::new(),
        Err(p) => p.list.into_iter().map(|p| p.message).collect::<Vec<_>>(),
    };
    assert_eq!(
        problems("hosts = 5\n"),
        ["`hosts`: invalid type: integer `5`, expected an array of tables"]
    );
    assert_eq!(
        problems("[[hosts]]\nname = 5\n"),
        ["`name`: invalid type: integer `5`, expected a string"]
    );
    assert_eq!(
        problems("[groups.g]\nhosts = \"g1\"\n"),
        ["`hosts`: invalid type: string \"g1\", expected an array of strings"]
    );
    // A wrong type elsewhere does not hide that no host is listed.
    assert_eq!(
        problems("[groups.g]\nport = \"x\"\n"),
        [
            "the inventory defines no hosts: add [[hosts]] entries or [groups.NAME] hosts = [...]",
            "`port`: invalid type: string \"x\", expected a whole number from 0 to 65535",
        ]
    );
}

mod any_value {
    use super::*;
    use proptest::prelude::*;

    /// A TOML value of any kind, the shapes people type by mistake included.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 ]{0,8}".prop_map(|s| format!("\"{s}\"")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            Just("[]".to_string()),
            Just("[1, \"x\", true]".to_string()),
            Just("{ a = 1 }".to_string()),
            Just("1979-05-27T07:32:00Z".to_string()),
        ]
    }

    const KEYS: &[&str] = &[
        "name",
        "port",
        "user",
        "become",
        "probes",
        "labels",
        "timeout",
        "offline_after",
        "bmc",
        "hosts",
        "groups",
        "log_files",
    ];

    proptest! {
        /// Whatever type each key gets, wherever it stands, loading never panics and
        /// every problem is located inside the file.
        #[test]
        fn any_type_anywhere_is_a_located_problem(
            picks in proptest::collection::vec((0..KEYS.len(), value(), 0..4usize), 1..8)
        ) {
            let mut text = String::new();
            for (key, value, table) in &picks {
                let header = ["[defaults]", "[groups.g]", "[[hosts]]", "[web]"][*table];
                text.push_str(&format!("{header}\n{} = {value}\n", KEYS[*key]));
            }
            if let Err(problems) = parse(&text, Path::new("inv.toml"), PROBES) {
                let lines = text.lines().count().max(1);
                for p in &problems.list {
                    prop_assert!(p.line >= 1 && p.line <= lines, "{p:?} in\n{text}");
                }
            }
        }
    }
}

#[test]
fn jump_chains_resolve_through_inventory_hosts_and_written_hops() {
    let text = r#"
[defaults]
user = "monitor"
port = 2222
jump = "bastion"

[groups.gpu]
hosts = ["gpu[01-02]"]

[[hosts]]
name = "bastion"
address = "10.0.0.1"
user = "jump"
port = 22
jump = "ops@outer.example:2200"

[[hosts]]
name = "direct"
jump = "none"
"#;
    let inv = parse(text, Path::new("inv.toml"), PROBES).unwrap();
    let chain = |name: &str| -> Vec<String> {
        inv.host(name)
            .unwrap()
            .jump
            .iter()
            .map(|j| format!("{}:{}@{}:{}", j.name, j.user, j.address, j.port))
            .collect()
    };
    // The bastion's own jump comes first: the chain is followed as OpenSSH follows ProxyJump.
    assert_eq!(
        chain("gpu01"),
        [
            "ops@outer.example:2200:ops@outer.example:2200",
            "bastion:jump@10.0.0.1:22"
        ]
    );
    // A hop written out takes port 22 and, when it names none, the user of the host it leads to.
    assert_eq!(
        chain("bastion"),
        ["ops@outer.example:2200:ops@outer.example:2200"]
    );
    assert!(chain("direct").is_empty());
}

#[test]
fn jump_problems_name_the_host_and_the_chain() {
    let loops = problems(
        r#"
[defaults]
jump = "b1"

[[hosts]]
name = "b1"
jump = "b2"

[[hosts]]
name = "b2"
"#,
    );
    assert!(
        loops
            .iter()
            .any(|p| p.contains("inv.toml:7:8: jump of host `b1`: the chain loops: b1 → b2 → b1")),
        "{loops:?}"
    );
    let bad = problems(
        r#"
[[hosts]]
name = "h"
jump = "a,,b:0"

[[hosts]]
name = "l"
transport = "local"

[[hosts]]
name = "m"
jump = "l"
"#,
    );
    assert!(
        bad.iter()
            .any(|p| p.contains("inv.toml:4:8: jump `a,,b:0`: an empty hop")),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|p| p.contains("port `0` is not a port")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|p| p.contains("jump of host `m`: `l` is reached with transport = \"local\"")),
        "{bad:?}"
    );
}

#[test]
fn passphrase_files_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    std::fs::write(&file, "secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = format!(
        "[[hosts]]\nname = \"h\"\nidentity = \"agent\"\npassphrase_file = \"{}\"\n",
        file.display()
    );
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.contains("is readable by other users (mode 0640): run `chmod 600")),
        "{found:?}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let inv = parse(&text, Path::new("inv.toml"), PROBES).unwrap();
    assert_eq!(inv.hosts[0].identity, crate::model::Identity::Agent);
    assert_eq!(
        inv.hosts[0].passphrase_file.as_deref(),
        Some(file.as_path())
    );
}

#[test]
fn cluster_and_remote_write_resolve_with_defaults() {
    let text = r#"
[cluster]
shard = "2/4"
replicas = 2

[[remote_write]]
url = "http://127.0.0.1:8428/api/v1/write"
bearer_token_file = "token"
external_labels = { site = "fra1" }

[remote_write.queue]
capacity = "30m"
max_samples_per_send = 500

[[remote_write]]
name = "central"
url = "https://vm.example:8427/api/v1/write"
basic_auth = { username = "dcmon", password_file = "/etc/dcmon/vm.pass" }
tls = { ca_file = "ca.pem", cert_file = "c.pem", key_file = "k.pem" }

[[hosts]]
name = "a"
"#;
    let inv = parse(text, Path::new("/etc/dcmon/inv.toml"), PROBES).unwrap();
    assert_eq!(
        inv.cluster.shard,
        Some(crate::cluster::Shard { index: 2, count: 4 })
    );
    assert_eq!(inv.cluster.replicas, 2);
    assert_eq!(
        inv.cluster.replica_label(),
        Some(("replica".to_string(), "2".to_string()))
    );
    let [first, second] = inv.remote_writes.as_slice() else {
        panic!("{:?}", inv.remote_writes)
    };
    assert_eq!(first.name, "http://127.0.0.1:8428/api/v1/write");
    assert_eq!(
        first.auth,
        crate::cluster::RemoteAuth::Bearer("/etc/dcmon/token".into())
    );
    assert_eq!(first.queue.capacity, Duration::from_secs(1800));
    assert_eq!(first.queue.max_samples_per_send, 500);
    assert_eq!(first.queue.max_backoff, Duration::from_secs(5));
    assert_eq!(first.external_labels["site"], "fra1");
    assert_eq!(second.name, "central");
    assert_eq!(second.ca_file, Some("/etc/dcmon/ca.pem".into()));
    assert_eq!(
        second.client_cert,
        Some(("/etc/dcmon/c.pem".into(), "/etc/dcmon/k.pem".into()))
    );
    assert_eq!(second.queue.capacity, Duration::from_secs(7200));
}

/// The central view's settings: the backend URL (trailing `/` dropped) and each
/// poller's dashboard, which say where a host's logs are.
#[test]
fn the_central_view_reads_its_backend_and_the_pollers() {
    let text = r#"
[cluster]
replicas = 2
pollers = ["http://p1:8000", "http://p2:8000", "https://p3:8443"]

[web]
backend = { prometheus = "http://vm:8428/" }

[[hosts]]
name = "a"
"#;
    let inv = parse(text, Path::new("/etc/dcmon/inv.toml"), PROBES).unwrap();
    assert_eq!(inv.web.backend.as_deref(), Some("http://vm:8428"));
    assert_eq!(inv.cluster.poller_count(), 3);
    let owners = inv.cluster.owners("a");
    assert_eq!(owners.len(), 2);
    for (index, url) in owners {
        assert_eq!(
            url.as_deref(),
            Some(inv.cluster.pollers[index as usize - 1].as_str())
        );
    }
    let bad = r#"
[cluster]
shard = "1/2"
pollers = ["http://p1:8000", "gopher://p2", "http://p3"]

[web]
backend = { promethus = "http://vm:8428" }

[[hosts]]
name = "a"
"#;
    let found = problems(bad).join("\n");
    for expected in [
        "inv.toml:4:30: url `gopher://p2` does not start with http:// or https://",
        "pollers lists 3 dashboards but shard = \"1/2\" counts 2 pollers",
        "inv.toml:7:13: unknown key `promethus` in [web] backend (keys: prometheus)",
        "backend needs prometheus = ",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
}

#[test]
fn cluster_and_remote_write_mistakes_are_located() {
    let text = r#"
[cluster]
shard = "5/4"
replicas = 0

[[remote_write]]
url = "ftp://x/api"
bearer_token_file = "t"
basic_auth = { username = "u" }
external_labels = { host = "x", "bad-name" = "y", site = "" }
tls = { cert_file = "c.pem" }

[remote_write.queue]
capacity = "0s"
max_samples_per_send = 0
min_backoff = "10s"
max_backoff = "1s"
batch_deadline = "1s"

[[remote_write]]
name = "again"

[[hosts]]
name = "a"
"#;
    let found = problems(text).join("\n");
    for expected in [
        "inv.toml:3:9: shard `5/4`: I must be from 1 to N",
        "inv.toml:4:12: replicas = 0",
        "inv.toml:7:7: url `ftp://x/api` does not start with http:// or https://",
        "inv.toml:9:1: bearer_token_file and basic_auth are both set",
        "basic_auth needs username and password_file",
        "inv.toml:10:21: external label `host`",
        "external label `bad-name`",
        "external label `site` is empty",
        "tls: a client certificate needs both cert_file and key_file",
        "inv.toml:14:12: capacity `0s` must be longer than zero",
        "max_samples_per_send = 0 is not from 1 to 1000000",
        "min_backoff is longer than max_backoff",
        "unknown key `batch_deadline` in [[remote_write]] entry #1 queue (keys: capacity,",
        "inv.toml:20:1: [[remote_write]] needs url",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
}

#[test]
fn a_probe_brings_its_companions_once_and_only_where_listed() {
    let host = |probes: &str| {
        let text = format!("[[hosts]]\nname = \"a\"\nprobes = {probes}\n");
        parse(&text, Path::new("inv.toml"), PROBES).unwrap().hosts[0]
            .probes
            .clone()
    };
    assert_eq!(host(r#"["nvidia"]"#), ["nvidia"]);
    assert_eq!(host(r#"["fs", "os"]"#), ["fs", "os"]);
    assert_eq!(host(r#"["os", "fs"]"#), ["os", "fs"]);
    assert_eq!(host(r#"["nvme", "os"]"#), ["nvme", "os", "fs"]);
    assert_eq!(host(r#"["fs"]"#), ["fs"]);
}

#[test]
fn a_log_file_path_with_a_nul_byte_is_refused_where_it_is_written() {
    let text = "[[hosts]]\nname = \"a\"\nlog_files = [\"/var/log/a\\u0000b\"]\n";
    let problems = problems(text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("log_files entry `/var/log/a\\0b` must be an absolute path")
            && problems[0].contains("NUL"),
        "{problems:?}"
    );
}
