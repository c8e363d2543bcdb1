//! Redfish parser tests: exact values from DMTF's mockup and an HPE iLO capture, the
//! quirks (absent sensors read as 0, thresholds a vendor omits, names repeated), and
//! garbled input.

use super::*;
use crate::output::LogEntry;
use crate::test_support::{assert_series_unique, fact, value};
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/redfish/", $name))
    };
}

fn read(texts: &[&str]) -> ProbeOutput {
    let mut r = Reader::default();
    for t in texts {
        r.read_text("test", t);
    }
    r.out
}

fn sensor(name: &str) -> Vec<(&'static str, &str)> {
    vec![("sensor", name), ("path", "redfish")]
}

fn threshold(out: &ProbeOutput, name: &str, level: &str) -> Option<f64> {
    value(
        out,
        "ipmi_sensor_threshold",
        &[("sensor", name), ("threshold", level)],
    )
}

#[test]
fn thermal_gives_every_temperature_and_fan_with_the_thresholds_given() {
    let out = read(&[fixture!("dmtf-mockup-public-rackmount1-thermal.json")]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_series_unique(&out);
    let t = |name| value(&out, "ipmi_temperature_celsius", &sensor(name));
    assert_eq!(t("CPU1 Temp"), Some(41.0));
    assert_eq!(t("Chassis Intake Temp"), Some(25.0));
    // Disabled: no reading, whatever thresholds it lists.
    assert_eq!(t("CPU2 Temp"), None);
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("CPU2 Temp")),
        Some(4.0)
    );
    assert_eq!(threshold(&out, "CPU2 Temp", "upper_critical"), None);
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("CPU1 Temp")),
        Some(0.0)
    );
    assert_eq!(
        threshold(&out, "CPU1 Temp", "upper_non_critical"),
        Some(42.0)
    );
    assert_eq!(threshold(&out, "CPU1 Temp", "upper_critical"), Some(45.0));
    assert_eq!(
        threshold(&out, "CPU1 Temp", "upper_non_recoverable"),
        Some(48.0)
    );
    // The CPU has no lower thresholds in the mockup: none stored, never a 0.
    assert_eq!(threshold(&out, "CPU1 Temp", "lower_critical"), None);
    assert_eq!(
        threshold(&out, "Chassis Intake Temp", "lower_non_recoverable"),
        Some(0.0)
    );
    assert_eq!(
        threshold(&out, "Chassis Intake Temp", "lower_critical"),
        Some(5.0)
    );
    let labels = &out
        .samples
        .iter()
        .find(|s| s.name == "ipmi_temperature_celsius")
        .unwrap()
        .labels;
    assert_eq!(labels.get("entity"), Some("CPU"));
    let rpm = |name| value(&out, "ipmi_fan_speed_rpm", &sensor(name));
    assert_eq!(rpm("BaseBoard System Fan"), Some(2100.0));
    assert_eq!(rpm("BaseBoard System Fan Backup"), Some(2050.0));
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("BaseBoard System Fans")),
        Some(0.0)
    );
    // Every sample is labelled with the path it came by.
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("path") == Some("redfish"))
    );
}

#[test]
fn power_gives_system_draw_voltages_and_psus() {
    let out = read(&[fixture!("dmtf-mockup-public-rackmount1-power.json")]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_series_unique(&out);
    let path = [("path", "redfish")];
    assert_eq!(value(&out, "ipmi_dcmi_power_watts", &path), Some(344.0));
    assert_eq!(value(&out, "ipmi_dcmi_power_min_watts", &path), Some(271.0));
    assert_eq!(value(&out, "ipmi_dcmi_power_max_watts", &path), Some(489.0));
    assert_eq!(value(&out, "ipmi_dcmi_power_avg_watts", &path), Some(319.0));
    assert_eq!(
        value(&out, "ipmi_voltage_volts", &sensor("VRM1 Voltage")),
        Some(12.0)
    );
    assert_eq!(threshold(&out, "VRM2 Voltage", "lower_critical"), Some(4.5));
    assert_eq!(
        threshold(&out, "VRM2 Voltage", "upper_non_recoverable"),
        None
    );
    // The PSU's health is Warning: status 1, its output and line voltage kept.
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("Power Supply Bay")),
        Some(1.0)
    );
    assert_eq!(
        value(
            &out,
            "ipmi_power_watts",
            &sensor("Power Supply Bay output power")
        ),
        Some(325.0)
    );
    assert_eq!(
        value(
            &out,
            "ipmi_voltage_volts",
            &sensor("Power Supply Bay input voltage")
        ),
        Some(120.0)
    );
}

