//! Fan modes per vendor profile: which `ipmitool` commands read and set them, and what
//! their answers mean. Pure: commands are argument lists, answers are text; running them
//! is `fanout`'s job. Unknown modes are refused here, before anything is sent.
//!
//! Supermicro (X9 to X13): `raw 0x30 0x45 0x00` reads the mode, `raw 0x30 0x45 0x01 MODE`
//! sets it (0 standard, 1 full, 2 optimal, 3 PUE, 4 heavy IO).
//! Dell iDRAC 7 to 9: `raw 0x30 0x30 0x01 0x00` takes manual control, `raw 0x30 0x30 0x02
//! 0xff DUTY` sets every fan's duty in percent, `raw 0x30 0x30 0x01 0x01` gives control
//! back to the iDRAC. The iDRAC does not report which of the two is in force.

use dcmon_inventory::FanProfile;
use dcmon_probes::ProbeOutput;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FanError {
    #[error("fan mode `{mode}` is not one of the {profile} profile's: {known}")]
    UnknownMode {
        profile: &'static str,
        mode: String,
        known: String,
    },
    #[error(
        "the generic profile only reads fans; set fan_profile = \"supermicro\" or \"dell\" for this host to set modes"
    )]
    ReadOnly,
}

/// Supermicro's modes: (name, byte).
const SUPERMICRO: [(&str, u8); 5] = [
    ("standard", 0x00),
    ("full", 0x01),
    ("optimal", 0x02),
    ("pue", 0x03),
    ("heavy-io", 0x04),
];

fn ipmitool(args: &[&str]) -> Vec<String> {
    std::iter::once("ipmitool")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}

/// The modes a profile accepts, for messages and the dashboard.
pub fn modes(profile: FanProfile) -> Vec<String> {
    match profile {
        FanProfile::Generic => Vec::new(),
        FanProfile::Supermicro => SUPERMICRO.iter().map(|(n, _)| n.to_string()).collect(),
        FanProfile::Dell => vec!["auto".to_string(), "0%..100%".to_string()],
    }
}

/// The commands that set `mode`, in order (all must succeed).
pub fn set_commands(profile: FanProfile, mode: &str) -> Result<Vec<Vec<String>>, FanError> {
    let unknown = || FanError::UnknownMode {
        profile: profile.name(),
        mode: mode.to_string(),
        known: modes(profile).join(", "),
    };
    match profile {
        FanProfile::Generic => Err(FanError::ReadOnly),
        FanProfile::Supermicro => {
            let byte = SUPERMICRO
                .iter()
                .find(|(n, _)| *n == mode)
                .map(|(_, b)| *b)
                .ok_or_else(unknown)?;
            let byte = format!("0x{byte:02x}");
            Ok(vec![ipmitool(&["raw", "0x30", "0x45", "0x01", &byte])])
        }
        FanProfile::Dell => {
            if mode == "auto" {
                return Ok(vec![ipmitool(&["raw", "0x30", "0x30", "0x01", "0x01"])]);
            }
            let duty: u8 = mode
                .strip_suffix('%')
                .and_then(|d| d.parse().ok())
                .filter(|d| *d <= 100)
                .ok_or_else(unknown)?;
            let duty = format!("0x{duty:02x}");
            Ok(vec![
                ipmitool(&["raw", "0x30", "0x30", "0x01", "0x00"]),
                ipmitool(&["raw", "0x30", "0x30", "0x02", "0xff", &duty]),
            ])
        }
    }
}

/// Reads the mode where the profile can (empty otherwise).
pub fn mode_command(profile: FanProfile) -> Option<Vec<String>> {
    match profile {
        FanProfile::Supermicro => Some(ipmitool(&["raw", "0x30", "0x45", "0x00"])),
        FanProfile::Generic | FanProfile::Dell => None,
    }
}

/// Separates the mode's answer from the fans' in a status run.
pub const FANS_MARK: &str = "==dcmon== fans";

/// The commands that read the mode (where the profile can), then a marker, then the
/// fans; each runs whatever the one before did.
pub fn status_commands(profile: FanProfile) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    if let Some(mode) = mode_command(profile) {
        commands.push(mode);
    }
    commands.push(vec!["echo".to_string(), FANS_MARK.to_string()]);
    commands.push(fans_command());
    commands
}

/// The status commands as one command line.
pub fn status_line(profile: FanProfile) -> String {
    crate::command::each_of(&status_commands(profile))
}

/// Reads the fan sensors.
pub fn fans_command() -> Vec<String> {
    ipmitool(&["sdr", "type", "Fan"])
}

/// One fan's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fan {
    pub sensor: String,
    pub rpm: Option<f64>,
    /// `ok`, `nc`, `cr`, `nr`, `ns`.
    pub status: String,
}

