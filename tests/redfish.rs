//! The `bmc` probe over Redfish against DMTF's Redfish Mockup Server over HTTPS with a
//! test CA: every temperature, fan, PSU and the power state as the mockup's own JSON
//! says (read here, by the test); a changed reading in the next round; `auto` reading
//! Redfish without touching IPMI, and falling back to ipmi_sim when Redfish is closed;
//! a wrong CA, an expired certificate, a closed port and a stopped server each a clear
//! error within the deadline, beside a healthy BMC; the password nowhere.

mod testbed;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::ipmi_sim::IpmiSim;
use testbed::redfish::{Certs, Mockup, StallingRelay};
use testbed::{json_lines, poll};

const PASSWORD: &str = "s3cret-Redfish-pass";

fn password_file(dir: &Path) -> PathBuf {
    let path = dir.join("bmc.pass");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A BMC-only host (its OS is this machine, asked nothing) with these `bmc` settings.
fn host(name: &str, bmc: &str) -> String {
    format!(
        "[[hosts]]\nname = \"{name}\"\ntransport = \"local\"\nprobes = []\ntimeout = \"4s\"\nconnect_timeout = \"4s\"\nbmc = {{ address = \"127.0.0.1\", user = \"admin\", {bmc} }}\n\n"
    )
}

fn value(db: &Path, host: &str, name: &str, sensor: &str) -> Option<f64> {
    testbed::stored::latest_value(db, host, name, &[("sensor", sensor), ("path", "redfish")])
}

fn bmc_error(db: &Path, host: &str) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT coalesce(error, '') FROM latest_runs WHERE host = ?1 AND probe = 'bmc'",
            [host],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{host}'s bmc run: {e}"))
}

