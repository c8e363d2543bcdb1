//! `dcmon poll` over hosts with different hardware: shim `ipmitool`, `nvidia-smi` and
//! `nvme` on each test host's PATH (chosen by the destination address of the login)
//! print real captures; one host's `ipmitool` talks over lanplus to OpenIPMI's
//! `ipmi_sim`, a real simulated BMC; one host has none of the tools.

mod testbed;

use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use testbed::ipmi_sim::IpmiSim;
use testbed::shims::{dell_gpu_server, fixture, ipmitool_via, shim};
use testbed::{Sshd, json_lines, poll, poll_one_ok, single_host};

/// A Supermicro-style box whose BMC is ipmi_sim, reached by the real ipmitool over lanplus.
fn simulated_bmc_server(root: &Path, sim: &IpmiSim) -> PathBuf {
    let dir = root.join("ipmi-sim");
    std::fs::create_dir_all(&dir).unwrap();
    ipmitool_via(&dir, &sim.ipmitool_args());
    shim(
        &dir,
        "nvidia-smi",
        &format!(
            "--query-gpu=*) cat {} ;;\n--query-compute-apps=*) echo 'gpu_uuid, pid, process_name, used_gpu_memory [MiB]' ;;",
            fixture("nvidia-smi/query-gpu-l40s-595.80-linux-load.csv")
        ),
    );
    dir
}

/// A folder for a test host's shims, readable by the test-bed user: (its temporary root,
/// kept alive by the caller, and the folder).
fn shim_dir(prefix: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for d in [root.path(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (root, dir)
}

fn value(conn: &Connection, host: &str, name: &str, label: (&str, &str)) -> Option<f64> {
    testbed::stored::latest_value(db_of(conn), host, name, &[label])
}

/// The file `conn` has open: samples are read through the store, which knows where
/// each one lives.
fn db_of(conn: &Connection) -> &std::path::Path {
    std::path::Path::new(conn.path().expect("a database file"))
}

/// How many SEL lines are stored for a host.
fn count_sel_lines(conn: &Connection, host: &str) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM logs WHERE host = ?1 AND source = 'sel'",
        [host],
        |r| r.get(0),
    )
    .unwrap()
}

/// The latest value of a series without labels.
fn unlabelled(conn: &Connection, host: &str, name: &str) -> Option<f64> {
    with_labels(conn, host, name, "{}")
}