/// The mode a Supermicro BMC answered (`ipmitool raw 0x30 0x45 0x00` prints ` 01`).
pub fn supermicro_mode(answer: &str) -> Option<String> {
    let byte = u8::from_str_radix(answer.split_whitespace().next()?, 16).ok()?;
    Some(
        SUPERMICRO
            .iter()
            .find(|(_, b)| *b == byte)
            .map_or_else(|| format!("unknown (0x{byte:02x})"), |(n, _)| n.to_string()),
    )
}

/// Fans from `ipmitool sdr type Fan` (the ipmi probe's own sdr parser reads it).
pub fn fans(sdr: &str) -> Vec<Fan> {
    let mut out = ProbeOutput::default();
    dcmon_probes::ipmi::sdr::parse(sdr, &mut out);
    let mut fans: Vec<Fan> = Vec::new();
    for s in &out.samples {
        let Some(sensor) = s.labels.get("sensor") else {
            continue;
        };
        let at = match fans.iter().position(|f| f.sensor == sensor) {
            Some(i) => i,
            None => {
                fans.push(Fan {
                    sensor: sensor.to_string(),
                    rpm: None,
                    status: String::new(),
                });
                fans.len() - 1
            }
        };
        match s.name.as_str() {
            "ipmi_fan_speed_rpm" => fans[at].rpm = Some(s.value),
            "ipmi_sensor_status" => {
                fans[at].status = match s.value as i64 {
                    0 => "ok",
                    1 => "nc",
                    2 => "cr",
                    3 => "nr",
                    _ => "ns",
                }
                .to_string()
            }
            _ => {}
        }
    }
    fans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(commands: &[Vec<String>]) -> Vec<String> {
        commands.iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn each_mode_sends_the_documented_bytes() {
        let sm = |m| line(&set_commands(FanProfile::Supermicro, m).unwrap());
        assert_eq!(sm("standard"), ["ipmitool raw 0x30 0x45 0x01 0x00"]);
        assert_eq!(sm("full"), ["ipmitool raw 0x30 0x45 0x01 0x01"]);
        assert_eq!(sm("optimal"), ["ipmitool raw 0x30 0x45 0x01 0x02"]);
        assert_eq!(sm("heavy-io"), ["ipmitool raw 0x30 0x45 0x01 0x04"]);
        let dell = |m| line(&set_commands(FanProfile::Dell, m).unwrap());
        assert_eq!(dell("auto"), ["ipmitool raw 0x30 0x30 0x01 0x01"]);
        assert_eq!(
            dell("30%"),
            [
                "ipmitool raw 0x30 0x30 0x01 0x00",
                "ipmitool raw 0x30 0x30 0x02 0xff 0x1e"
            ]
        );
        assert_eq!(dell("100%")[1], "ipmitool raw 0x30 0x30 0x02 0xff 0x64");
    }

    #[test]
    fn unknown_modes_and_read_only_profiles_are_refused() {
        for (profile, mode) in [
            (FanProfile::Supermicro, "turbo"),
            (FanProfile::Supermicro, "0x01"),
            (FanProfile::Dell, "101%"),
            (FanProfile::Dell, "-5%"),
            (FanProfile::Dell, "full"),
        ] {
            let e = set_commands(profile, mode).unwrap_err();
            assert!(matches!(e, FanError::UnknownMode { .. }), "{mode}: {e}");
        }
        assert_eq!(
            set_commands(FanProfile::Supermicro, "turbo")
                .unwrap_err()
                .to_string(),
            "fan mode `turbo` is not one of the supermicro profile's: standard, full, optimal, pue, heavy-io"
        );
        assert_eq!(
            set_commands(FanProfile::Generic, "full"),
            Err(FanError::ReadOnly)
        );
    }

    #[test]
    fn answers_are_read() {
        assert_eq!(supermicro_mode(" 01\n").as_deref(), Some("full"));
        assert_eq!(supermicro_mode(" 04").as_deref(), Some("heavy-io"));
        assert_eq!(supermicro_mode(" 09").as_deref(), Some("unknown (0x09)"));
        assert_eq!(supermicro_mode(""), None);
        let sdr = "FAN1             | 41h | ok  | 29.1 | 5400 RPM\nFAN2             | 42h | cr  | 29.2 | 300 RPM\nFAN3             | 43h | ns  | 29.3 | No Reading\n";
        let fans = fans(sdr);
        assert_eq!(fans.len(), 3, "{fans:?}");
        assert_eq!(
            (
                fans[0].sensor.as_str(),
                fans[0].rpm,
                fans[0].status.as_str()
            ),
            ("FAN1", Some(5400.0), "ok")
        );
        assert_eq!((fans[1].rpm, fans[1].status.as_str()), (Some(300.0), "cr"));
        assert_eq!((fans[2].rpm, fans[2].status.as_str()), (None, "ns"));
    }
}
