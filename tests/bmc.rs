//! The `bmc` probe against OpenIPMI's ipmi_sim over RMCP+: a host whose SSH is down still
//! shows power state and sensors in `dcmon poll --json` and the store, with the values
//! `ipmitool -I lanplus` reads from the same simulator; a wrong password and a BMC that
//! does not answer fail clearly within the timeout without holding other hosts.

mod testbed;

use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::ipmi_sim::{IpmiSim, PASSWORD, USER};
use testbed::{Sshd, json_lines, poll};

fn password_file(dir: &std::path::Path, name: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// (sensor, series, value) the bmc probe stored for `host`.
fn stored(db: &std::path::Path, host: &str) -> Vec<(String, String, f64)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.labels, s.name, x.value FROM series s JOIN samples x ON x.series_id = s.id
             WHERE s.host = ?1 AND s.labels LIKE '%\"path\":\"bmc\"%' ORDER BY s.name, s.labels",
        )
        .unwrap();
    stmt.query_map([host], |r| {
        let labels: String = r.get(0)?;
        let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
        Ok((
            labels["sensor"].as_str().unwrap_or_default().to_string(),
            r.get::<_, String>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn a_host_with_ssh_down_still_reports_power_and_sensors_from_its_bmc() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let dir = bed.dir.path();
    let good = password_file(dir, "bmc.pass", PASSWORD);
    let wrong = password_file(dir, "wrong.pass", "not-the-password");
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap(); // answers nothing
    let known_hosts = bed.write("known_hosts", "");
    let closed = testbed::free_port();
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"wrongpass\"\naddress = \"127.0.7.2\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"silent\"\naddress = \"127.0.7.3\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n",
        // Every host's SSH port is closed: only the BMC path can answer.
        bed.defaults(&known_hosts, "3s").replace(
            &format!("port = {}\n", bed.port),
            &format!("port = {closed}\n")
        ),
        sim.port,
        good.display(),
        sim.port,
        wrong.display(),
        quiet.local_addr().unwrap().port(),
        good.display(),
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = dir.join("dcmon.db");
    let started = Instant::now();
    let out = poll(&inv, &db);
    let took = started.elapsed();
    let results = json_lines(&out);
    assert_eq!(results.len(), 3, "{}", String::from_utf8_lossy(&out.stderr));
    let of = |h: &str| results.iter().find(|r| r["host"] == h).unwrap().clone();

    // SSH is refused, the BMC answered: power state and sensors are stored.
    let down = of("down");
    assert!(
        down["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{down}"
    );
    assert!(down["samples"].as_u64().unwrap() >= 8, "{down}");
    let readings = stored(&db, "down");
    // Power as ipmitool's `chassis status` reads it (the simulator reports "off"),
    // through the in-band probe's own chassis parser.
    let chassis = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["chassis", "status"])
        .output()
        .unwrap();
    let mut expected = dcmon_probes::ProbeOutput::default();
    dcmon_probes::ipmi::chassis::parse(&String::from_utf8_lossy(&chassis.stdout), &mut expected);
    let expected_power = expected
        .samples
        .iter()
        .find(|s| s.name == "ipmi_chassis_power_on")
        .expect("ipmitool reads the power state")
        .value;
    let power = readings
        .iter()
        .find(|r| r.1 == "ipmi_chassis_power_on")
        .expect("the bmc probe reads the power state");
    assert_eq!(power.2, expected_power);

    // The same values as ipmitool over lanplus from the same simulator, through the
    // in-band ipmi probe's own sdr parser.
    let elist = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["sdr", "elist"])
        .output()
        .unwrap();
    assert!(
        elist.status.success(),
        "{}",
        String::from_utf8_lossy(&elist.stderr)
    );
    let mut parsed = dcmon_probes::ProbeOutput::default();
    dcmon_probes::ipmi::sdr::parse(&String::from_utf8_lossy(&elist.stdout), &mut parsed);
    let mut compared = 0;
    for s in parsed
        .samples
        .iter()
        .filter(|s| s.name != "ipmi_sensor_status")
    {
        let sensor = s.labels.get("sensor").unwrap();
        let ours = readings
            .iter()
            .find(|r| r.0 == sensor && r.1 == s.name)
            .unwrap_or_else(|| panic!("{} {sensor} not read from the BMC: {readings:?}", s.name));
        assert!(
            (ours.2 - s.value).abs() < 1e-6,
            "{sensor}: bmc {} vs ipmitool {}",
            ours.2,
            s.value
        );
        compared += 1;
    }
    assert!(
        compared >= 5,
        "temperatures, fans and power compared: {compared}"
    );
    assert!(
        readings
            .iter()
            .any(|r| r.0 == "FAN1" && r.1 == "ipmi_fan_speed_rpm" && r.2 == 4800.0)
    );

    // A wrong password and a BMC that never answers: clear errors, within the timeout.
    let bmc_error = |host: &str| -> String {
        Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT coalesce(error, '') FROM probe_runs WHERE host = ?1 AND probe = 'bmc'",
                [host],
                |r| r.get(0),
            )
            .unwrap()
    };
    let wrong = bmc_error("wrongpass");
    assert!(wrong.starts_with("BMC 127.0.0.1:"), "{wrong}");
    assert!(
        wrong.contains("the BMC refused user `admin` or its password"),
        "{wrong}"
    );
    assert!(
        !wrong.contains("not-the-password"),
        "the password never shows"
    );
    let silent = bmc_error("silent");
    assert!(silent.contains("nothing answered within 3s"), "{silent}");
    assert_eq!(bmc_error("down"), "", "the good BMC's run has no error");
    assert!(
        took < Duration::from_secs(12),
        "hosts run side by side, each within its timeout: {took:?}"
    );
}

#[test]
fn serve_shows_a_powered_off_host_from_its_bmc_while_ssh_is_down() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let dir = bed.dir.path();
    let good = password_file(dir, "bmc.pass", PASSWORD);
    let known_hosts = bed.write("known_hosts", "");
    let closed = testbed::free_port();
    let inventory = format!(
        "{}interval = \"1s\"\noffline_after = 1\n\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n",
        bed.defaults(&known_hosts, "3s").replace(
            &format!("port = {}\n", bed.port),
            &format!("port = {closed}\n")
        ),
        sim.port,
        good.display(),
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = dir.join("dcmon.db");
    let serve = testbed::dashboard::Dashboard::serve(&inv, &db);
    // SSH refused: offline; the BMC answers: power off (what the simulator reports).
    let hosts = serve.wait_for_json("/api/hosts", Duration::from_secs(30), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter()
                .any(|h| h["host"] == "down" && h["status"] == "offline" && h["bmc_power"] == false)
        })
    });
    assert!(
        hosts[0]["ipmi_temp_max"].is_number(),
        "sensors from the BMC: {hosts}"
    );
    let (status, page) = serve.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<td class="text status-powered-off""#) && page.contains("powered off"),
        "{page}"
    );
    let (_, host_page) = serve.get("/hosts/down");
    assert!(
        host_page.contains("<td>FAN1</td>"),
        "the sensor table, from the BMC: {host_page}"
    );
}
