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
use testbed::{Sshd, dcmon, json_lines, poll};

fn password_file(dir: &std::path::Path, name: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// (sensor, series, latest value) the bmc probe stored for `host`, by series name and
/// labels.
fn stored(db: &std::path::Path, host: &str) -> Vec<(String, String, f64)> {
    let mut found: Vec<_> = testbed::stored::latest(db, host)
        .into_iter()
        .filter(|s| s.labels.get("path").map(String::as_str) == Some("bmc"))
        .map(|s| {
            let sensor = s.labels.get("sensor").cloned().unwrap_or_default();
            let labels = serde_json::to_string(&s.labels).unwrap();
            (s.name, labels, sensor, s.value)
        })
        .collect();
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    found
        .into_iter()
        .map(|(name, _, sensor, value)| (sensor, name, value))
        .collect()
}

/// (ts, priority, unit, message) of the SEL lines stored for `host`, oldest first.
fn sel_logs(db: &std::path::Path, host: &str) -> Vec<(i64, u8, String, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT ts, priority, coalesce(unit, ''), message FROM logs
             WHERE host = ?1 AND source = 'sel' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
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
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"wrongpass\"\naddress = \"127.0.7.2\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"silent\"\naddress = \"127.0.7.3\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"noport\"\naddress = \"127.0.7.4\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n",
        // Every host's SSH port is closed: only the BMC path can answer.
        bed.defaults_ssh_closed(&known_hosts, "3s"),
        sim.port,
        good.display(),
        sim.port,
        wrong.display(),
        quiet.local_addr().unwrap().port(),
        good.display(),
        testbed::free_port(), // nothing bound: the kernel answers port unreachable
        good.display(),
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = dir.join("dcmon.db");
    let started = Instant::now();
    let out = poll(&inv, &db);
    let took = started.elapsed();
    let results = json_lines(&out);
    assert_eq!(results.len(), 4, "{}", String::from_utf8_lossy(&out.stderr));
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
    let noport = bmc_error("noport");
    assert!(noport.contains("the port is closed"), "{noport}");
    let silent = bmc_error("silent");
    assert!(silent.contains("nothing answered within 3s"), "{silent}");
    assert_eq!(bmc_error("down"), "", "the good BMC's run has no error");
    assert!(
        took < Duration::from_secs(12),
        "hosts run side by side, each within its timeout: {took:?}"
    );
}

const ADMIN_TOKEN: &str = "0123456789abcdef-admin";

#[test]
fn serve_shows_a_powered_off_host_from_its_bmc_while_ssh_is_down() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let inv = ssh_down_with_bmc(&bed, &sim, "interval = \"1s\"\noffline_after = 1\n");
    let token = password_file(bed.dir.path(), "admin.token", ADMIN_TOKEN);
    let inventory = std::fs::read_to_string(&inv).unwrap()
        + &format!("\n[web]\nadmin_token_file = \"{}\"\n", token.display());
    std::fs::write(&inv, inventory).unwrap();
    let db = bed.dir.path().join("dcmon.db");
    let serve = testbed::dashboard::Dashboard::serve(&inv, &db);
    // SSH refused: offline; the BMC answers: power off (what the simulator reports).
    let hosts = serve.wait_for_json("/api/hosts", Duration::from_secs(30), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter()
                .any(|h| h["host"] == "down" && h["status"] == "offline" && h["bmc_power"] == false)
        })
    });
    let down = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "down")
        .unwrap();
    assert!(
        down["ipmi_temp_max"].is_number(),
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
        host_page.contains(
            "<td>FAN1</td><td class=\"text dim\">29.1</td><td class=\"text dim\">bmc</td>"
        ),
        "the sensor table, from the BMC: {host_page}"
    );

    // Dashboard actions on the host whose SSH is down go to its BMC: a raw request
    // answers as `ipmitool raw` does from the same simulator, and fan status lists fans.
    let admin = Admin::login(&serve, bed.dir.path());
    let (command, output) = admin.run("down", "action=ipmi-raw&bytes=0x06+0x01");
    assert_eq!(
        command,
        format!("bmc 127.0.0.1:{}: raw 0x06 0x01", sim.port)
    );
    let ipmitool = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["raw", "0x06", "0x01"])
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&ipmitool.stdout);
    assert!(!expected.trim().is_empty());
    assert!(
        output.contains(expected.trim()),
        "{output}\nvs ipmitool:\n{expected}"
    );
    let (command, output) = admin.run("down", "action=fan-status");
    assert!(command.ends_with("; sdr type Fan"), "{command}");
    assert!(output.contains("FAN1"), "{output}");
}

