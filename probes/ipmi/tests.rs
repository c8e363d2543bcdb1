//! ipmi probe tests: exact values from every ipmitool fixture, the whole script's
//! output, and garbled input.

use super::*;
use crate::output::{LogEntry, ParseError, ProbeOutput};
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/ipmitool/", $name))
    };
}

fn with(parse: fn(&str, &mut ProbeOutput), text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    parse(text, &mut out);
    out
}

fn value(out: &ProbeOutput, name: &str, sensor: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.name == name && s.labels.get("sensor") == Some(sensor))
        .map(|s| s.value)
}

fn status(out: &ProbeOutput, sensor: &str) -> Option<f64> {
    value(out, "ipmi_sensor_status", sensor)
}

#[test]
fn sdr_elist_dell() {
    let out = with(
        sdr::parse,
        fixture!("sdr-elist-dell-curated-telegraf-v2.txt"),
    );
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "ipmi_fan_speed_rpm", "Fan1"), Some(5040.0));
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", "Inlet Temp"),
        Some(25.0)
    );
    assert_eq!(value(&out, "ipmi_current_amperes", "Current 1"), Some(7.2));
    assert_eq!(
        value(&out, "ipmi_power_watts", "Power Supply 1"),
        Some(110.0)
    );
    let inlet = out
        .samples
        .iter()
        .find(|s| s.labels.get("sensor") == Some("Inlet Temp"))
        .unwrap();
    assert_eq!(inlet.labels.get("entity"), Some("7.1"));
    assert_eq!(status(&out, "SEL"), Some(4.0), "ns: no reading");
    assert_eq!(status(&out, "Intrusion"), Some(0.0));
}

#[test]
fn sdr_elist_full_hpe_ilo2() {
    let out = with(
        sdr::parse,
        fixture!("sdr-elist-full-hpe-proliant-dl360-ilo2.txt"),
    );
    assert_eq!(out.warnings, []);
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", "Temp 2"),
        Some(40.0)
    );
    assert_eq!(
        value(&out, "ipmi_power_watts", "Power Supply 2"),
        Some(95.0)
    );
    assert_eq!(value(&out, "ipmi_percent", "Fan Block 1"), Some(21.56));
}

#[test]
fn sdr_list_ibm_systemx() {
    let out = with(sdr::parse, fixture!("sdr-list-ibm-systemx-telegraf-v1.txt"));
    assert_eq!(out.warnings, []);
    assert_eq!(
        value(&out, "ipmi_fan_speed_rpm", "Fan 1A Tach"),
        Some(2610.0)
    );
    assert_eq!(value(&out, "ipmi_voltage_volts", "Planar 12V"), Some(12.04));
    assert_eq!(value(&out, "ipmi_power_watts", "Avg Power"), Some(210.0));
    // `80 feet` has a status but no chartable unit.
    assert_eq!(status(&out, "Altitude"), Some(0.0));
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("sensor") != Some("Altitude") || s.name == "ipmi_sensor_status")
    );
}

#[test]
fn sdr_list_with_unable_to_send_command_lines() {
    let out = with(
        sdr::parse,
        fixture!("sdr-list-with-unable-to-send-command-errors.txt"),
    );
    assert_eq!(
        out.warnings,
        [],
        "error lines between readings are skipped, the readings kept"
    );
    assert_eq!(value(&out, "ipmi_voltage_volts", "Planar 5V"), Some(4.9));
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", "Ambient Temp"),
        Some(20.0)
    );
    assert_eq!(status(&out, "ECC Corr Err"), Some(4.0));
}

#[test]
fn sdr_type_csv_with_entities() {
    let out = with(sdr::parse, fixture!("sdr-type-power-supply-csv.txt"));
    assert_eq!(out.warnings, []);
    // Two sensors named `Status`, told apart by their entity.
    let statuses: Vec<_> = out
        .samples
        .iter()
        .filter(|s| s.labels.get("sensor") == Some("Status"))
        .map(|s| s.labels.get("entity").unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["10.1", "10.2"]);
    assert_eq!(status(&out, "PS Redundancy"), Some(0.0));
}

