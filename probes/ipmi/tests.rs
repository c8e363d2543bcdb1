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
    // `80 feet` has no named series: kept as `ipmi_reading` with its unit (issue 17).
    assert_eq!(status(&out, "Altitude"), Some(0.0));
    let altitude = out
        .samples
        .iter()
        .find(|s| s.name == "ipmi_reading")
        .unwrap();
    assert_eq!(altitude.labels.get("sensor"), Some("Altitude"));
    assert_eq!(altitude.labels.get("unit"), Some("feet"));
    assert_eq!(altitude.value, 80.0);
    // `0x00` readings of discrete sensors name no state.
    assert!(
        !out.samples
            .iter()
            .any(|s| s.name.starts_with("ipmi_discrete"))
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
    // A discrete sensor whose name does not tell its type gets its bits, no status.
    assert_eq!(status(&hpe, "Fan 1 Presence"), None);
}

fn state(out: &ProbeOutput, sensor: &str, state: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| {
            s.name == "ipmi_discrete_state"
                && s.labels.get("sensor") == Some(sensor)
                && s.labels.get("state") == Some(state)
        })
        .map(|s| s.value)
}

/// Quirk 1: `ipmitool sensor` prints discrete sensors as `0x0 | discrete | 0xAABB`:
/// their state bits become series, named where the sensor's name tells its type.
#[test]
fn sensor_discrete_rows_give_their_states() {
    let hpe = with(sensor::parse, fixture!("sensor-hpe-ilo-38-sensors.txt"));
    // `Power Supply 1 | 0x0 | discrete | 0x0180`: bit 0, presence detected.
    assert_eq!(
        value(&hpe, "ipmi_discrete_state_mask", "Power Supply 1"),
        Some(1.0)
    );
    assert_eq!(
        state(&hpe, "Power Supply 1", "Presence detected"),
        Some(1.0)
    );
    assert_eq!(state(&hpe, "Power Supply 1", "Failure detected"), Some(0.0));
    assert_eq!(status(&hpe, "Power Supply 1"), Some(0.0));
    // `Power Supplies | 0x0180`: a redundancy sensor, fully redundant.
    assert_eq!(state(&hpe, "Power Supplies", "Fully Redundant"), Some(1.0));
    assert_eq!(state(&hpe, "Power Supplies", "Redundancy Lost"), Some(0.0));
    // `Memory Status | 0x4080`: bit 6 of the memory table, presence detected.
    assert_eq!(
        value(&hpe, "ipmi_discrete_state_mask", "Memory Status"),
        Some(64.0)
    );
    assert_eq!(state(&hpe, "Memory Status", "Presence Detected"), Some(1.0));
    // `Fan 1 Presence | 0x0180`: no table from the name, the bits alone.
    assert_eq!(
        value(&hpe, "ipmi_discrete_state_mask", "Fan 1 Presence"),
        None
    );
    // `Intrusion | na | discrete | na`: no reading.
    assert_eq!(status(&hpe, "Intrusion"), Some(4.0));
    assert_eq!(state(&hpe, "Intrusion", "General Chassis intrusion"), None);

    let sm = with(sensor::parse, fixture!("sensor-supermicro-25-sensors.txt"));
    assert_eq!(
        state(&sm, "Chassis Intru", "General Chassis intrusion"),
        Some(0.0)
    );
    assert_eq!(status(&sm, "Chassis Intru"), Some(0.0));

    // The same rows with trouble asserted, as a Supermicro BMC prints them: PSU
    // presence + failure (0x03), then AC lost (bit 3 = 0x08); the chassis opened.
    let trouble = "PS1 Status       | 0x1        | discrete   | 0x0300| na        | na        | na        | na        | na        | na        \n\
                   PS2 Status       | 0x1        | discrete   | 0x0900| na        | na        | na        | na        | na        | na        \n\
                   Chassis Intru    | 0x1        | discrete   | 0x0100| na        | na        | na        | na        | na        | na        \n\
                   PS Redundancy    | 0x1        | discrete   | 0x0280| na        | na        | na        | na        | na        | na        \n";
    let out = with(sensor::parse, trouble);
    assert_eq!(out.warnings, []);
    assert_eq!(state(&out, "PS1 Status", "Presence detected"), Some(1.0));
    assert_eq!(state(&out, "PS1 Status", "Failure detected"), Some(1.0));
    assert_eq!(
        status(&out, "PS1 Status"),
        Some(2.0),
        "a failed PSU is critical"
    );
    assert_eq!(state(&out, "PS2 Status", "Power Supply AC lost"), Some(1.0));
    assert_eq!(status(&out, "PS2 Status"), Some(2.0));
    assert_eq!(
        state(&out, "Chassis Intru", "General Chassis intrusion"),
        Some(1.0)
    );
    assert_eq!(
        status(&out, "Chassis Intru"),
        Some(1.0),
        "intrusion: a warning"
    );
    assert_eq!(state(&out, "PS Redundancy", "Redundancy Lost"), Some(1.0));
    assert_eq!(status(&out, "PS Redundancy"), Some(2.0));
    // An unreadable state word is a warning with its line, not a silent skip.
    let bad = with(
        sensor::parse,
        "PS1 Status       | 0x1        | discrete   | 0xZZ  | na\nFAN1 | 4x00 | RPM | ok | na\n",
    );
    assert_eq!(bad.warnings.len(), 2, "{:?}", bad.warnings);
    assert!(bad.warnings[0].to_string().contains("line 1"));
    assert!(bad.warnings[1].to_string().contains("line 2"));
}