#[test]
fn the_newer_subsystems_read_inline_members_and_name_metrics_after_their_psu() {
    // What the client builds when it follows links: the PSU with its Metrics inline.
    let mut psu: serde_json::Value = serde_json::from_str(fixture!(
        "dmtf-mockup-public-rackmount1-powersupply-bay1.json"
    ))
    .unwrap();
    psu["Metrics"] = serde_json::from_str(fixture!(
        "dmtf-mockup-public-rackmount1-powersupply-bay1-metrics.json"
    ))
    .unwrap();
    let mut sub: serde_json::Value = serde_json::from_str(fixture!(
        "dmtf-mockup-public-rackmount1-powersubsystem.json"
    ))
    .unwrap();
    sub["PowerSupplies"] = serde_json::json!({
        "@odata.type": "#PowerSupplyCollection.PowerSupplyCollection",
        "Members": [
            psu,
            serde_json::from_str::<serde_json::Value>(fixture!(
                "dmtf-mockup-public-rackmount1-powersupply-bay2-absent.json"
            ))
            .unwrap(),
        ],
    });
    let out = read(&[&sub.to_string()]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_series_unique(&out);
    let bay1 = "Power Supply Bay 1";
    assert_eq!(value(&out, "ipmi_sensor_status", &sensor(bay1)), Some(1.0));
    assert_eq!(
        value(
            &out,
            "ipmi_power_watts",
            &sensor("Power Supply Bay 1 input power")
        ),
        Some(937.4)
    );
    assert_eq!(
        value(
            &out,
            "ipmi_current_amperes",
            &sensor("Power Supply Bay 1 input current")
        ),
        Some(5.19)
    );
    // An empty bay: no reading, and nothing of its metrics.
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("Power Supply Bay 2")),
        Some(4.0)
    );
    // The redundancy set is offline: no reading rather than a false OK.
    assert_eq!(
        value(
            &out,
            "ipmi_sensor_status",
            &sensor("Power supply redundancy 1")
        ),
        Some(4.0)
    );
}

#[test]
fn fans_of_the_thermal_subsystem_keep_rpm_and_percent() {
    let out = read(&[
        fixture!("dmtf-mockup-public-rackmount1-thermalsubsystem.json"),
        fixture!("dmtf-mockup-public-rackmount1-fan-bay1.json"),
    ]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_series_unique(&out);
    assert_eq!(
        value(&out, "ipmi_fan_speed_rpm", &sensor("Fan Bay 1")),
        Some(2200.0)
    );
    assert_eq!(
        value(&out, "ipmi_percent", &sensor("Fan Bay 1")),
        Some(45.0)
    );
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("Fan redundancy 1")),
        Some(0.0)
    );
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("Fan redundancy 2")),
        Some(4.0)
    );
}

#[test]
fn sensors_of_the_newer_schema_with_nested_thresholds_and_other_units() {
    let out = read(&[
        fixture!("dmtf-mockup-public-rackmount1-sensor-cpu1temp.json"),
        fixture!("dmtf-mockup-public-rackmount1-sensor-ps1frequency.json"),
    ]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let cpu = "CPU #1 Temperature";
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor(cpu)),
        Some(37.0)
    );
    assert_eq!(threshold(&out, cpu, "upper_non_critical"), Some(42.0));
    assert_eq!(threshold(&out, cpu, "upper_non_recoverable"), Some(50.0));
    let hz = "Power Supply #1 Frequency";
    assert_eq!(
        value(&out, "ipmi_reading", &[("sensor", hz), ("unit", "Hz")]),
        Some(60.1)
    );
    assert_eq!(threshold(&out, hz, "lower_critical"), Some(58.75));
    assert_eq!(threshold(&out, hz, "upper_non_recoverable"), None);
}