/// An ipmi probe series with no label but its path: read through the host's OS.
fn in_band(conn: &Connection, host: &str, name: &str) -> Option<f64> {
    with_labels(conn, host, name, r#"{"path":"ssh"}"#)
}

fn with_labels(conn: &Connection, host: &str, name: &str, labels: &str) -> Option<f64> {
    testbed::stored::latest(db_of(conn), host)
        .into_iter()
        .find(|s| s.name == name && serde_json::to_string(&s.labels).unwrap() == labels)
        .map(|s| s.value)
}

#[test]
fn each_host_reports_its_own_hardware() {
    let sim = IpmiSim::start();
    let root = tempfile::Builder::new()
        .prefix("dcmon-hw-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dell = dell_gpu_server(root.path());
    let simulated = simulated_bmc_server(root.path(), &sim);
    let (gpu, bmc, plain) = ("127.0.2.1", "127.0.2.2", "127.0.2.3");
    let bed = Sshd::start_with(&[(gpu, &dell), (bmc, &simulated)]);
    let addrs: Vec<String> = [gpu, bmc, plain].iter().map(|s| s.to_string()).collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    let inventory = format!(
        "{}probes = [\"os\", \"ipmi\", \"nvidia\", \"nvme\"]\n\n[groups.all]\nhosts = [\"127.0.2.[1-3]\"]\n",
        bed.defaults(&known_hosts, "20s")
            .replace("probes = [\"os\"]\n", "")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let round = || {
        let out = poll(&inv, &db);
        let results = json_lines(&out);
        assert!(
            out.status.success(),
            "{results:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            bed.log()
        );
        results
    };
    let first = round();
    let conn = Connection::open(&db).unwrap();

    // The GPU server: fixture values through the whole path.
    assert_eq!(
        value(&conn, gpu, "ipmi_fan_speed_rpm", ("sensor", "Fan1")),
        Some(5040.0)
    );
    assert_eq!(
        value(&conn, gpu, "ipmi_current_amperes", ("sensor", "Current 1")),
        Some(7.2)
    );
    assert_eq!(in_band(&conn, gpu, "ipmi_dcmi_power_watts"), Some(167.0));
    assert_eq!(
        value(
            &conn,
            gpu,
            "nvidia_gpu_power_draw_watts",
            ("name", "NVIDIA H100 80GB HBM3")
        ),
        Some(631.95)
    );
    assert_eq!(
        value(
            &conn,
            gpu,
            "nvme_temperature_celsius",
            ("device", "/dev/nvme1n1")
        ),
        Some(51.0)
    );
    assert_eq!(
        value(&conn, gpu, "nvme_percentage_used", ("serial", "XXX00YYY")),
        Some(2.0)
    );
    let sel_lines = count_sel_lines(&conn, gpu);
    assert_eq!(sel_lines, 23);
    let gpu_result = first.iter().find(|r| r["host"] == gpu).unwrap();
    assert_eq!(gpu_result["logs"], 23);

    // The simulated BMC: values the simulator computes from its sensor records.
    assert_eq!(
        value(
            &conn,
            bmc,
            "ipmi_temperature_celsius",
            ("sensor", "CPU1 Temp")
        ),
        Some(45.0)
    );
    assert_eq!(
        value(&conn, bmc, "ipmi_fan_speed_rpm", ("sensor", "FAN1")),
        Some(4800.0)
    );
    assert_eq!(
        value(
            &conn,
            bmc,
            "ipmi_power_watts",
            ("sensor", "PS1 Input Power")
        ),
        Some(320.0)
    );
    assert_eq!(
        value(&conn, bmc, "ipmi_sensor_status", ("sensor", "FAN2")),
        Some(0.0)
    );
    assert_eq!(
        in_band(&conn, bmc, "ipmi_chassis_power_on"),
        Some(0.0),
        "the simulated chassis is off"
    );
    assert_eq!(
        value(
            &conn,
            bmc,
            "nvidia_gpu_power_draw_watts",
            ("name", "NVIDIA L40S")
        ),
        Some(110.23)
    );
    let bmc_result = first.iter().find(|r| r["host"] == bmc).unwrap();
    assert_eq!(
        bmc_result["absent"],
        serde_json::json!(["nvme: nvme-cli is not installed"])
    );

    // The plain host: every hardware probe absent, quietly, and the host ok.
    let plain_result = first.iter().find(|r| r["host"] == plain).unwrap();
    assert_eq!(plain_result["status"], "ok");
    assert_eq!(plain_result["error"], serde_json::Value::Null);
    assert_eq!(
        plain_result["absent"].as_array().unwrap().len(),
        3,
        "{plain_result}"
    );
    let absent_runs: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_runs WHERE host = ?1 AND status = 'absent'",
            [plain],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(absent_runs, 3);
    assert!(
        unlabelled(&conn, plain, "node_load1").is_some(),
        "the os probe still ran"
    );
    assert_eq!(in_band(&conn, plain, "ipmi_chassis_power_on"), None);

    // The BMC is live: a changed fan reading shows in the next round. SEL lines are
    // stored once however many rounds see them.
    sim.set_raw("fan1.raw", 100); // 100 * 50 = 5000 RPM
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = round();
    assert_eq!(
        value(&conn, bmc, "ipmi_fan_speed_rpm", ("sensor", "FAN1")),
        Some(5000.0)
    );
    let sel_lines = count_sel_lines(&conn, gpu);
    assert_eq!(sel_lines, 23, "no SEL line stored twice");
    assert_eq!(second.iter().find(|r| r["host"] == gpu).unwrap()["logs"], 0);
    drop(conn);

    // What these hosts stored, and this machine read by every probe (serve without an
    // inventory), exposed at /metrics: a valid exposition by Prometheus's own linter.
    metrics_pass_promtool(&db);
}

fn metrics_pass_promtool(db: &Path) {
    let dashboard = testbed::dashboard::Dashboard::start(&["--db", db.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let (status, text) = dashboard.get("/metrics");
        assert_eq!(status, 200, "{text}");
        // The local round has landed once this machine's os series are there.
        if text.contains("node_uptime_seconds{host=\"") && text.contains("ipmi_fan_speed_rpm")
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    for family in [
        "ipmi_fan_speed_rpm",
        "nvidia_gpu_power_draw_watts",
        "nvme_temperature_celsius",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}: {text}"
        );
    }
    let mut promtool = std::process::Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; tests/run.sh installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 18, end to end: a host whose `lspci` shows eight H100s (a real HGX capture)
/// while `nvidia-smi` lists seven (shims printing those captures) reads `nvidia_gpu_missing = 1`; with all eight
/// listed it reads 0; the inventory's `expected_gpus` reaches the probe.
#[test]
fn a_gpu_on_the_bus_the_driver_does_not_list_is_missing() {
    let (_root, dir) = shim_dir("dcmon-gpus-", "hgx");
    let capture = std::fs::read_to_string(fixture(
        "nvidia-smi/query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv",
    ))
    .unwrap();
    let mut lines = capture.lines();
    let (header, row) = (lines.next().unwrap(), lines.next().unwrap());
    let csv = |gpus: usize| -> String {
        let rows: String = (0..gpus)
            .map(|i| format!("{}\n", row.replacen("0, ", &format!("{i}, "), 1)))
            .collect();
        format!("{header}\n{rows}")
    };
    let listed = dir.join("listed.csv");
    std::fs::write(&listed, csv(7)).unwrap();
    std::fs::set_permissions(&listed, std::fs::Permissions::from_mode(0o644)).unwrap();
    shim(
        &dir,
        "nvidia-smi",
        &format!(
            "--query-gpu=*) cat {} ;;\n--query-compute-apps=*) cat {} ;;",
            listed.display(),
            fixture("nvidia-smi/query-compute-apps-h100-80gb-hbm3-590.48.01-linux-load.csv")
        ),
    );
    shim(
        &dir,
        "lspci",
        &format!(
            "'-Dnn -d 10de:') cat {} ;;",
            fixture("nvidia-smi/lspci-dnn-h100-sxm5-8-gpus-4-nvswitches.txt")
        ),
    );
    let host = "127.0.2.18";
    let (_bed, inv, db) = single_host(host, &dir, &[], "probes = [\"nvidia\"]\nexpected_gpus = 8");
    let round = || poll_one_ok(&inv, &db);
    round();
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        with_labels(&conn, host, "nvidia_gpus_on_bus", "{}"),
        Some(8.0)
    );
    assert_eq!(
        with_labels(&conn, host, "nvidia_nvswitches_on_bus", "{}"),
        Some(4.0)
    );
    assert_eq!(
        with_labels(&conn, host, "nvidia_gpus_visible", "{}"),
        Some(7.0)
    );
    assert_eq!(
        with_labels(&conn, host, "nvidia_gpus_expected", "{}"),
        Some(8.0)
    );
    assert_eq!(
        with_labels(&conn, host, "nvidia_gpu_missing", "{}"),
        Some(1.0)
    );
    std::fs::write(&listed, csv(8)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    round();
    assert_eq!(
        with_labels(&conn, host, "nvidia_gpu_missing", "{}"),
        Some(0.0)
    );
}

/// Issue 18, end to end: an InfiniBand port in a host's (fake) sysfs that goes down
/// between two polls reads `ib_port_up = 0`, it does not vanish.
#[test]
fn an_infiniband_port_gone_down_reads_zero() {
    let root = tempfile::Builder::new()
        .prefix("dcmon-ib-")
        .tempdir()
        .unwrap();
    let sysfs = root.path().join("sys");
    let port = sysfs.join("class/infiniband/mlx5_0/ports/1");
    std::fs::create_dir_all(port.join("counters")).unwrap();
    for (file, v) in [
        ("state", "4: ACTIVE"),
        ("phys_state", "5: LinkUp"),
        ("rate", "200 Gb/sec (4X HDR)"),
        ("link_layer", "InfiniBand"),
        ("counters/symbol_error", "0"),
        ("counters/link_downed", "0"),
        ("counters/port_rcv_data", "4631917"),
    ] {
        std::fs::write(port.join(file), format!("{v}\n")).unwrap();
    }
    // The test-bed user must read the tree.
    let status = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    let host = "127.0.2.19";
    let sysfs_text = sysfs.display().to_string();
    let (_bed, inv, db) = single_host(
        host,
        root.path(),
        &[("DCMON_SYSFS", sysfs_text.as_str())],
        "probes = [\"infiniband\"]",
    );
    let round = || poll_one_ok(&inv, &db);
    let port_labels = r#"{"device":"mlx5_0","port":"1"}"#;
    round();
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        with_labels(&conn, host, "ib_port_up", port_labels),
        Some(1.0)
    );
    assert_eq!(
        with_labels(&conn, host, "ib_port_rate_bytes_per_second", port_labels),
        Some(25e9)
    );
    std::fs::write(port.join("state"), "1: DOWN\n").unwrap();
    std::fs::write(port.join("phys_state"), "3: Disabled\n").unwrap();
    std::fs::write(port.join("counters/link_downed"), "1\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    round();
    assert_eq!(
        with_labels(&conn, host, "ib_port_up", port_labels),
        Some(0.0)
    );
    assert_eq!(
        with_labels(&conn, host, "ib_port_phys_state", port_labels),
        Some(3.0)
    );
    assert_eq!(
        with_labels(
            &conn,
            host,
            "ib_port_errors_total",
            r#"{"counter":"link_downed","device":"mlx5_0","port":"1"}"#
        ),
        Some(1.0)
    );
}

/// Issue 18, end to end: the `nvidia_details` probe through the test sshd, with a shim
/// `nvidia-smi` printing real captures (`-q -x` of an A100, `nvlink -s` of an H100,
/// `nvlink -e` of the V100 pair whose link sits at 65535 CRC errors), stores the NVLink
/// error counters per GPU, link and counter, and the PCIe replay counter.
#[test]
fn nvlink_error_counters_reach_the_store() {
    let (_root, dir) = shim_dir("dcmon-nvlink-", "dgx");
    shim(
        &dir,
        "nvidia-smi",
        &format!(
            "'-q -x') cat {} ;;\n'nvlink -s') cat {} ;;\n'nvlink -e') cat {} ;;",
            fixture("nvidia-smi/q-x-a100-sxm4-v12-telegraf.xml"),
            fixture("nvidia-smi/nvlink-s-h100-80gb-hbm3-590.48.01.txt"),
            fixture("nvidia-smi/nvlink-e-tesla-v100-sxm2-32gb-ls.txt"),
        ),
    );
    let host = "127.0.2.20";
    let (_bed, inv, db) = single_host(host, &dir, &[], "probes = [\"nvidia_details\"]");
    poll_one_ok(&inv, &db);
    let conn = Connection::open(&db).unwrap();
    let errors = |gpu: &str, link: &str, counter: &str| {
        let labels: String = conn
            .query_row(
                "SELECT labels FROM series WHERE host = ?1 AND name = 'nvidia_nvlink_errors_total' AND labels LIKE ?2 AND labels LIKE ?3 AND labels LIKE ?4",
                rusqlite::params![
                    host,
                    format!("%\"gpu\":\"{gpu}\"%"),
                    format!("%\"link\":\"{link}\"%"),
                    format!("%\"counter\":\"{counter}\"%")
                ],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("gpu {gpu} link {link} {counter}: {e}"));
        with_labels(&conn, host, "nvidia_nvlink_errors_total", &labels)
    };
    assert_eq!(errors("2", "0", "crc"), Some(65535.0));
    assert_eq!(errors("0", "3", "replay"), Some(211.0));
    assert_eq!(errors("0", "3", "recovery"), Some(0.0));
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM series WHERE host = ?1 AND name = 'nvidia_nvlink_errors_total'",
            [host],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 36, "2 GPUs × 6 links × 3 counters");
    // The A100 capture's `minor_number` is 1.
    assert_eq!(
        value(&conn, host, "nvidia_gpu_pcie_replays_total", ("gpu", "1")),
        Some(0.0)
    );
    assert_eq!(
        value(&conn, host, "nvidia_nvlink_up", ("link", "17")),
        Some(1.0)
    );
}