/// Quirk 1, `sdr elist`: the asserted states are printed by name after the value.
#[test]
fn sdr_elist_discrete_states_by_name() {
    let out = with(
        sdr::parse,
        fixture!("sdr-elist-full-hpe-proliant-dl360-ilo2.txt"),
    );
    // `Power Supply 1 | 06h | ok | 10.1 | 0 Watts, Presence detected, Failure detected`
    assert_eq!(value(&out, "ipmi_power_watts", "Power Supply 1"), Some(0.0));
    assert_eq!(state(&out, "Power Supply 1", "Failure detected"), Some(1.0));
    assert_eq!(
        state(&out, "Power Supply 1", "Presence detected"),
        Some(1.0)
    );
    assert_eq!(
        state(&out, "Power Supply 1", "Power Supply AC lost"),
        Some(0.0)
    );
    assert_eq!(
        value(&out, "ipmi_discrete_state_mask", "Power Supply 1"),
        Some(3.0)
    );
    assert_eq!(
        status(&out, "Power Supply 1"),
        Some(2.0),
        "`ok` column, failed PSU"
    );
    assert_eq!(status(&out, "Power Supply 2"), Some(0.0));
    // `Power Supplies | Non-Redundant: Sufficient from Redundant`
    assert_eq!(
        state(
            &out,
            "Power Supplies",
            "Non-Redundant: Sufficient from Redundant"
        ),
        Some(1.0)
    );
    assert_eq!(status(&out, "Power Supplies"), Some(1.0));
    // `VRM 1 | Device Present`: generic presence.
    assert_eq!(state(&out, "VRM 1", "Device Present"), Some(1.0));
    // `Temp 4 | ns | 8.1 | Disabled`: no reading; `Disabled` is no processor state here.
    assert_eq!(status(&out, "Temp 4"), Some(4.0));
    assert_eq!(value(&out, "ipmi_discrete_state_mask", "Temp 4"), None);
    // A state holding a comma stays whole.
    let ac = with(
        sdr::parse,
        "PS2 Status       | C9h | ok  | 10.2 | Presence detected, AC out-of-range, but present\n",
    );
    assert_eq!(
        state(&ac, "PS2 Status", "AC out-of-range, but present"),
        Some(1.0)
    );
    assert_eq!(status(&ac, "PS2 Status"), Some(1.0));
}