#[test]
fn system_manager_chassis_and_environment() {
    let out = read(&[
        fixture!("dmtf-mockup-public-rackmount1-system.json"),
        fixture!("dmtf-mockup-public-rackmount1-manager.json"),
        fixture!("dmtf-mockup-public-rackmount1-chassis.json"),
        fixture!("dmtf-mockup-public-rackmount1-environmentmetrics.json"),
    ]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(value(&out, "ipmi_chassis_power_on", &[]), Some(1.0));
    assert_eq!(
        value(
            &out,
            "redfish_health",
            &[("resource", "system"), ("name", "437XR1138R2")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&out, "redfish_health", &[("resource", "manager")]),
        Some(0.0)
    );
    assert_eq!(
        value(&out, "redfish_health", &[("resource", "chassis")]),
        Some(0.0)
    );
    assert_eq!(value(&out, "ipmi_dcmi_power_watts", &[]), Some(374.0));
    assert_eq!(fact(&out, "bmc_firmware"), Some("1.45.455b66-rev4"));
    assert_eq!(fact(&out, "bios_version"), Some("P79 v1.45 (12/06/2017)"));
    assert_eq!(fact(&out, "system_model"), Some("Contoso 3500"));
}

#[test]
fn hpe_ilo_percent_fans_and_missing_thresholds() {
    let out = read(&[fixture!("hpe-ilo-thermal-gofish.json")]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(value(&out, "ipmi_percent", &sensor("Fan 1")), Some(28.0));
    let inlet = "01-Inlet Ambient";
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor(inlet)),
        Some(25.0)
    );
    assert_eq!(threshold(&out, inlet, "upper_critical"), Some(42.0));
    assert_eq!(threshold(&out, inlet, "upper_non_recoverable"), Some(47.0));
    // iLO gives no non-critical threshold (and `UpperThresholdUser: 0` is not one).
    assert_eq!(threshold(&out, inlet, "upper_non_critical"), None);
    assert_eq!(
        out.samples
            .iter()
            .filter(|s| s.name == "ipmi_sensor_threshold")
            .count(),
        2
    );
}

/// iLO 5 lists an empty DIMM slot's sensor as `Absent` with `ReadingCelsius: 0` and a
/// null threshold (as seen in akaliwod/iserver's doc/redfish/TemplateHpThermal.md).
#[test]
fn an_absent_sensor_reading_zero_is_no_reading_and_null_thresholds_are_none() {
    let text = r##"{"@odata.type": "#Thermal.v1_1_0.Thermal", "@odata.id": "/redfish/v1/Chassis/1/Thermal/",
        "Temperatures": [
          {"Name": "04-P1 DIMM 1-8", "MemberId": "3", "PhysicalContext": "SystemBoard",
           "ReadingCelsius": 0, "SensorNumber": 4, "Status": {"State": "Absent"},
           "UpperThresholdCritical": null, "UpperThresholdFatal": null},
          {"Name": "24-P/S 1", "MemberId": "23", "PhysicalContext": "PowerSupply",
           "ReadingCelsius": 40, "Status": {"State": "Enabled", "Health": "OK"},
           "UpperThresholdCritical": null}
        ]}"##;
    let out = read(&[text]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor("04-P1 DIMM 1-8")),
        None
    );
    assert_eq!(
        value(&out, "ipmi_sensor_status", &sensor("04-P1 DIMM 1-8")),
        Some(4.0)
    );
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor("24-P/S 1")),
        Some(40.0)
    );
    assert!(
        !out.samples
            .iter()
            .any(|s| s.name == "ipmi_sensor_threshold")
    );
}