#[test]
fn sdr_verbose_intel() {
    let fan = with(sdr::parse, fixture!("sdr-v-type-fan-intel.txt"));
    assert_eq!(
        value(&fan, "ipmi_fan_speed_rpm", "System Fan 1"),
        Some(4704.0)
    );
    let f1 = fan
        .samples
        .iter()
        .find(|s| s.labels.get("sensor") == Some("System Fan 1"))
        .unwrap();
    assert_eq!(f1.labels.get("entity"), Some("29.1"));
    let volts = with(sdr::parse, fixture!("sdr-v-type-voltage-intel.txt"));
    assert_eq!(
        value(&volts, "ipmi_voltage_volts", "BB +12.0V"),
        Some(11.831)
    );
    let temps = with(sdr::parse, fixture!("sdr-v-type-temperature-intel.txt"));
    assert_eq!(
        value(&temps, "ipmi_temperature_celsius", "BB P1 VR Temp"),
        Some(25.0)
    );
    assert_eq!(
        value(&temps, "ipmi_temperature_celsius", "Front Panel Temp"),
        Some(23.0)
    );
    // The discrete `SSB Therm Trip` has neither a reading nor a threshold status.
    assert!(
        temps
            .samples
            .iter()
            .all(|s| s.labels.get("sensor") != Some("SSB Therm Trip"))
    );
}

#[test]
fn sensor_supermicro_and_hpe() {
    let sm25 = with(sensor::parse, fixture!("sensor-supermicro-25-sensors.txt"));
    assert_eq!(sm25.warnings, []);
    assert_eq!(
        value(&sm25, "ipmi_temperature_celsius", "CPU Temp"),
        Some(52.0)
    );
    assert_eq!(status(&sm25, "DIMMA2 Temp"), Some(4.0));
    assert_eq!(
        value(&sm25, "ipmi_temperature_celsius", "DIMMA2 Temp"),
        None
    );
    let sm31 = with(sensor::parse, fixture!("sensor-supermicro-31-sensors.txt"));
    assert_eq!(value(&sm31, "ipmi_fan_speed_rpm", "FAN1"), Some(13200.0));
    assert_eq!(value(&sm31, "ipmi_voltage_volts", "12V"), Some(11.937));
    let hpe = with(sensor::parse, fixture!("sensor-hpe-ilo-38-sensors.txt"));
    assert_eq!(hpe.warnings, []);
    assert_eq!(
        value(&hpe, "ipmi_temperature_celsius", "02-CPU 1"),
        Some(40.0)
    );
    assert_eq!(value(&hpe, "ipmi_power_watts", "Power Meter"), Some(160.0));
    // Discrete sensors (`0x0180` state bits) get no status series.
    assert_eq!(status(&hpe, "Fan 1 Presence"), None);
}

#[test]
fn ipmi_sim_captures() {
    let elist = with(
        sdr::parse,
        fixture!("ipmi-sim-openipmi-2.0.33-sdr-elist.txt"),
    );
    assert_eq!(
        value(&elist, "ipmi_temperature_celsius", "CPU1 Temp"),
        Some(45.0)
    );
    assert_eq!(value(&elist, "ipmi_fan_speed_rpm", "FAN1"), Some(4800.0));
    assert_eq!(
        value(&elist, "ipmi_power_watts", "PS1 Input Power"),
        Some(320.0)
    );
    let csv = with(
        sdr::parse,
        fixture!("ipmi-sim-openipmi-2.0.33-sdr-elist-c.txt"),
    );
    assert_eq!(csv.warnings, []);
    assert_eq!(value(&csv, "ipmi_fan_speed_rpm", "FAN2"), Some(4900.0));
    let sensors = with(
        sensor::parse,
        fixture!("ipmi-sim-openipmi-2.0.33-sensor.txt"),
    );
    assert_eq!(
        value(&sensors, "ipmi_power_watts", "PS2 Input Power"),
        Some(308.0)
    );
    let chassis = with(
        chassis::parse,
        fixture!("ipmi-sim-openipmi-2.0.33-chassis-status.txt"),
    );
    let get = |name: &str| {
        chassis
            .samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    };
    assert_eq!(get("ipmi_chassis_power_on"), Some(0.0));
    assert_eq!(get("ipmi_chassis_intrusion"), Some(0.0));
    assert_eq!(
        chassis
            .samples
            .iter()
            .filter(|s| s.name == "ipmi_chassis_fault")
            .count(),
        5
    );
    let dcmi = with(
        dcmi::parse,
        fixture!("ipmi-sim-openipmi-2.0.33-dcmi-unsupported.txt"),
    );
    assert!(dcmi.samples.is_empty());
    assert_eq!(
        dcmi.warnings,
        [ParseError::ToolFailed {
            tool: "ipmitool".into(),
            message: "DCMI request failed because: Invalid command (c1)".into()
        }]
    );
}

