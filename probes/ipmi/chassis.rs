//! `ipmitool chassis status`: power state, intrusion and fault flags.

use crate::output::{Labels, ProbeOutput};

/// ```text
/// System Power         : on
/// Chassis Intrusion    : inactive
/// Cooling/Fan Fault    : false
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    for (n, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            if !line.trim().is_empty() && !super::reading::is_error_line(line) {
                out.not_understood("chassis", n + 1, line);
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if KNOWN_NOT_STORED.contains(&key) || super::reading::is_error_line(line) {
            continue;
        }
        let flag = match value {
            "on" | "true" | "active" => 1.0,
            "off" | "false" | "inactive" => 0.0,
            _ => {
                out.not_understood("chassis", n + 1, line);
                continue;
            }
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
            _ => {
                out.not_understood("chassis", n + 1, line);
                continue;
            }
        };
        out.gauge(
            "ipmi_chassis_fault",
            Labels::new([("fault", fault)]),
            flag,
            "",
        );
    }
}

/// `chassis status` lines read but not stored (ipmitool's `ipmi_chassis_status`).
const KNOWN_NOT_STORED: &[&str] = &[
    "Power Interlock",
    "Power Restore Policy",
    "Last Power Event",
    "Front-Panel Lockout",
    "Front Panel Control",
    "Sleep Button Disable",
    "Diag Button Disable",
    "Reset Button Disable",
    "Power Button Disable",
    "Sleep Button Disabled",
    "Diag Button Disabled",
    "Reset Button Disabled",
    "Power Button Disabled",
];