#[test]
fn status_is_the_worse_of_health_and_the_thresholds_crossed() {
    let temp = |reading: &str, health: &str| {
        let text = format!(
            r##"{{"@odata.type": "#Thermal.v1_7_1.Thermal", "Temperatures": [{{"Name": "T",
            "ReadingCelsius": {reading}, "Status": {{"State": "Enabled"{health}}},
            "UpperThresholdNonCritical": 42, "UpperThresholdCritical": 45,
            "UpperThresholdFatal": 48, "LowerThresholdCritical": 5}}]}}"##
        );
        let out = read(&[&text]);
        value(&out, "ipmi_sensor_status", &sensor("T")).unwrap()
    };
    assert_eq!(temp("41", ""), 0.0);
    assert_eq!(temp("42", ""), 1.0);
    assert_eq!(temp("46.5", ""), 2.0);
    assert_eq!(temp("48", ""), 3.0);
    assert_eq!(temp("5", ""), 2.0);
    assert_eq!(temp("-273", ""), 2.0);
    assert_eq!(temp("30", r##", "Health": "Critical""##), 2.0);
    assert_eq!(temp("43", r##", "Health": "OK""##), 1.0);
    // A reading that is not there is no reading, even with the health OK.
    assert_eq!(temp("null", r##", "Health": "OK""##), 4.0);
}

#[test]
fn two_sensors_of_one_name_stay_apart() {
    let text = r##"{"@odata.type": "#Thermal.v1_7_1.Thermal", "Temperatures": [
        {"Name": "Temp", "ReadingCelsius": 30}, {"Name": "Temp", "ReadingCelsius": 31}]}"##;
    let out = read(&[text]);
    assert_series_unique(&out);
    assert_eq!(
        value(
            &out,
            "ipmi_temperature_celsius",
            &[("sensor", "Temp"), ("instance", "2")]
        ),
        Some(31.0)
    );
}

#[test]
fn what_cannot_be_read_is_a_warning_naming_the_resource_and_property() {
    let text = r##"{"@odata.type": "#Thermal.v1_7_1.Thermal", "@odata.id": "/redfish/v1/Chassis/1/Thermal",
        "Temperatures": [{"@odata.id": "/redfish/v1/Chassis/1/Thermal#/Temperatures/0", "Name": "T",
        "ReadingCelsius": "41 C", "Status": {"State": "Enabled", "Health": "Fine"}}],
        "Fans": [{"Name": "F", "Reading": 10, "ReadingUnits": "Furlongs"}]}"##;
    let out = read(&[text]);
    let shown: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "/redfish/v1/Chassis/1/Thermal#/Temperatures/0 ReadingCelsius: \"41 C\" is not a number",
            "/redfish/v1/Chassis/1/Thermal#/Temperatures/0 Status/Health: unknown health `Fine`",
            "/redfish/v1/Chassis/1/Thermal#/Fans/0 ReadingUnits: unknown fan unit `Furlongs`",
        ]
        .map(String::from)
    );
    assert!(out.partly_misread());
    // Not JSON at all: where it broke.
    let out = parse("{\"@odata.type\": \"#Thermal.v1_7_1.Thermal\",\n  \"Fans\": [\n");
    assert!(
        out.warnings[0]
            .to_string()
            .starts_with("input: not JSON (line 3, column 0)"),
        "{}",
        out.warnings[0]
    );
    let out = parse("{\"Name\": \"no type\"}");
    assert_eq!(
        out.warnings[0].to_string(),
        "input: no @odata.type: not a Redfish resource"
    );
}