#[test]
fn dcmi_power_reading() {
    let out = with(dcmi::parse, fixture!("dcmi-power-reading-telegraf.txt"));
    assert_eq!(out.warnings, []);
    let get = |name: &str| out.samples.iter().find(|s| s.name == name).map(|s| s.value);
    assert_eq!(get("ipmi_dcmi_power_watts"), Some(167.0));
    assert_eq!(get("ipmi_dcmi_power_max_watts"), Some(422.0));
    assert_eq!(get("ipmi_dcmi_power_avg_watts"), Some(156.0));
    let off = with(
        dcmi::parse,
        &fixture!("dcmi-power-reading-telegraf.txt").replace("activated", "deactivated"),
    );
    assert!(off.samples.is_empty());
}

#[test]
fn sel_elist_entries_become_log_lines() {
    let out = with(sel::parse, fixture!("sel-elist-chassis-intrusion-psu.txt"));
    assert_eq!(out.warnings, []);
    assert_eq!(out.logs.len(), 23);
    assert_eq!(
        out.logs[9],
        LogEntry {
            source: "sel".into(),
            ts_ms: Some(1_566_009_117_000), // 2019-08-17T02:31:57Z
            priority: 5,
            unit: Some("Power Supply PS1 Status".into()),
            message: "Power Supply PS1 Status: Failure detected (Deasserted)".into(),
            cursor: Some("a".into()),
        }
    );
    assert_eq!(out.logs[13].message, "Unknown #0xff (Asserted)");
    assert!(
        with(sel::parse, fixture!("sel-elist-empty.txt"))
            .logs
            .is_empty()
    );
    let hpe = with(sel::parse, fixture!("sel-list-hpe-proliant-dl360-ilo2.txt"));
    assert_eq!(hpe.logs.len(), 2);
    assert_eq!(
        hpe.logs[1].message,
        "Memory #0x2b: Correctable ECC logging limit reached (Asserted)"
    );
    assert_eq!(hpe.logs[1].priority, 4);
}

/// ipmitool 1.8.19 (Debian 12) prints two-digit years and its local zone; these lines
/// are its output against OpenIPMI's ipmi_sim in tests/bmc.rs.
#[test]
fn sel_elist_of_ipmitool_1_8_19_reads_two_digit_years_and_only_utc() {
    let text = "   4 |  Pre-Init  |0000018543| Power Supply #0x30 | Failure detected () | Asserted\n   \
                5 | 11/20/26 | 10:00:00 UTC | Temperature CPU2 Temp | Upper Non-critical going high | Asserted | Reading 91 > Threshold 90 degrees C\n   \
                6 | 11/20/26 | 11:00:00 CET | Temperature CPU2 Temp | Upper Non-critical going high | Deasserted | Reading 89 < Threshold 90 degrees C\n";
    let out = with(sel::parse, text);
    assert_eq!(out.warnings, []);
    let times: Vec<Option<i64>> = out.logs.iter().map(|l| l.ts_ms).collect();
    // Pre-Init has no time; 2026-11-20T10:00:00Z; a local zone is not guessed at.
    assert_eq!(times, [None, Some(1_795_168_800_000), None]);
    assert_eq!(
        out.logs[1].message,
        "Temperature CPU2 Temp: Upper Non-critical going high (Asserted)"
    );
}

