//! `ipmitool chassis status`: power state, intrusion and fault flags.

use crate::output::{Labels, ProbeOutput};

/// ```text
/// System Power         : on
/// Chassis Intrusion    : inactive
/// Cooling/Fan Fault    : false
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let flag = match value {
            "on" | "true" | "active" => 1.0,
            "off" | "false" | "inactive" => 0.0,
            _ => continue,
        };
        let fault = match key {
            "System Power" => {
                out.gauge("ipmi_chassis_power_on", Labels::default(), flag, "");
                continue;
            }
            "Chassis Intrusion" => {
                out.gauge("ipmi_chassis_intrusion", Labels::default(), flag, "");
                continue;
            }
            "Power Overload" => "power_overload",
            "Main Power Fault" => "main_power",
            "Power Control Fault" => "power_control",
            "Drive Fault" => "drive",
            "Cooling/Fan Fault" => "cooling_fan",
            _ => continue,
        };
        out.gauge(
            "ipmi_chassis_fault",
            Labels::new([("fault", fault)]),
            flag,
            "",
        );
    }
}