/// Quirk 1, `sdr -v`: `Sensor Type (Discrete)` names the table, `States Asserted` the
/// states (ipmitool's `print_sensor_discrete` layout).
#[test]
fn sdr_verbose_discrete_states() {
    let text = "Sensor ID              : PS1 Status (0xc8)\n \
                Entity ID             : 10.1 (Power Supply)\n \
                Sensor Type (Discrete): Power Supply (0x08)\n \
                Sensor Reading        : 0h\n \
                Event Message Control : Per-threshold\n \
                States Asserted       : Power Supply\n                         \
                [Presence detected]\n                         \
                [Failure detected]\n \
                Assertions Enabled    : Power Supply\n                         \
                [Presence detected]\n                         \
                [Power Supply AC lost]\n\n\
                Sensor ID              : Intrusion (0x73)\n \
                Entity ID             : 7.1 (System Board)\n \
                Sensor Type (Discrete): Physical Security (0x05)\n \
                Sensor Reading        : 0h\n \
                Event Message Control : Per-threshold\n \
                OEM                   : 0\n";
    let out = with(sdr::parse, text);
    assert_eq!(out.warnings, []);
    assert_eq!(state(&out, "PS1 Status", "Failure detected"), Some(1.0));
    assert_eq!(
        state(&out, "PS1 Status", "Power Supply AC lost"),
        Some(0.0),
        "enabled, not asserted"
    );
    assert_eq!(status(&out, "PS1 Status"), Some(2.0));
    assert_eq!(
        state(&out, "Intrusion", "General Chassis intrusion"),
        Some(0.0)
    );
    assert_eq!(status(&out, "Intrusion"), Some(0.0));
}

/// Quirk 2: one name on two sensors keeps both readings.
#[test]
fn a_name_used_twice_keeps_both_sensors() {
    // Dell `ipmitool sensor`: two CPU sensors both called `Temp`, and a discrete row of
    // the same name before them.
    let text = "Temp             | 0x0        | discrete   | 0x0080| na        | na        | na        | na        | na        | na        \n\
                Temp             | 40.000     | degrees C  | ok    | na        | 3.000     | 8.000     | 85.000    | 90.000    | na        \n\
                Temp             | 38.000     | degrees C  | ok    | na        | 3.000     | 8.000     | 85.000    | 90.000    | na        \n";
    let out = with(sensor::parse, text);
    assert_eq!(out.warnings, []);
    let temps: Vec<(Option<&str>, f64)> = out
        .samples
        .iter()
        .filter(|s| s.name == "ipmi_temperature_celsius")
        .map(|s| (s.labels.get("instance"), s.value))
        .collect();
    assert_eq!(temps, [(Some("2"), 40.0), (Some("3"), 38.0)]);
    let statuses = out
        .samples
        .iter()
        .filter(|s| s.name == "ipmi_sensor_status")
        .count();
    assert_eq!(
        statuses, 2,
        "the discrete row has no status; both analog ones do"
    );
    // `sdr elist` prints entities: the same name on two entities needs no instance.
    let elist = with(
        sdr::parse,
        "Temp             | 0Eh | ok  |  3.1 | 40 degrees C\nTemp             | 0Fh | ok  |  3.2 | 38 degrees C\nTemp             | 10h | ok  |  3.2 | 39 degrees C\n",
    );
    let labels: Vec<String> = elist
        .samples
        .iter()
        .filter(|s| s.name == "ipmi_temperature_celsius")
        .map(|s| format!("{}{}", s.value, s.labels))
        .collect();
    assert_eq!(
        labels,
        [
            "40{entity=\"3.1\",sensor=\"Temp\"}",
            "38{entity=\"3.2\",sensor=\"Temp\"}",
            "39{entity=\"3.2\",instance=\"2\",sensor=\"Temp\"}",
        ]
    );
    // No two samples of any output share name and labels.
    for o in [&out, &elist] {
        crate::test_support::assert_series_unique(o);
    }
}