/// The Redfish log lines stored for `host`: (time, priority, message), oldest first.
fn log_lines(db: &Path, host: &str) -> Vec<(i64, u8, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT ts, priority, message FROM logs WHERE host = ?1 AND source = 'redfish' ORDER BY id")
        .unwrap();
    stmt.query_map([host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn facts(db: &Path, host: &str) -> Vec<(String, String)> {
    dcmon_store::Store::open(db).unwrap().facts(host).unwrap()
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `ipmi_sensor_status` for a Redfish `Status`, as an operator reads it.
fn status_of(v: &Value) -> f64 {
    match (
        v["Status"]["State"].as_str(),
        v["Status"]["Health"].as_str(),
    ) {
        (Some("Absent" | "Disabled"), _) => 4.0,
        (_, Some("Warning")) => 1.0,
        (_, Some("Critical")) => 2.0,
        _ => 0.0,
    }
}

#[test]
fn readings_over_https_equal_the_mockups_json_and_follow_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::make(dir);
    let mockup = Mockup::start(dir, &certs.cert, &certs.key);
    let pass = password_file(dir);
    let inv = dir.join("inventory.toml");
    std::fs::write(
        &inv,
        host(
            "rf1",
            &format!(
                "protocol = \"redfish\", port = {}, password_file = \"{}\", ca_file = \"{}\"",
                mockup.port,
                pass.display(),
                certs.ca.display()
            ),
        )
        .replace(
            "probes = []\n",
            "probes = []\nfan_profile = \"supermicro\"\n",
        ),
    )
    .unwrap();
    let db = dir.join("dcmon.db");
    let out = poll(&inv, &db);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let results = json_lines(&out);
    assert_eq!(results.len(), 1, "{stderr}");
    assert_eq!(bmc_error(&db, "rf1"), "", "{stderr}");

    // One session, made at the start and deleted at the end of the round.
    let log = mockup.log();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("\"POST /redfish/v1/SessionService/Sessions "),
        1,
        "{log}"
    );
    assert_eq!(
        count("\"DELETE /redfish/v1/SessionService/Sessions/"),
        1,
        "{log}"
    );
    // What the walk fetched (chassis, system, manager) is read once, not asked again.
    for walked in ["Chassis/1U", "Systems/437XR1138R2", "Managers/BMC"] {
        assert_eq!(
            count(&format!("\"GET /redfish/v1/{walked} ")),
            1,
            "{walked}: {log}"
        );
    }

    // Every temperature and fan of Thermal, as the mockup's file has it.
    let thermal = mockup.resource("Chassis/1U/Thermal");
    let mut compared = 0;
    for t in thermal["Temperatures"].as_array().unwrap() {
        let name = t["Name"].as_str().unwrap();
        let status = value(&db, "rf1", "ipmi_sensor_status", name);
        match t["ReadingCelsius"].as_f64() {
            Some(c) if status_of(t) < 4.0 => {
                assert_eq!(
                    value(&db, "rf1", "ipmi_temperature_celsius", name),
                    Some(c),
                    "{name}"
                );
                compared += 1;
            }
            _ => {
                assert_eq!(status, Some(4.0), "{name} has no reading");
                assert_eq!(value(&db, "rf1", "ipmi_temperature_celsius", name), None);
            }
        }
        for (key, level) in [
            ("UpperThresholdNonCritical", "upper_non_critical"),
            ("UpperThresholdCritical", "upper_critical"),
            ("UpperThresholdFatal", "upper_non_recoverable"),
            ("LowerThresholdCritical", "lower_critical"),
        ] {
            if status_of(t) < 4.0 {
                let stored = testbed::stored::latest_value(
                    &db,
                    "rf1",
                    "ipmi_sensor_threshold",
                    &[("sensor", name), ("threshold", level)],
                );
                assert_eq!(stored, t[key].as_f64(), "{name} {level}");
            }
        }
    }
    for f in thermal["Fans"].as_array().unwrap() {
        let name = f["Name"].as_str().unwrap();
        assert_eq!(
            value(&db, "rf1", "ipmi_fan_speed_rpm", name),
            f["Reading"].as_f64(),
            "{name}"
        );
        assert_eq!(
            value(&db, "rf1", "ipmi_sensor_status", name),
            Some(status_of(f))
        );
        compared += 1;
    }
    // Every PSU: its health, and its output.
    let power = mockup.resource("Chassis/1U/Power");
    for p in power["PowerSupplies"].as_array().unwrap() {
        let name = p["Name"].as_str().unwrap();
        assert_eq!(
            value(&db, "rf1", "ipmi_sensor_status", name),
            Some(status_of(p)),
            "{name}"
        );
        assert_eq!(
            value(
                &db,
                "rf1",
                "ipmi_power_watts",
                &format!("{name} output power")
            ),
            p["LastPowerOutputWatts"].as_f64()
        );
        compared += 1;
    }
    assert_eq!(
        testbed::stored::latest_value(&db, "rf1", "ipmi_dcmi_power_watts", &[("path", "redfish")]),
        power["PowerControl"][0]["PowerConsumedWatts"].as_f64()
    );
    assert!(compared >= 5, "{compared} readings compared");
    // The power state, and the firmware of the BMC and the BIOS.
    let system = mockup.resource("Systems/437XR1138R2");
    let on = if system["PowerState"] == "On" {
        1.0
    } else {
        0.0
    };
    assert_eq!(
        testbed::stored::latest_value(&db, "rf1", "ipmi_chassis_power_on", &[("path", "redfish")]),
        Some(on)
    );
    let facts = facts(&db, "rf1");
    let fact = |k: &str| {
        facts
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        fact("bmc_firmware").as_deref(),
        mockup.resource("Managers/BMC")["FirmwareVersion"].as_str()
    );
    assert_eq!(
        fact("bios_version").as_deref(),
        system["BiosVersion"].as_str()
    );
    assert_eq!(fact("bmc_protocol").as_deref(), Some("redfish"));
    // The firmware inventory as facts, one per component.
    let inventory = mockup.resource("UpdateService/FirmwareInventory");
    let components = inventory["Members"].as_array().unwrap();
    assert!(components.len() >= 3);
    for member in components {
        let path = member["@odata.id"].as_str().unwrap();
        let f = mockup.resource(path.trim_start_matches("/redfish/v1/"));
        let key = format!("firmware {}", f["Name"].as_str().unwrap());
        assert_eq!(
            fact(&key).as_deref(),
            f["Version"].as_str(),
            "{key}: {facts:?}"
        );
    }

    // Every entry of every log service, once.
    let mut expected = 0;
    for entries in [
        "Systems/437XR1138R2/LogServices/Log1/Entries",
        "Managers/BMC/LogServices/Log/Entries",
    ] {
        expected += mockup.resource(entries)["Members"]
            .as_array()
            .unwrap()
            .len();
    }
    let logs = log_lines(&db, "rf1");
    assert_eq!(logs.len(), expected, "{logs:?}");
    assert!(
        logs.iter()
            .any(|(_, p, m)| *p == 2 && m.starts_with("System May be Melting"))
    );

    // `dcmon probe run` says which protocol answered.
    let run = testbed::dcmon(&["probe", "run", "-i", inv.to_str().unwrap(), "rf1", "bmc"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.starts_with(&format!(
            "rf1 (bmc https://127.0.0.1:{} as admin), probe bmc\nanswered over: redfish (bmc protocol = \"redfish\")\nok after ",
            mockup.port
        )),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // A reading changed on the BMC is there the next round: CPU1 past its non-critical
    // threshold (42) reads 1 whatever the BMC's Health says.
    mockup.edit("Chassis/1U/Thermal", |t| {
        t["Temperatures"][0]["ReadingCelsius"] = 43.into();
    });
    let out = poll(&inv, &db);
    let again = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        value(&db, "rf1", "ipmi_temperature_celsius", "CPU1 Temp"),
        Some(43.0),
        "{again}"
    );
    assert_eq!(
        value(&db, "rf1", "ipmi_sensor_status", "CPU1 Temp"),
        Some(1.0)
    );
    // The log entries of the first round were not stored again.
    assert_eq!(log_lines(&db, "rf1").len(), expected);
    // A new entry in the system log: it alone is stored.
    mockup.edit("Systems/437XR1138R2/LogServices/Log1/Entries", |c| {
        let mut third = c["Members"][1].clone();
        third["@odata.id"] = "/redfish/v1/Systems/437XR1138R2/LogServices/Log1/Entries/3".into();
        third["Id"] = "3".into();
        third["Message"] = "Fan 2 failed".into();
        third["Severity"] = "Warning".into();
        c["Members"].as_array_mut().unwrap().push(third);
    });
    poll(&inv, &db);
    let logs = log_lines(&db, "rf1");
    assert_eq!(logs.len(), expected + 1, "{logs:?}");
    assert_eq!(logs.last().unwrap().1, 4);
    assert!(logs.last().unwrap().2.starts_with("Fan 2 failed"));

    // The password shows nowhere: not in what dcmon printed, not in the database.
    for text in [
        stderr,
        again,
        String::from_utf8_lossy(&out.stdout).to_string(),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    let bytes = std::fs::read(&db).unwrap();
    assert!(
        !bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );
}

#[test]
fn auto_reads_redfish_without_ipmi_and_falls_back_to_ipmi_when_redfish_is_closed() {
    assert_eq!(testbed::ipmi_sim::USER, "admin", "host() logs in as admin");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::make(dir);
    let mockup = Mockup::start(dir, &certs.cert, &certs.key);
    let sim = IpmiSim::start();
    let pass = password_file(dir);
    std::fs::write(
        dir.join("sim.pass"),
        format!("{}\n", testbed::ipmi_sim::PASSWORD),
    )
    .unwrap();
    std::fs::set_permissions(dir.join("sim.pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The IPMI port of the Redfish host: a socket that must receive nothing.
    let ipmi_watch = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ipmi_watch.set_nonblocking(true).unwrap();
    let closed = testbed::free_port();
    let inv = dir.join("inventory.toml");
    std::fs::write(
        &inv,
        host(
            "both",
            &format!(
                "protocol = \"auto\", redfish_port = {}, port = {}, password_file = \"{}\", ca_file = \"{}\"",
                mockup.port,
                ipmi_watch.local_addr().unwrap().port(),
                pass.display(),
                certs.ca.display()
            ),
        ) + &host(
            "legacy",
            &format!(
                "protocol = \"auto\", redfish_port = {closed}, port = {}, password_file = \"{}\", ca_file = \"{}\"",
                sim.port,
                dir.join("sim.pass").display(),
                certs.ca.display()
            ),
        ),
    )
    .unwrap();
    let db = dir.join("dcmon.db");
    let out = poll(&inv, &db);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(bmc_error(&db, "both"), "", "{stderr}");
    assert_eq!(bmc_error(&db, "legacy"), "", "{stderr}");
    // Redfish answered for `both`, and its IPMI port saw not one datagram.
    let mut buf = [0u8; 64];
    assert!(ipmi_watch.recv(&mut buf).is_err(), "IPMI was touched");
    let fact = |h: &str| {
        facts(&db, h)
            .into_iter()
            .find(|(k, _)| k == "bmc_protocol")
            .map(|(_, v)| v)
    };
    assert_eq!(fact("both").as_deref(), Some("redfish"));
    assert!(value(&db, "both", "ipmi_temperature_celsius", "CPU1 Temp").is_some());
    // `legacy`'s Redfish port is closed: ipmi_sim answered, said in one line.
    assert_eq!(fact("legacy").as_deref(), Some("ipmi"));
    assert!(
        testbed::stored::latest_value(
            &db,
            "legacy",
            "ipmi_fan_speed_rpm",
            &[("sensor", "FAN1"), ("path", "bmc")]
        )
        .is_some(),
        "{stderr}"
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("bmc protocol auto"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("host legacy")
            && said[0].contains("Connection refused")
            && said[0].contains("reading the BMC over IPMI"),
        "{}",
        said[0]
    );
}

#[test]
fn tls_and_network_failures_are_clear_within_the_deadline_beside_a_healthy_bmc() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::make(dir);
    let good = Mockup::start(dir, &certs.cert, &certs.key);
    let expired = Mockup::start(dir, &certs.expired, &certs.key);
    let stopped = Mockup::start(dir, &certs.cert, &certs.key);
    let pass = password_file(dir);
    let closed = testbed::free_port();
    // The good server behind a relay that lets the login and the service root through,
    // then cuts every answer short and holds the connection open.
    let midway = StallingRelay::start(good.port, 2);
    // A BMC whose Thermal is 9 MB (a padded copy of the mockup's).
    let huge_dir = dir.join("huge");
    std::fs::create_dir(&huge_dir).unwrap();
    let huge = Mockup::start(&huge_dir, &certs.cert, &certs.key);
    huge.edit("Chassis/1U/Thermal", |t| {
        t["Oem"] = serde_json::json!({ "padding": "x".repeat(9 << 20) });
    });
    let bmc = |port: u16, ca: &Path| {
        format!(
            "protocol = \"redfish\", port = {port}, password_file = \"{}\", ca_file = \"{}\"",
            pass.display(),
            ca.display()
        )
    };
    let inv = dir.join("inventory.toml");
    std::fs::write(
        &inv,
        [
            host("good", &bmc(good.port, &certs.ca)),
            host("wrongca", &bmc(good.port, &certs.other_ca)),
            host("expired", &bmc(expired.port, &certs.ca)),
            host("closed", &bmc(closed, &certs.ca)),
            host("stopped", &bmc(stopped.port, &certs.ca)),
            host("midway", &bmc(midway.port, &certs.ca)),
            host("huge", &bmc(huge.port, &certs.ca)),
            // Not checked at all: reads even the expired one, and is warned about.
            host(
                "insecure",
                &format!(
                    "protocol = \"redfish\", port = {}, password_file = \"{}\", insecure_tls = true",
                    expired.port,
                    pass.display()
                ),
            ),
        ]
        .concat(),
    )
    .unwrap();
    // A server that stops answering: the kernel still accepts the connection.
    signal(stopped.pid(), "-STOP");
    let db = dir.join("dcmon.db");
    let started = Instant::now();
    let out = poll(&inv, &db);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(bmc_error(&db, "good"), "", "{stderr}");
    assert!(value(&db, "good", "ipmi_temperature_celsius", "CPU1 Temp").is_some());
    let wrong = bmc_error(&db, "wrongca");
    assert!(
        wrong.contains("not signed by a CA in bmc ca_file")
            && wrong.starts_with("Redfish https://127.0.0.1:"),
        "{wrong}"
    );
    let old = bmc_error(&db, "expired");
    assert!(
        old.contains("Expired") && old.contains("past its validity"),
        "{old}"
    );
    let refused = bmc_error(&db, "closed");
    assert!(refused.contains("Connection refused"), "{refused}");
    let stall = bmc_error(&db, "stopped");
    assert!(
        stall.contains("by the deadline (the BMC stalled"),
        "{stall}"
    );
    let cut = bmc_error(&db, "midway");
    assert!(
        cut.contains("the answer was not complete by the deadline (the BMC stalled"),
        "{cut}"
    );
    assert!(
        took < Duration::from_secs(10),
        "each within its 4 s: {took:?}"
    );
    assert_eq!(bmc_error(&db, "insecure"), "", "{stderr}");
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("insecure_tls"))
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].starts_with(
            "dcmon: host insecure: bmc insecure_tls = true: its BMC's HTTPS certificate is not checked"
        ),
        "{}",
        warned[0]
    );
    let big = bmc_error(&db, "huge");
    assert!(
        big.contains("/redfish/v1/Chassis/1U/Thermal: the answer broke off or passed 8 MB"),
        "{big}"
    );
    for e in [wrong, old, refused, stall, cut, big, stderr] {
        assert!(!e.contains(PASSWORD), "{e}");
    }
    signal(stopped.pid(), "-CONT");
}

#[test]
fn serve_shows_a_host_powered_off_through_redfish_and_keeps_its_session_warm() {
    let bed = testbed::Sshd::start();
    let dir = bed.dir.path();
    let certs = Certs::make(dir);
    let mockup = Mockup::start(dir, &certs.cert, &certs.key);
    mockup.edit("Systems/437XR1138R2", |s| s["PowerState"] = "Off".into());
    let pass = password_file(dir);
    let known_hosts = bed.write("known_hosts", "");
    let inventory = format!(
        "{}interval = \"1s\"\noffline_after = 1\n\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nbmc = {{ address = \"127.0.0.1\", user = \"admin\", protocol = \"redfish\", port = {}, password_file = \"{}\", ca_file = \"{}\" }}\n",
        // SSH refused: only the BMC answers.
        bed.defaults_ssh_closed(&known_hosts, "3s"),
        mockup.port,
        pass.display(),
        certs.ca.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = dir.join("dcmon.db");
    let serve = testbed::dashboard::Dashboard::serve(&inv, &db);
    serve.wait_for_json("/api/hosts", Duration::from_secs(30), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter()
                .any(|h| h["host"] == "down" && h["status"] == "offline" && h["bmc_power"] == false)
        })
    });
    let (status, page) = serve.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("powered off"), "{page}");
    let (_, host_page) = serve.get("/hosts/down");
    assert!(
        host_page.contains("<td>CPU1 Temp</td>") && host_page.contains(">redfish</td>"),
        "the sensor table, from Redfish: {host_page}"
    );
    // With the thresholds the BMC gives, lowest first.
    assert!(
        host_page.contains(
            "<td>Chassis Intake Temp</td><td class=\"text dim\">Intake</td><td class=\"text dim\">redfish</td><td>25 °C</td><td class=\"text dim\">nr ≤0 · cr ≤5 · nc ≤10 · nc ≥30 · cr ≥40 · nr ≥50</td>"
        ),
        "{host_page}"
    );
    // Later rounds reuse the session and the layout: one login, one walk of the root.
    let rounds = |log: &str| log.matches("\"GET /redfish/v1/Chassis/1U/Thermal ").count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rounds(&mockup.log()) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = mockup.log();
    assert!(rounds(&log) >= 3, "{log}");
    assert_eq!(
        log.matches("\"POST /redfish/v1/SessionService/Sessions ")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("\"GET /redfish/v1/ ").count(), 1, "{log}");
}

