//! infiniband probe tests: node_exporter's captured sysfs tree (an mlx4 HCA with two
//! ports, an i40iw iWARP device whose counters read `N/A (no PMA)`), a port gone down,
//! the script against a fake tree, and garbage.

use super::*;
use proptest::prelude::*;

const CAPTURE: &str =
    include_str!("../../tests/fixtures/infiniband/sysfs-ports-mlx4-i40iw-node-exporter.txt");

fn value(
    out: &ProbeOutput,
    name: &str,
    device: &str,
    port: &str,
    counter: Option<&str>,
) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.get("device") == Some(device)
                && s.labels.get("port") == Some(port)
                && s.labels.get("counter") == counter
        })
        .map(|s| s.value)
}

fn framed(body: &str) -> String {
    format!("\n==dcmon== ports\n{body}\n==dcmon== end\n")
}

#[test]
fn the_captured_tree_reads_exactly() {
    let out = parse(&framed(CAPTURE));
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "ib_port_state", "mlx4_0", "1", None), Some(4.0));
    assert_eq!(value(&out, "ib_port_up", "mlx4_0", "2", None), Some(1.0));
    assert_eq!(
        value(&out, "ib_port_phys_state", "mlx4_0", "1", None),
        Some(5.0)
    );
    // 40 Gb/sec (4X QDR) = 5e9 bytes/s.
    assert_eq!(
        value(&out, "ib_port_rate_bytes_per_second", "mlx4_0", "1", None),
        Some(5e9)
    );
    assert_eq!(
        value(&out, "ib_port_rate_bytes_per_second", "i40iw0", "1", None),
        Some(1.25e9)
    );
    // port_rcv_data 4631917 words of 4 bytes.
    assert_eq!(
        value(&out, "ib_port_received_bytes_total", "mlx4_0", "1", None),
        Some(4631917.0 * 4.0)
    );
    assert_eq!(
        value(
            &out,
            "ib_port_errors_total",
            "mlx4_0",
            "1",
            Some("link_downed")
        ),
        Some(0.0)
    );
    // The iWARP device keeps no counters: no sample, and no warning for that.
    assert_eq!(
        value(
            &out,
            "ib_port_errors_total",
            "i40iw0",
            "1",
            Some("symbol_error")
        ),
        None
    );
    assert_eq!(value(&out, "ib_port_up", "i40iw0", "1", None), Some(1.0));
    assert!(
        out.facts
            .iter()
            .any(|f| f.key == "ib_mlx4_0_1_link_layer" && f.value == "InfiniBand")
    );
}

/// procfs's captured mlx5 tree: the driver's hw_counters under their own names, and
/// `lifespan` (the driver's cache time in ms, a setting) left out.
#[test]
fn the_mlx5_hw_counters_read_exactly() {
    let out = parse(&framed(include_str!(
        "../../tests/fixtures/infiniband/sysfs-ports-mlx5-hw-counters-procfs.txt"
    )));
    assert_eq!(out.warnings, []);
    let hw = |counter: &str| {
        value(
            &out,
            "ib_port_hw_counter_total",
            "mlx5_0",
            "1",
            Some(counter),
        )
    };
    assert_eq!(hw("local_ack_timeout_err"), Some(131.0));
    assert_eq!(hw("resp_cqe_error"), Some(8109.0));
    assert_eq!(hw("rx_read_requests"), Some(175528982.0));
    assert_eq!(hw("roce_adp_retrans_to"), Some(4.0));
    assert_eq!(hw("lifespan"), None);
    assert_eq!(
        out.samples
            .iter()
            .filter(|s| s.name == "ib_port_hw_counter_total")
            .count(),
        24
    );
    // 25 Gb/sec (1X EDR); port_xmit_data 2880761508848 words of 4 bytes.
    assert_eq!(
        value(&out, "ib_port_rate_bytes_per_second", "mlx5_0", "1", None),
        Some(3.125e9)
    );
    assert_eq!(
        value(&out, "ib_port_transmitted_bytes_total", "mlx5_0", "1", None),
        Some(2880761508848.0 * 4.0)
    );
    crate::test_support::assert_series_unique(&out);
}