/// An admin's browser, as curl with a cookie jar.
struct Admin<'a> {
    serve: &'a testbed::dashboard::Dashboard,
    jar: String,
}

impl<'a> Admin<'a> {
    fn login(serve: &'a testbed::dashboard::Dashboard, dir: &std::path::Path) -> Admin<'a> {
        let admin = Admin {
            serve,
            jar: dir.join("cookies.txt").display().to_string(),
        };
        let (_, page) = admin.curl(&[&admin.url("/login")]);
        let csrf = testbed::dashboard::form_field(&page, "csrf");
        let (status, answer) = admin.curl(&[
            "--data-urlencode",
            &format!("token={ADMIN_TOKEN}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &admin.url("/login"),
        ]);
        assert_eq!(status, 303, "{answer}");
        admin
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.serve.url)
    }

    fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut all = vec!["-b", self.jar.as_str(), "-c", self.jar.as_str()];
        all.extend_from_slice(args);
        testbed::dashboard::curl(&all)
    }

    /// Runs an action on `host` and waits for its end: (command shown, page text).
    fn run(&self, host: &str, form: &str) -> (String, String) {
        let (_, page) = self.curl(&[&self.url(&format!("/hosts/{host}"))]);
        let csrf = testbed::dashboard::form_field(&page, "csrf");
        let (status, answer) = self.curl(&[
            "-d",
            &format!("{form}&csrf={csrf}"),
            &self.url(&format!("/hosts/{host}/actions")),
        ]);
        assert_eq!(status, 303, "{answer}");
        let location = testbed::dashboard::location(&answer);
        let (_, events) = self.curl(&[
            "-N",
            "--max-time",
            "20",
            &self.url(&format!("{location}/events")),
        ]);
        assert!(events.contains("event: done"), "{events}");
        let (_, page) = self.curl(&[&self.url(&location)]);
        let command = page
            .split("<code id=\"command\">")
            .nth(1)
            .and_then(|r| r.split("</code>").next())
            .unwrap_or_else(|| panic!("{page}"))
            .replace("&#x2f;", "/");
        (command, page)
    }
}

/// `ipmitool sel elist` from the simulator, through the in-band ipmi probe's own parser.
fn ipmitool_sel(sim: &IpmiSim) -> Vec<dcmon_probes::LogEntry> {
    let sel = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["sel", "elist"])
        .env("TZ", "UTC") // as the in-band probe runs it
        .output()
        .unwrap();
    assert!(
        sel.status.success(),
        "{}",
        String::from_utf8_lossy(&sel.stderr)
    );
    let mut parsed = dcmon_probes::ProbeOutput::default();
    dcmon_probes::ipmi::sel::parse(&String::from_utf8_lossy(&sel.stdout), &mut parsed);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    parsed.logs
}

