//! nvme probe tests: both `nvme list` layouts, smart-log from nvme-cli 1.x, 2.3 and 2.11,
//! the whole script output, absent tool and garbled input.

use super::*;
use crate::output::ParseError;
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/nvme/", $name))
    };
}

fn drive(device: &str) -> list::Drive {
    list::Drive {
        device: device.into(),
        model: "M".into(),
        serial: "S".into(),
        firmware: "F".into(),
        capacity_bytes: None,
    }
}

fn smart(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    smart_log::parse(text, &drive("/dev/nvme0n1"), &mut out);
    out
}

fn get(out: &ProbeOutput, name: &str) -> Option<f64> {
    out.samples.iter().find(|s| s.name == name).map(|s| s.value)
}

#[test]
fn flat_list_two_firecudas() {
    let mut out = ProbeOutput::default();
    let drives = list::parse(
        fixture!("list-2x-seagate-firecuda530-nvmecli-2.3-netdata.json"),
        &mut out,
    );
    assert_eq!(out.warnings, []);
    assert_eq!(drives.len(), 2);
    assert_eq!(drives[1].device, "/dev/nvme1n1");
    assert_eq!(drives[1].model, "Seagate FireCuda 530 ZP4000GM30023");
    assert_eq!(drives[1].serial, "XXX01YYY");
    assert_eq!(drives[1].firmware, "SU6SM001");
    assert_eq!(drives[1].capacity_bytes, Some(4_000_787_030_016));
    let fact = |k: &str| {
        out.facts
            .iter()
            .find(|f| f.key == k)
            .map(|f| f.value.as_str())
    };
    assert_eq!(fact("nvme0n1_serial"), Some("XXX00YYY"));
    assert_eq!(fact("nvme_count"), Some("2"));
}

#[test]
fn empty_list() {
    let mut out = ProbeOutput::default();
    assert!(list::parse(fixture!("list-empty-netdata.json"), &mut out).is_empty());
    assert_eq!(out.warnings, []);
}

/// The nested layout of `nvme list -v -o json` (nvme-cli 2.x, json_detail_list):
/// host → subsystems → controllers → namespaces.
#[test]
fn nested_list_layout() {
    let text = r#"{"Devices":[{"HostNQN":"nqn.2014-08.org.nvmexpress:uuid:0000","HostID":"0000",
      "Subsystems":[{"Subsystem":"nvme-subsys0","SubsystemNQN":"nqn.2019-10.com.kioxia:KXG60ZNV512G",
        "Controllers":[{"Controller":"nvme0","SerialNumber":"Y9SF71Z0F1Q1","ModelNumber":"KXG60ZNV512G TOSHIBA",
          "Firmware":"AGGA4104","Transport":"pcie","Address":"0000:01:00.0","Slot":"",
          "Namespaces":[{"NameSpace":"nvme0n1","Generic":"ng0n1","NSID":1,"UsedBytes":67108864000,
            "MaximumLBA":1000215216,"PhysicalSize":512110190592,"SectorSize":512}],"Paths":[]}],
        "Namespaces":[]}]}]}"#;
    let mut out = ProbeOutput::default();
    let drives = list::parse(text, &mut out);
    assert_eq!(
        drives,
        [list::Drive {
            device: "/dev/nvme0n1".into(),
            model: "KXG60ZNV512G TOSHIBA".into(),
            serial: "Y9SF71Z0F1Q1".into(),
            firmware: "AGGA4104".into(),
            capacity_bytes: Some(512_110_190_592),
        }]
    );
}

#[test]
fn smart_log_2_3() {
    let out = smart(fixture!(
        "smart-log-seagate-firecuda530-nvmecli-2.3-netdata.json"
    ));
    assert_eq!(out.warnings, []);
    assert_eq!(get(&out, "nvme_temperature_celsius"), Some(37.0)); // 310 K
    assert_eq!(get(&out, "nvme_available_spare_percent"), Some(100.0));
    assert_eq!(
        get(&out, "nvme_available_spare_threshold_percent"),
        Some(5.0)
    );
    assert_eq!(get(&out, "nvme_percentage_used"), Some(2.0));
    assert_eq!(get(&out, "nvme_critical_warning"), Some(0.0));
    assert_eq!(get(&out, "nvme_power_on_seconds"), Some(4974.0 * 3600.0));
    assert_eq!(get(&out, "nvme_unsafe_shutdowns_total"), Some(39.0));
    assert_eq!(get(&out, "nvme_media_errors_total"), Some(0.0));
    assert_eq!(
        get(&out, "nvme_data_read_bytes_total"),
        Some(9_898_518.0 * 512_000.0)
    );
    assert_eq!(
        get(&out, "nvme_data_written_bytes_total"),
        Some(136_157_684.0 * 512_000.0)
    );
    let s = out
        .samples
        .iter()
        .find(|s| s.name == "nvme_temperature_celsius")
        .unwrap();
    assert_eq!(
        (
            s.labels.get("device"),
            s.labels.get("model"),
            s.labels.get("serial")
        ),
        (Some("/dev/nvme0n1"), Some("M"), Some("S"))
    );
}

