//! The `sensors` probe: CPU package and core, board, drive and other temperatures and
//! fan speeds from the kernel's hwmon drivers (`/sys/class/hwmon`), for hosts without a
//! BMC or to see what the OS sees.

use crate::output::{Labels, ParseError, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::collections::BTreeMap;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("sensors.sh");

pub const PROBE: Probe = Probe {
    name: "sensors",
    description: "hwmon temperatures (CPU package and cores, board, drives) and fan speeds",
    script: SCRIPT,
    commands: &[
        "read (sh builtin) /sys/class/hwmon/hwmon*/{name,temp*_input,temp*_label,fan*_input,fan*_label}",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(10),
    privileges: "none",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// Parses `key=value` lines of each hwmon chip.
///
/// ```text
/// ==dcmon== hwmon hwmon2
/// device=coretemp.0
/// name=coretemp
/// temp1_input=45000
/// temp1_label=Package id 0
/// ```
pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    for (hwmon, body) in sections.with_prefix("hwmon ") {
        read_chip(hwmon, body, &mut out);
    }
    out
}

fn read_chip(hwmon: &str, body: &str, out: &mut ProbeOutput) {
    let section = format!("hwmon {hwmon}");
    let mut values: BTreeMap<&str, &str> = BTreeMap::new();
    // Where each key was, for warnings.
    let mut line_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        match line.split_once('=') {
            Some((k, v)) => {
                values.insert(k.trim(), v.trim());
                line_of.insert(k.trim(), n + 1);
            }
            None if line.trim().is_empty() => {}
            None => out.not_understood(&section, n + 1, line),
        }
    }
    let chip = values.get("name").copied().unwrap_or(hwmon);
    let device = values
        .get("device")
        .copied()
        .filter(|d| !d.is_empty())
        .unwrap_or(hwmon);
    for (key, raw) in &values {
        let Some(input) = key.strip_suffix("_input") else {
            continue;
        };
        let (series, unit, scale) = if input.starts_with("temp") {
            // millidegrees Celsius (Documentation/hwmon/sysfs-interface.rst)
            ("hwmon_temperature_celsius", "celsius", 0.001)
        } else if input.starts_with("fan") {
            ("hwmon_fan_speed_rpm", "rpm", 1.0)
        } else {
            continue;
        };
        let Ok(value) = raw.parse::<f64>() else {
            // A sensor that cannot be read returns an error on read: the script prints nothing.
            if !raw.is_empty() {
                out.warnings.push(ParseError::Malformed {
                    section: section.clone(),
                    line: line_of.get(key).copied().unwrap_or(0),
                    reason: format!("{key}=`{raw}` is not a number"),
                });
            }
            continue;
        };
        let label_key = format!("{input}_label");
        let sensor = values.get(label_key.as_str()).copied().unwrap_or(input);
        out.gauge(
            series,
            Labels::new([("chip", chip), ("device", device), ("sensor", sensor)]),
            value * scale,
            unit,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as sysfs prints it on an Intel server with an NVMe drive and a Super I/O
    /// chip (coretemp, nvme and nct6775 drivers); this build machine has no hwmon.
    const SERVER: &str = "\n==dcmon== hwmon hwmon1\ndevice=coretemp.0\nname=coretemp\ntemp1_input=45000\ntemp2_input=43000\ntemp1_label=Package id 0\ntemp2_label=Core 0\n\
        \n==dcmon== hwmon hwmon2\ndevice=nvme0\nname=nvme\ntemp1_input=38850\ntemp1_label=Composite\n\
        \n==dcmon== hwmon hwmon3\ndevice=nct6775.656\nname=nct6798\nfan1_input=1205\nfan2_input=0\ntemp7_input=\n\
        \n==dcmon== end\n";

    fn get(out: &ProbeOutput, series: &str, sensor: &str) -> Option<f64> {
        out.samples
            .iter()
            .find(|s| s.name == series && s.labels.get("sensor") == Some(sensor))
            .map(|s| s.value)
    }

    #[test]
    fn temperatures_and_fans_with_labels() {
        let out = parse(SERVER);
        assert_eq!(out.warnings, []);
        assert_eq!(
            get(&out, "hwmon_temperature_celsius", "Package id 0"),
            Some(45.0)
        );
        assert_eq!(get(&out, "hwmon_temperature_celsius", "Core 0"), Some(43.0));
        assert_eq!(
            get(&out, "hwmon_temperature_celsius", "Composite"),
            Some(38.85)
        );
        assert_eq!(get(&out, "hwmon_fan_speed_rpm", "fan1"), Some(1205.0));
        assert_eq!(get(&out, "hwmon_fan_speed_rpm", "fan2"), Some(0.0));
        let nvme = out
            .samples
            .iter()
            .find(|s| s.labels.get("sensor") == Some("Composite"))
            .unwrap();
        assert_eq!(
            (nvme.labels.get("chip"), nvme.labels.get("device")),
            (Some("nvme"), Some("nvme0"))
        );
        assert_eq!(
            out.samples.len(),
            5,
            "the unreadable temp7 is skipped quietly"
        );
    }

    #[test]
    fn no_hwmon_is_absent() {
        let out =
            parse("\n==dcmon== absent\nno hwmon sensors in /sys/class/hwmon\n\n==dcmon== end\n");
        assert!(out.absent.is_some());
    }

    /// The script itself, run here: absent on a machine without hwmon, samples otherwise.
    #[test]
    fn script_runs_on_this_machine() {
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .output()
            .unwrap();
        let out = parse(&String::from_utf8_lossy(&run.stdout));
        assert_eq!(out.warnings, []);
        assert!(out.absent.is_some() || !out.samples.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "==dcmon== hwmon x\n=\n==\ntemp1_input=abc\nfan_input=1e400\n",
            "\u{0}\u{fffd}",
        ] {
            let out = parse(text);
            assert!(out.samples.iter().all(|s| s.value.is_finite()));
        }
    }
}