#[test]
fn the_bmc_event_log_becomes_log_lines_read_incrementally() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let dir = bed.dir.path();
    let good = password_file(dir, "bmc.pass", PASSWORD);
    let known_hosts = bed.write("known_hosts", "");
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n",
        bed.defaults_ssh_closed(&known_hosts, "3s"),
        sim.port,
        good.display(),
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = dir.join("dcmon.db");
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };

    // First poll: every entry, worded, timed and ranked as the in-band probe reads
    // `ipmitool sel elist` from the same BMC.
    let before = now_ms();
    poll(&inv, &db);
    let after = now_ms();
    let expected = ipmitool_sel(&sim);
    let logs = sel_logs(&db, "down");
    assert!(expected.len() >= 4, "the simulator's SEL: {expected:#?}");
    assert_eq!(
        logs.len(),
        expected.len(),
        "bmc {logs:#?}\nipmitool {expected:#?}"
    );
    for (ours, theirs) in logs.iter().zip(&expected) {
        match theirs.ts_ms {
            Some(ts) => assert_eq!(ours.0, ts, "{ours:?} vs {theirs:?}"),
            // "Pre-Init" (the BMC's clock was not set): stored at collection time.
            None => assert!((before..=after).contains(&ours.0), "{ours:?}"),
        }
        assert_eq!(ours.1, theirs.priority, "{ours:?} vs {theirs:?}");
        assert_eq!(
            Some(&ours.2),
            theirs.unit.as_ref(),
            "{ours:?} vs {theirs:?}"
        );
        assert_eq!(ours.3, theirs.message, "{ours:?} vs {theirs:?}");
    }
    assert!(
        logs.iter()
            .any(|l| l.3 == "Temperature CPU1 Temp: Upper Critical going high (Asserted)"),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.1 == 5 && l.3 == "Fan FAN1: Lower Critical going low (Deasserted)"),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|l| l.2 == "Power Supply #0x30"),
        "a sensor without an SDR is named as ipmitool names it: {logs:#?}"
    );

    // Nothing new: nothing stored twice.
    poll(&inv, &db);
    // Each poll closed its session (ipmi-rs would leave them open until the BMC times
    // them out): the only one active is ipmitool's own, asking.
    let info = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["session", "info", "active"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let active = info
        .lines()
        .find_map(|l| l.strip_prefix("active sessions"))
        .and_then(|v| v.trim().trim_start_matches(':').trim().parse::<u32>().ok());
    assert_eq!(active, Some(1), "{info}");
    assert_eq!(sel_logs(&db, "down").len(), expected.len());

    // The BMC's clock set, one new event: the next poll stores exactly that entry, with
    // the BMC's time.
    let ipmitool = |args: &[&str]| {
        let out = Command::new("ipmitool")
            .args(sim.ipmitool_args())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Set SEL Time: 2026-11-20 10:00:00 UTC, 0x6b001a20 little-endian.
    ipmitool(&["raw", "0x0a", "0x49", "0x20", "0x1a", "0x00", "0x6b"]);
    // Add SEL Entry: CPU2 Temp, upper non-critical going high (the BMC stamps it).
    ipmitool(&[
        "raw", "0x0a", "0x44", "0", "0", "0x02", "0", "0", "0", "0", "0x20", "0", "0x04", "0x01",
        "0x02", "0x01", "0x57", "91", "90",
    ]);
    poll(&inv, &db);
    let logs = sel_logs(&db, "down");
    let expected = ipmitool_sel(&sim);
    assert_eq!(
        logs.len(),
        expected.len(),
        "bmc {logs:#?}\nipmitool {expected:#?}"
    );
    let (ours, theirs) = (logs.last().unwrap(), expected.last().unwrap());
    let at = theirs
        .ts_ms
        .unwrap_or_else(|| panic!("a timestamped entry: {theirs:?}"));
    assert!(
        (1_795_168_800_000..1_795_168_860_000).contains(&at),
        "the clock set just before: {theirs:?}"
    );
    assert_eq!((ours.0, ours.1), (at, theirs.priority));
    assert_eq!(
        (&ours.2, &ours.3),
        (theirs.unit.as_ref().unwrap(), &theirs.message)
    );
}

/// An inventory with one host `down` whose SSH port is closed and whose BMC is `sim`.
fn ssh_down_with_bmc(bed: &Sshd, sim: &IpmiSim, extra: &str) -> std::path::PathBuf {
    let dir = bed.dir.path();
    let good = password_file(dir, "bmc.pass", PASSWORD);
    let known_hosts = bed.write("known_hosts", "");
    let inventory = format!(
        "{}{extra}\n[[hosts]]\nname = \"down\"\naddress = \"127.0.7.1\"\nfan_profile = \"supermicro\"\nbmc = {{ address = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\" }}\n\n[[hosts]]\nname = \"nobmc\"\naddress = \"127.0.7.2\"\nfan_profile = \"supermicro\"\n",
        bed.defaults_ssh_closed(&known_hosts, "3s"),
        sim.port,
        good.display(),
    );
    bed.write("inventory.toml", &inventory)
}

#[test]
fn fan_commands_go_to_the_bmc_when_asked() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let inv = ssh_down_with_bmc(&bed, &sim, "");
    let db = bed.dir.path().join("dcmon.db");
    let fan = |args: &[&str]| testbed::dcmon_on("fan", &inv, &db, args);

    // Status over the BMC: every fan, as ipmitool reads them from the same simulator.
    let out = fan(&["down", "status", "--via", "bmc", "--json"]);
    let status = json_lines(&out);
    assert_eq!(status.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let sdr = Command::new("ipmitool")
        .args(sim.ipmitool_args())
        .args(["sdr", "type", "Fan"])
        .output()
        .unwrap();
    let expected = dcmon_poller::fan::fans(&String::from_utf8_lossy(&sdr.stdout));
    assert!(expected.len() >= 2, "{expected:?}");
    let fans: Vec<dcmon_poller::fan::Fan> = status[0]["fans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| dcmon_poller::fan::Fan {
            sensor: f["sensor"].as_str().unwrap().to_string(),
            rpm: f["rpm"].as_f64(),
            status: f["status"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(fans, expected);
    assert_eq!(status[0]["status"], "ok", "{}", status[0]);
    // The simulator has no Supermicro OEM commands: the mode is unreadable, and says why.
    let mode = status[0]["mode"].as_str().unwrap();
    assert!(
        mode.contains("refused: completion code 0xc1 (invalid command"),
        "{mode}"
    );
    assert!(out.status.success(), "the fans were read");

    // Setting a mode: sent to the BMC (which refuses this OEM command), reported, audited.
    let out = fan(&["down", "set", "full", "--via", "bmc"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("down: fan mode full: failed BMC 127.0.0.1:"),
        "{stdout}"
    );
    let audit: Vec<(String, String)> = Connection::open(&db)
        .unwrap()
        .prepare("SELECT command, status FROM audit WHERE host = 'down' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(
        audit[1],
        (
            format!("bmc 127.0.0.1:{}: raw 0x30 0x45 0x01 0x01", sim.port),
            "failed".to_string()
        )
    );
    assert!(
        audit[0]
            .0
            .ends_with(": raw 0x30 0x45 0x00; echo ==dcmon== fans; sdr type Fan"),
        "{audit:?}"
    );

    // A host without a BMC: refused before anything is sent to any host.
    let out = fan(&["down,nobmc", "set", "full", "--via", "bmc"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nobmc: has no bmc in the inventory"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
}

#[test]
fn probe_run_reads_a_bmc_once_and_stores_nothing() {
    let sim = IpmiSim::start();
    let bed = Sshd::start();
    let inv = ssh_down_with_bmc(&bed, &sim, "");
    let inv = inv.to_str().unwrap();
    let out = dcmon(&["probe", "run", "-i", inv, "down", "bmc", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["bmc"], format!("127.0.0.1:{}", sim.port));
    assert_eq!(run["bmc_protocol"], "ipmi");
    let parsed = run["parsed"].as_array().unwrap();
    assert!(
        parsed.iter().any(|o| o["name"] == "ipmi_fan_speed_rpm"
            && o["labels"]["sensor"] == "FAN1"
            && o["labels"]["path"] == "bmc"
            && o["value"] == 4800.0
            && o["unit"] == "rpm"),
        "{run}"
    );
    assert!(
        parsed.iter().any(|o| o["source"] == "sel"),
        "SEL lines: {run}"
    );
    let text = dcmon(&["probe", "run", "-i", inv, "down", "bmc"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with(&format!(
            "down (bmc 127.0.0.1:{} as {USER}), probe bmc\nanswered over: ipmi (bmc protocol = \"ipmi\")\nok after ",
            sim.port
        )),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "the password never shows");
    assert!(!bed.dir.path().join("dcmon.db").exists(), "nothing stored");

    let out = dcmon(&["probe", "run", "-i", inv, "nobmc", "bmc"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobmc: has no bmc in the inventory"));
}
