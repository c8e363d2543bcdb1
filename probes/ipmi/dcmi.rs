//! `ipmitool dcmi power reading`: the whole system's power draw, as the BMC measures it.

use super::sdr::tool_errors;
use crate::output::{Labels, ParseError, ProbeOutput};

/// ```text
/// Instantaneous power reading:                   167 Watts
/// Average power reading over sample period:      156 Watts
/// Power reading state is:                   activated
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let mut found = false;
    let mut deactivated = false;
    for (n, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            if !line.trim().is_empty() && !super::reading::is_error_line(line) {
                out.not_understood("dcmi", n + 1, line);
            }
            continue;
        };
        let name = match key.trim() {
            "Instantaneous power reading" => "ipmi_dcmi_power_watts",
            "Minimum during sampling period" => "ipmi_dcmi_power_min_watts",
            "Maximum during sampling period" => "ipmi_dcmi_power_max_watts",
            "Average power reading over sample period" => "ipmi_dcmi_power_avg_watts",
            "Power reading state is" => {
                deactivated = value.trim() == "deactivated";
                continue;
            }
            // Understood, not stored: when and over how long the BMC sampled.
            "IPMI timestamp" | "Sampling period" => continue,
            _ if super::reading::is_error_line(line) => continue,
            _ => {
                out.not_understood("dcmi", n + 1, line);
                continue;
            }
        };
        let watts = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        match watts {
            Some(watts) => {
                out.gauge(name, Labels::default(), watts, "watts");
                found = true;
            }
            None => out.not_understood("dcmi", n + 1, line),
        }
    }
    if deactivated {
        // A deactivated power reading returns stale or zero values: keep none of them.
        out.samples
            .retain(|s| !s.name.starts_with("ipmi_dcmi_power"));
        out.warnings.push(ParseError::ToolFailed {
            tool: "ipmitool dcmi".into(),
            message: "power reading is deactivated on this BMC (ipmitool dcmi power activate)"
                .into(),
        });
    } else if !found {
        tool_errors(text, out);
    }
}