#[test]
fn smart_log_2_11_critical_warning_object() {
    let out = smart(fixture!(
        "smart-log-seagate-firecuda530-nvmecli-2.11-netdata.json"
    ));
    assert_eq!(out.warnings, []);
    assert_eq!(get(&out, "nvme_critical_warning"), Some(0.0));
    assert_eq!(get(&out, "nvme_temperature_celsius"), Some(51.0)); // 324 K
    assert_eq!(get(&out, "nvme_percentage_used"), Some(30.0));
    assert_eq!(get(&out, "nvme_error_log_entries_total"), Some(212.0));
    let flagged = smart(
        &fixture!("smart-log-seagate-firecuda530-nvmecli-2.11-netdata.json").replacen(
            "\"value\": 0",
            "\"value\": 4",
            1,
        ),
    );
    assert_eq!(get(&flagged, "nvme_critical_warning"), Some(4.0));
}

#[test]
fn smart_log_1x_with_sensor_temperatures() {
    let out = smart(fixture!("smart-log-dell-server-nvmecli-1x-old.json"));
    assert_eq!(out.warnings, []);
    assert_eq!(get(&out, "nvme_temperature_celsius"), Some(28.0)); // 301 K
    assert_eq!(get(&out, "nvme_percentage_used"), Some(15.0));
    assert_eq!(get(&out, "nvme_power_on_seconds"), Some(38313.0 * 3600.0));
    let sensors: Vec<(String, f64)> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvme_temperature_sensor_celsius")
        .map(|s| (s.labels.get("sensor").unwrap().to_string(), s.value))
        .collect();
    assert_eq!(
        sensors,
        [
            ("1".into(), 33.0),
            ("2".into(), 28.0),
            ("3".into(), 23.0),
            ("4".into(), 22.0)
        ]
    );
}

#[test]
fn whole_script_output_labels_each_drive() {
    let text = format!(
        "\n==dcmon== list\n{}\n==dcmon== smart-log /dev/nvme0n1\n{}\n==dcmon== smart-log /dev/nvme1n1\n{}\n==dcmon== end\n",
        fixture!("list-2x-seagate-firecuda530-nvmecli-2.3-netdata.json"),
        fixture!("smart-log-seagate-firecuda530-nvmecli-2.3-netdata.json"),
        fixture!("smart-log-seagate-firecuda530-nvmecli-2.11-netdata.json"),
    );
    let out = parse(&text);
    assert_eq!(out.warnings, []);
    let temps: Vec<(&str, &str, f64)> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvme_temperature_celsius")
        .map(|s| {
            (
                s.labels.get("device").unwrap(),
                s.labels.get("serial").unwrap(),
                s.value,
            )
        })
        .collect();
    assert_eq!(
        temps,
        [
            ("/dev/nvme0n1", "XXX00YYY", 37.0),
            ("/dev/nvme1n1", "XXX01YYY", 51.0)
        ]
    );
}

/// nvme-cli 2.3 (libnvme 1.3) on a host without NVMe controllers, captured on the build
/// machine: `nvme list -o json` prints this line on stderr and exits 1.
#[test]
fn a_host_without_nvme_controllers_is_absent_not_failed() {
    let out = parse(
        "\n==dcmon== list\nFailed to scan topology: No such file or directory\n\n==dcmon== end\n",
    );
    assert_eq!(
        out.absent.as_deref(),
        Some("no NVMe controllers (nvme list: Failed to scan topology: No such file or directory)")
    );
    assert_eq!(out.warnings, []);
}

#[test]
fn absent_and_failing_tool() {
    let out = parse("\n==dcmon== absent\nnvme-cli is not installed\n\n==dcmon== end\n");
    assert_eq!(out.absent.as_deref(), Some("nvme-cli is not installed"));
    let failed = smart("open: Permission denied\n");
    assert_eq!(
        failed.warnings,
        [ParseError::ToolFailed {
            tool: "nvme".into(),
            message: "open: Permission denied".into()
        }]
    );
    let broken = smart("{\"temperature\": 310,");
    assert!(matches!(
        &broken.warnings[..],
        [ParseError::Malformed { .. }]
    ));
}

proptest! {
    #[test]
    fn never_panics(text in "[ -~\n]{0,300}", pos in 0usize..900, byte in any::<u8>()) {
        let _ = parse(&text);
        let _ = smart(&text);
        let mut bytes = fixture!("smart-log-dell-server-nvmecli-1x-old.json").as_bytes().to_vec();
        let at = pos % bytes.len();
        bytes[at] = byte;
        let out = smart(&String::from_utf8_lossy(&bytes));
        prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
    }
}