#[test]
fn fan_modes_over_redfish_where_the_bmc_offers_them_and_a_reason_where_not() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::make(dir);
    let plain = Mockup::start(dir, &certs.cert, &certs.key);
    // A Supermicro-like BMC: its manager links Oem.Supermicro.FanMode, shaped as
    // Supermicro serves it (see gofish's smc tests).
    let smc_dir = dir.join("smc");
    std::fs::create_dir(&smc_dir).unwrap();
    let smc = Mockup::start(&smc_dir, &certs.cert, &certs.key);
    smc.edit("Managers/BMC", |m| {
        m["Oem"] = serde_json::json!({ "Supermicro": { "FanMode": {
            "@odata.id": "/redfish/v1/Managers/BMC/Oem/Supermicro/FanMode" } } });
    });
    let fan_mode = smc.root.join("Managers/BMC/Oem/Supermicro/FanMode");
    std::fs::create_dir_all(&fan_mode).unwrap();
    std::fs::write(
        fan_mode.join("index.json"),
        serde_json::json!({
            "@odata.type": "#FanMode.v1_0_1.FanMode",
            "@odata.id": "/redfish/v1/Managers/BMC/Oem/Supermicro/FanMode",
            "Name": "FanMode",
            "Id": "Fan Mode",
            "Mode": "Standard",
            "Mode@Redfish.AllowableValues": ["Standard", "FullSpeed", "Optimal", "HeavyIO"],
        })
        .to_string(),
    )
    .unwrap();
    let pass = password_file(dir);
    // A BMC-only host with this fan profile, its BMC on `port`.
    let entry = |name: &str, port: u16, profile: &str| {
        let bmc = format!(
            "protocol = \"redfish\", port = {port}, password_file = \"{}\", ca_file = \"{}\"",
            pass.display(),
            certs.ca.display()
        );
        host(name, &bmc).replace(
            "probes = []\n",
            &format!("probes = []\nfan_profile = \"{profile}\"\n"),
        )
    };
    let inv = dir.join("inventory.toml");
    std::fs::write(
        &inv,
        [
            entry("smc", smc.port, "supermicro"),
            entry("plain", plain.port, "supermicro"),
            entry("dell", plain.port, "dell"),
        ]
        .concat(),
    )
    .unwrap();
    let db = dir.join("dcmon.db");
    let fan = |args: &[&str]| testbed::dcmon_on("fan", &inv, &db, args);

    // Status: the mode from FanMode, the fans from Thermal.
    let out = fan(&["smc", "status", "--via", "bmc", "--json"]);
    let status = json_lines(&out);
    assert_eq!(status.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status[0]["mode"], "standard", "{}", status[0]);
    let thermal = smc.resource("Chassis/1U/Thermal");
    let fans = status[0]["fans"].as_array().unwrap();
    assert_eq!(
        fans.len(),
        thermal["Fans"].as_array().unwrap().len(),
        "{}",
        status[0]
    );
    assert_eq!(fans[0]["sensor"], thermal["Fans"][0]["Name"]);
    assert_eq!(
        fans[0]["rpm"],
        thermal["Fans"][0]["Reading"].as_f64().unwrap()
    );
    assert_eq!(fans[0]["status"], "ok");

    // Set: one PATCH of FanMode with the BMC's word, then the status reads it back.
    let out = fan(&["smc", "set", "full", "--via", "bmc"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = smc.log();
    assert_eq!(
        log.matches("\"PATCH /redfish/v1/Managers/BMC/Oem/Supermicro/FanMode ")
            .count(),
        1,
        "{log}"
    );
    let out = fan(&["smc", "status", "--via", "bmc", "--json"]);
    assert_eq!(json_lines(&out)[0]["mode"], "full");
    // pue is not among this BMC's modes: refused, naming those it has.
    let out = fan(&["smc", "set", "pue", "--via", "bmc"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("this BMC offers fan modes Standard, FullSpeed, Optimal, HeavyIO, not PUE"),
        "{said}"
    );

    // A BMC without FanMode: said so; nothing patched.
    let out = fan(&["plain", "set", "full", "--via", "bmc"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("this BMC offers no fan mode over Redfish"),
        "{said}"
    );
    // Dell's fan commands have no Redfish form dcmon sends: refused before sending.
    let before = plain.log().lines().count();
    let out = fan(&["dell", "set", "auto", "--via", "bmc"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("dell: its BMC is reached over Redfish only")
            && said.contains("Dell's fan control is an iDRAC OEM setting")
            && said.contains("nothing was sent"),
        "{said}"
    );
    assert_eq!(plain.log().lines().count(), before);
    assert!(!plain.log().contains("PATCH"));
    // Each run logged its session out.
    for m in [&smc, &plain] {
        let log = m.log();
        assert_eq!(
            log.matches("\"POST /redfish/v1/SessionService/Sessions ")
                .count(),
            log.matches("\"DELETE /redfish/v1/SessionService/Sessions/")
                .count(),
            "{log}"
        );
    }
}

#[test]
fn a_bmc_without_thermal_and_power_is_read_through_sensors_and_the_subsystems() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::make(dir);
    let mockup = Mockup::start(dir, &certs.cert, &certs.key);
    // As a BMC that dropped the deprecated resources: no Thermal, no Power.
    mockup.edit("Chassis/1U", |c| {
        let c = c.as_object_mut().unwrap();
        for key in [
            "Thermal",
            "Power",
            "Thermal@Redfish.Deprecated",
            "Power@Redfish.Deprecated",
        ] {
            c.remove(key);
        }
    });
    let pass = password_file(dir);
    let inv = dir.join("inventory.toml");
    std::fs::write(
        &inv,
        host(
            "new",
            &format!(
                "protocol = \"redfish\", port = {}, password_file = \"{}\", ca_file = \"{}\"",
                mockup.port,
                pass.display(),
                certs.ca.display()
            ),
        ),
    )
    .unwrap();
    let db = dir.join("dcmon.db");
    let out = poll(&inv, &db);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(bmc_error(&db, "new"), "", "{stderr}");

    // Every temperature of the Sensors collection, as each sensor's file has it.
    let sensors = mockup.resource("Chassis/1U/Sensors");
    let mut temperatures = 0;
    for member in sensors["Members"].as_array().unwrap() {
        let path = member["@odata.id"].as_str().unwrap();
        let sensor = mockup.resource(path.trim_start_matches("/redfish/v1/"));
        if sensor["ReadingType"] == "Temperature" || sensor["ReadingUnits"] == "Cel" {
            let name = sensor["Name"].as_str().unwrap();
            assert_eq!(
                value(&db, "new", "ipmi_temperature_celsius", name),
                sensor["Reading"].as_f64(),
                "{name}"
            );
            temperatures += 1;
        }
    }
    assert!(temperatures >= 5, "{temperatures} temperatures");
    // PSUs from PowerSubsystem, with their metrics; an empty bay reads nothing.
    let bay1 = mockup.resource("Chassis/1U/PowerSubsystem/PowerSupplies/Bay1");
    let metrics = mockup.resource("Chassis/1U/PowerSubsystem/PowerSupplies/Bay1/Metrics");
    let name = bay1["Name"].as_str().unwrap();
    assert_eq!(
        value(&db, "new", "ipmi_sensor_status", name),
        Some(status_of(&bay1))
    );
    assert_eq!(
        value(
            &db,
            "new",
            "ipmi_power_watts",
            &format!("{name} input power")
        ),
        metrics["InputPowerWatts"]["Reading"].as_f64()
    );
    assert_eq!(
        value(&db, "new", "ipmi_sensor_status", "Power Supply Bay 2"),
        Some(4.0)
    );
    // The system's draw from EnvironmentMetrics.
    assert_eq!(
        testbed::stored::latest_value(&db, "new", "ipmi_dcmi_power_watts", &[("path", "redfish")]),
        mockup.resource("Chassis/1U/EnvironmentMetrics")["PowerWatts"]["Reading"].as_f64()
    );
    // The collection came in one answer ($expand, which the service root offers), not
    // one request a sensor.
    let log = mockup.log();
    assert!(
        log.contains("\"GET /redfish/v1/Chassis/1U/Sensors?$expand=.($levels=1) "),
        "{log}"
    );
    assert!(
        !log.contains("\"GET /redfish/v1/Chassis/1U/Sensors/CPU1Temp "),
        "{log}"
    );
}