#[test]
fn a_port_gone_down_reads_zero_not_absent() {
    let down = CAPTURE
        .replace(
            "mlx4_0/ports/2/state:4: ACTIVE",
            "mlx4_0/ports/2/state:1: DOWN",
        )
        .replace(
            "mlx4_0/ports/2/phys_state:5: LinkUp",
            "mlx4_0/ports/2/phys_state:3: Disabled",
        );
    let out = parse(&framed(&down));
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "ib_port_up", "mlx4_0", "2", None), Some(0.0));
    assert_eq!(value(&out, "ib_port_state", "mlx4_0", "2", None), Some(1.0));
    assert_eq!(
        value(&out, "ib_port_phys_state", "mlx4_0", "2", None),
        Some(3.0)
    );
    assert_eq!(value(&out, "ib_port_up", "mlx4_0", "1", None), Some(1.0));
}

#[test]
fn odd_lines_are_warnings_with_their_line() {
    let out = parse(&framed(
        "/sys/class/infiniband/mlx5_0/ports/1/state:weird\n/etc/passwd:root\n/sys/class/infiniband/mlx5_0/ports/1/rate:fast\n/sys/class/infiniband/mlx5_0/ports/1/counters/symbol_error:12\n",
    ));
    let said: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(said.len(), 3, "{said:?}");
    assert!(said[0].contains("line 1") && said[1].contains("line 2") && said[2].contains("line 3"));
    assert_eq!(
        value(
            &out,
            "ib_port_errors_total",
            "mlx5_0",
            "1",
            Some("symbol_error")
        ),
        Some(12.0)
    );
}

/// The script itself against a fake tree (DCMON_SYSFS), and with none.
#[test]
fn the_script_reads_a_tree_with_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("class/infiniband/mlx5_0/ports/1");
    std::fs::create_dir_all(port.join("counters")).unwrap();
    std::fs::create_dir_all(port.join("hw_counters")).unwrap();
    for (file, v) in [
        ("state", "4: ACTIVE"),
        ("phys_state", "5: LinkUp"),
        ("rate", "200 Gb/sec (4X HDR)"),
        ("link_layer", "InfiniBand"),
        ("counters/symbol_error", "3"),
        ("counters/port_xmit_data", "1000"),
        ("hw_counters/out_of_sequence", "7"),
        ("hw_counters/lifespan", "10"),
    ] {
        std::fs::write(port.join(file), format!("{v}\n")).unwrap();
    }
    let run = |sysfs: &std::path::Path| {
        parse(&crate::test_support::run_script(
            SCRIPT,
            &[("DCMON_SYSFS", sysfs.as_os_str())],
        ))
    };
    let out = run(dir.path());
    assert_eq!(out.warnings, []);
    assert_eq!(
        value(&out, "ib_port_rate_bytes_per_second", "mlx5_0", "1", None),
        Some(25e9)
    );
    assert_eq!(
        value(&out, "ib_port_transmitted_bytes_total", "mlx5_0", "1", None),
        Some(4000.0)
    );
    assert_eq!(
        value(
            &out,
            "ib_port_hw_counter_total",
            "mlx5_0",
            "1",
            Some("out_of_sequence")
        ),
        Some(7.0)
    );
    let none = run(&dir.path().join("nothing"));
    assert!(
        none.absent
            .as_deref()
            .unwrap()
            .starts_with("no InfiniBand or RoCE port")
    );
}

proptest! {
    #[test]
    fn never_panics(text in "([ -~]{0,60}\n){0,20}", pos in 0usize..3000, byte in any::<u8>()) {
        let _ = parse(&framed(&text));
        let damaged = crate::test_support::mutated(CAPTURE, pos, byte, usize::MAX);
        let _ = parse(&framed(&damaged));
    }
}