/// Quirk 3: readings whose unit is `unspecified` keep their number.
#[test]
fn unspecified_units_keep_their_value() {
    let text = "Sensor ID              : PS1 Curr Out % (0x5c)\n \
                Entity ID             : 10.1 (Power Supply)\n \
                Sensor Type (Threshold)  : Current (0x03)\n \
                Sensor Reading        : 48 (+/- 0) unspecified\n \
                Status                : ok\n\n\
                Sensor ID              : Airflow (0x5d)\n \
                Entity ID             : 7.1 (System Board)\n \
                Sensor Type (Threshold)  : Other Units-based Sensor (0x0b)\n \
                Sensor Reading        : 26.5 (+/- 0) CFM\n \
                Status                : ok\n\n\
                Sensor ID              : PS2 Curr Out % (0x5e)\n \
                Entity ID             : 10.2 (Power Supply)\n \
                Sensor Type (Threshold)  : Current (0x03)\n \
                Sensor Reading        : No Reading\n \
                Status                : ns\n\n\
                Sensor ID              : Broken (0x5f)\n \
                Entity ID             : 10.2 (Power Supply)\n \
                Sensor Reading        : 4x8 (+/- 0) unspecified\n";
    let out = with(sdr::parse, text);
    assert_eq!(value(&out, "ipmi_percent", "PS1 Curr Out %"), Some(48.0));
    let airflow = out
        .samples
        .iter()
        .find(|s| s.name == "ipmi_reading")
        .unwrap();
    assert_eq!(airflow.labels.get("unit"), Some("cfm"));
    assert_eq!(airflow.value, 26.5);
    assert_eq!(status(&out, "PS2 Curr Out %"), Some(4.0));
    // Only the unreadable number is a warning, with its line.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].to_string().contains("line 21"),
        "{}",
        out.warnings[0]
    );
    // A real capture: Intel board's `PS1 Curr Out % (0x58)` reading `11 (+/- 0) unspecified`.
    let intel = with(sdr::parse, fixture!("sdr-v-type-current-intel.txt"));
    assert_eq!(intel.warnings, []);
    assert_eq!(value(&intel, "ipmi_percent", "PS1 Curr Out %"), Some(11.0));
    assert_eq!(value(&intel, "ipmi_percent", "PS2 Curr Out %"), Some(0.0));
    assert_eq!(status(&intel, "PS1 Curr Out %"), Some(0.0));
    // `ipmitool sensor`: HPE's `CPU Utilization | 0.000 | unspecified`.
    let hpe = with(sensor::parse, fixture!("sensor-hpe-ilo-38-sensors.txt"));
    let cpu = hpe
        .samples
        .iter()
        .find(|s| s.name == "ipmi_reading" && s.labels.get("sensor") == Some("CPU Utilization"))
        .unwrap();
    assert_eq!(
        (cpu.value, cpu.labels.get("unit")),
        (0.0, Some("unspecified"))
    );
}

/// Quirk 7: a SEL event's priority comes from its sensor type and event.
#[test]
fn sel_priority_follows_the_event_tables() {
    let out = with(sel::parse, fixture!("sel-elist-chassis-intrusion-psu.txt"));
    let prio = |id: &str| {
        out.logs
            .iter()
            .find(|l| l.cursor.as_deref() == Some(id))
            .map(|l| l.priority)
    };
    assert_eq!(prio("1"), Some(4), "chassis intrusion: warning");
    assert_eq!(prio("5"), Some(5), "OS installation started: notice");
    assert_eq!(prio("9"), Some(2), "PSU failure: critical");
    assert_eq!(prio("a"), Some(5), "the failure ending: notice");
    assert_eq!(prio("e"), Some(4), "unknown: warning");
    let text = "  20 | 11/20/26 | 10:00:00 UTC | Memory #0x53 | Uncorrectable ECC | Asserted\n  \
                21 | 11/20/26 | 10:00:01 UTC | Watchdog2 #0x81 | Hard reset | Asserted\n  \
                22 | 11/20/26 | 10:00:02 UTC | Temperature CPU1 Temp | Upper Critical going high | Asserted | Reading 96 > Threshold 95 degrees C\n  \
                23 | 11/20/26 | 10:00:03 UTC | System ACPI Power State #0x1 | S5/G2: soft-off | Asserted\n  \
                24 | 11/20/26 | 10:00:04 UTC | Power Unit #0x01 | Power off/down | Asserted\n  \
                25 | 11/20/26 | 10:00:05 UTC | Power Supply PS2 Status | Presence detected | Deasserted\n  \
                26 | 11/20/26 | 10:00:06 UTC | Memory DIMM_B1 | Correctable ECC | Asserted\n  \
                27 | 11/20/26 | 10:00:07 UTC | Temperature CPU1 Temp | Upper Non-critical going high | Asserted\n  \
                28 | 11/20/26 | 10:00:08 UTC | Power Supply #0x51 | Power Supply AC lost | Asserted\n";
    let out = with(sel::parse, text);
    assert_eq!(out.warnings, []);
    let priorities: Vec<u8> = out.logs.iter().map(|l| l.priority).collect();
    assert_eq!(priorities, [2, 2, 2, 5, 5, 4, 4, 4, 2]);
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
            labels: Default::default(),
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