#[test]
fn extreme_numbers_are_kept_or_dropped_never_wrapped() {
    let text = r##"{"@odata.type": "#Thermal.v1_7_1.Thermal", "Temperatures": [
        {"Name": "Big", "ReadingCelsius": 1e308, "UpperThresholdCritical": -1e308},
        {"Name": "Int", "ReadingCelsius": 18446744073709551615}]}"##;
    let out = read(&[text]);
    assert!(out.samples.iter().all(|s| s.value.is_finite()));
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor("Big")),
        Some(1e308)
    );
    assert_eq!(
        value(&out, "ipmi_temperature_celsius", &sensor("Int")),
        Some(18446744073709551615.0)
    ); // Past f64: serde_json refuses the document, which is a warning, not a panic.
    let out = parse(
        r##"{"@odata.type": "#Thermal.v1_7_1.Thermal", "Temperatures": [{"Name": "Huge", "ReadingCelsius": 1e999}]}"##,
    );
    assert!(out.samples.is_empty());
    assert!(
        out.warnings[0].to_string().contains("number out of range"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn firmware_inventory_members_become_facts_without_rollback_copies() {
    let bmc: serde_json::Value =
        serde_json::from_str(fixture!("dmtf-mockup-public-rackmount1-firmware-bmc.json")).unwrap();
    let mut previous = bmc.clone();
    previous["Id"] = "Previous-BMC".into();
    previous["Version"] = "1.40".into();
    let collection = serde_json::json!({
        "@odata.type": "#SoftwareInventoryCollection.SoftwareInventoryCollection",
        "Members": [previous, bmc],
    });
    let out = read(&[&collection.to_string()]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(
        out.facts
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect::<Vec<_>>(),
        [("firmware Contoso BMC Firmware", "1.45.455b66-rev4")]
    );
}

#[test]
fn log_entries_become_log_lines_new_once_per_service() {
    let out = read(&[
        fixture!("dmtf-mockup-public-rackmount1-system-log-entries.json"),
        fixture!("dmtf-mockup-public-rackmount1-manager-log-entries.json"),
    ]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(out.logs.len(), 3);
    let first = &out.logs[0];
    assert_eq!(first.source, "redfish");
    assert_eq!(first.priority, 2);
    assert_eq!(first.ts_ms, Some(1_331_131_440_000)); // 2012-03-07T14:44:00Z
    assert_eq!(first.unit.as_deref(), Some("Temperature"));
    assert_eq!(
        first.message,
        "Temperature threshold exceeded (Upper Critical - going high, 0x592A28)"
    );
    assert_eq!(
        out.logs[2].message,
        "System May be Melting (Event.1.0.TempWayTooHot)"
    );
    assert_eq!(
        out.logs[2].unit.as_deref(),
        Some("/redfish/v1/Managers/BMC/LogServices/Log")
    );

    // The cursor's key for a service, from an entry or from its collection, with or
    // without iLO's trailing slashes.
    for path in [
        "/redfish/v1/Systems/1/LogServices/IEL/Entries/",
        "/redfish/v1/Systems/1/LogServices/IEL/Entries",
        "/redfish/v1/Systems/1/LogServices/IEL/Entries/7/",
        "/redfish/v1/Systems/1/LogServices/IEL/Entries/7",
    ] {
        assert_eq!(
            logs::service_of(path),
            "/redfish/v1/Systems/1/LogServices/IEL",
            "{path}"
        );
    }

    // First read: all new; the cursor holds each service's newest id.
    let (new, next) = new_logs(out.logs.clone(), None);
    assert_eq!(new.len(), 3);
    let next = next.unwrap();
    assert_eq!(
        next,
        r#"{"/redfish/v1/Managers/BMC/LogServices/Log":1,"/redfish/v1/Systems/437XR1138R2/LogServices/Log1":2}"#
    );
    // The same entries again: nothing new, the cursor unchanged.
    let (new, again) = new_logs(out.logs.clone(), Some(&next));
    assert!(new.is_empty(), "{new:?}");
    assert_eq!(again.as_deref(), Some(next.as_str()));
    // One more entry in the system log: only it.
    let mut more = out.logs.clone();
    let mut third = more[1].clone();
    third.cursor = Some("3 /redfish/v1/Systems/437XR1138R2/LogServices/Log1".into());
    third.message = "third".into();
    more.push(third);
    let (new, _) = new_logs(more, Some(&next));
    assert_eq!(
        new.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["third"]
    );
    // The system log cleared (it holds only entry 1 again): that entry is new; the
    // manager log is unchanged.
    let cleared = vec![out.logs[0].clone(), out.logs[2].clone()];
    let (new, after) = new_logs(cleared, Some(&next));
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].ts_ms, first.ts_ms);
    assert!(after.unwrap().contains("Log1\":1"));
    // SEL lines read over IPMI keep their own cursor rule.
    let sel = LogEntry {
        source: "sel".into(),
        ts_ms: None,
        priority: 4,
        unit: None,
        message: "x".into(),
        cursor: Some("1f".into()),
        labels: Default::default(),
    };
    assert_eq!(new_logs(vec![sel], Some("1e")).1.as_deref(), Some("1f"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any JSON-ish text, any mutation of a fixture: no panic, only finite values.
    #[test]
    fn garbled_resources_never_panic(which in 0usize..4, cut in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let texts = [
            fixture!("dmtf-mockup-public-rackmount1-thermal.json"),
            fixture!("dmtf-mockup-public-rackmount1-power.json"),
            fixture!("dmtf-mockup-public-rackmount1-sensor-cpu1temp.json"),
            fixture!("hpe-ilo-thermal-gofish.json"),
        ];
        let mut bytes = texts[which].as_bytes().to_vec();
        let at = pos.index(bytes.len());
        bytes[at] = byte;
        bytes.truncate(cut.index(bytes.len()) + 1);
        let out = parse(&String::from_utf8_lossy(&bytes));
        prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
    }

    /// Values of every JSON kind where numbers and words belong.
    #[test]
    fn any_value_in_any_field(value in prop_oneof![
        Just("null".to_string()), Just("true".to_string()), Just("[]".to_string()),
        Just("{}".to_string()), any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        "\"[ -~]{0,8}\"",
    ]) {
        let text = format!(
            r##"{{"@odata.type": "#Thermal.v1_7_1.Thermal", "Temperatures": [{{"Name": {value},
            "ReadingCelsius": {value}, "Status": {value}, "UpperThresholdFatal": {value}}}],
            "Fans": [{{"Name": "F", "Reading": {value}, "ReadingUnits": {value}}}],
            "Redundancy": {value}}}"##
        );
        let out = parse(&text);
        prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
    }
}