#[test]
fn sel_cursor_keeps_only_new_entries_and_survives_a_clear() {
    let all = with(sel::parse, fixture!("sel-elist-chassis-intrusion-psu.txt")).logs;
    let (first, cursor) = sel::after_cursor(all.clone(), None);
    assert_eq!((first.len(), cursor.as_deref()), (23, Some("17")));
    let (again, cursor) = sel::after_cursor(all.clone(), Some("17"));
    assert_eq!((again.len(), cursor.as_deref()), (0, Some("17")));
    let (some, _) = sel::after_cursor(all.clone(), Some("14"));
    let ids: Vec<_> = some.iter().map(|e| e.cursor.clone().unwrap()).collect();
    assert_eq!(ids, ["15", "16", "17"]);
    // After `sel clear` the ids restart below the saved one: all entries are new.
    let cleared: Vec<LogEntry> = all.into_iter().take(3).collect();
    let (after_clear, cursor) = sel::after_cursor(cleared, Some("17"));
    assert_eq!((after_clear.len(), cursor.as_deref()), (3, Some("3")));
}

#[test]
fn whole_script_output() {
    let text = format!(
        "\n==dcmon== sdr\n{}\n==dcmon== dcmi\n{}\n==dcmon== chassis\n{}\n==dcmon== sel\n{}\n==dcmon== end\n",
        fixture!("ipmi-sim-openipmi-2.0.33-sdr-elist.txt"),
        fixture!("dcmi-power-reading-telegraf.txt"),
        fixture!("ipmi-sim-openipmi-2.0.33-chassis-status.txt"),
        fixture!("sel-list-hpe-proliant-dl360-ilo2.txt"),
    );
    let out = parse(&text);
    assert_eq!(out.warnings, []);
    assert_eq!(out.absent, None);
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", "CPU2 Temp"),
        Some(47.0)
    );
    assert!(
        out.samples
            .iter()
            .any(|s| s.name == "ipmi_dcmi_power_watts")
    );
    assert!(
        out.samples
            .iter()
            .any(|s| s.name == "ipmi_chassis_power_on")
    );
    assert_eq!(out.logs.len(), 2);
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("path") == Some("ssh")),
        "in-band readings say so, as the bmc probe's say path=\"bmc\""
    );
}

#[test]
fn absent_tool_and_absent_device() {
    let out = parse("\n==dcmon== absent\nipmitool is not installed\n\n==dcmon== end\n");
    assert_eq!(out.absent.as_deref(), Some("ipmitool is not installed"));
    let no_device = "\n==dcmon== sdr\nCould not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: No such file or directory\n==dcmon== end\n";
    let out = parse(no_device);
    assert!(
        out.absent
            .as_deref()
            .unwrap()
            .starts_with("no in-band IPMI device: Could not open device")
    );
    assert!(out.samples.is_empty());
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "([ -~]{0,30}[|,:]?){0,20}(\n[ -~|]{0,60}){0,20}") {
        for p in [sdr::parse, sensor::parse, dcmi::parse, chassis::parse, sel::parse] {
            let out = with(p, &text);
            prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
        }
        let _ = parse(&text);
    }

    #[test]
    fn mutated_fixtures_never_panic(pos in 0usize..6000, byte in any::<u8>()) {
        for text in [fixture!("sensor-hpe-ilo-38-sensors.txt"), fixture!("sdr-v-type-fan-intel.txt"), fixture!("sel-elist-chassis-intrusion-psu.txt")] {
            let mut bytes = text.as_bytes().to_vec();
            let at = pos % bytes.len();
            bytes[at] = byte;
            let text = String::from_utf8_lossy(&bytes);
            for p in [sdr::parse, sensor::parse, sel::parse] {
                let _ = with(p, &text);
            }
        }
    }
}
