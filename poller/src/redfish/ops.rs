//! Fan commands for a BMC reached over Redfish (`dcmon fan --via bmc`, dashboard
//! actions while SSH is down). They are the fan profile's own ipmitool commands, as on
//! the IPMI path, carried out with their Redfish equivalents and answered as ipmitool
//! writes them, so one reader and one audit trail serve every path:
//!
//! - `sdr type Fan`: the fans of the BMC's readings, one `sdr` line each;
//! - Supermicro's `raw 0x30 0x45 0x00` / `0x01 MODE`: GET / PATCH of the manager's
//!   `Oem/Supermicro/FanMode` (`{"Mode": "FullSpeed"}`), where the BMC offers it.
//!
//! Everything else (Dell's `raw 0x30 0x30`, any other raw request) has no Redfish
//! equivalent dcmon sends, and is refused before anything is sent (`supported`).

use super::{RedfishError, Scope, Service};
use crate::bmc::{BmcAnswer, BmcError, BmcOp, raw_answer, sdr_text};
use serde_json::Value;
use tokio::time::Instant;

/// Supermicro's fan-mode bytes (as `ipmitool raw 0x30 0x45` takes them) and the words
/// its Redfish `FanMode` uses. PUE's word varies by firmware: the one the BMC lists.
const MODES: [(u8, &str); 5] = [
    (0x00, "Standard"),
    (0x01, "FullSpeed"),
    (0x02, "Optimal"),
    (0x03, "PUE"),
    (0x04, "HeavyIO"),
];

/// Whether `op` can be carried out over Redfish; why not, in an operator's words.
pub fn supported(op: &BmcOp) -> Result<(), String> {
    match op {
        BmcOp::Echo(_) | BmcOp::Fans => Ok(()),
        BmcOp::Raw {
            netfn: 0x30,
            cmd: 0x45,
            data,
        } if matches!(data.as_slice(), [0x00] | [0x01, _]) => Ok(()),
        BmcOp::Raw {
            netfn: 0x30,
            cmd: 0x30,
            ..
        } => Err(
            "Dell's fan control is an iDRAC OEM setting over Redfish, which dcmon does not send: set bmc protocol = \"auto\" where IPMI over LAN is on, or act through the host's OS (--via ssh)"
                .to_string(),
        ),
        other => Err(format!(
            "`{}` is a raw IPMI request, which Redfish cannot carry: set bmc protocol = \"auto\" where IPMI over LAN is on, or act through the host's OS (--via ssh)",
            other.shown()
        )),
    }
}

/// Runs `ops` in order over the BMC's Redfish service by `until`. A failed op ends the
/// run unless `keep_going`, as on the IPMI path.
pub async fn run(
    s: &mut Service,
    password: &str,
    until: Instant,
    ops: &[BmcOp],
    keep_going: bool,
) -> BmcAnswer {
    let mut answer = BmcAnswer::default();
    for (i, op) in ops.iter().enumerate() {
        let done = match op {
            BmcOp::Echo(text) => {
                answer.stdout.push_str(text);
                answer.stdout.push('\n');
                Ok(())
            }
            BmcOp::Fans => fans(s, password, until)
                .await
                .map(|lines| answer.stdout.push_str(&lines)),
            BmcOp::Raw { data, .. } => match data.as_slice() {
                [0x00] => read_mode(s, password, until)
                    .await
                    .map(|byte| answer.stdout.push_str(&raw_answer(&[byte]))),
                [0x01, byte] => set_mode(s, password, until, *byte)
                    .await
                    .map(|()| answer.stdout.push_str(&raw_answer(&[]))),
                _ => Err(failed(s, op, supported(op).err().unwrap_or_default())),
            },
        };
        if answer.record(done, i + 1 == ops.len(), keep_going) {
            break;
        }
    }
    answer
}

fn failed(s: &Service, op: &BmcOp, what: String) -> BmcError {
    BmcError::Command {
        addr: s.conn.base.clone(),
        command: match op {
            BmcOp::Fans => "fan readings",
            _ => "fan mode",
        },
        what,
    }
}

/// Nothing reached the BMC (no session, no answer): as a failed IPMI session reads.
fn unreachable(s: &Service, e: RedfishError) -> BmcError {
    match e {
        RedfishError::Unreachable(what)
        | RedfishError::Refused(what)
        | RedfishError::Settings(what) => BmcError::Session {
            addr: s.conn.base.clone(),
            what,
        },
        RedfishError::Answer(what) => BmcError::Command {
            addr: s.conn.base.clone(),
            command: "fan mode",
            what,
        },
    }
}

/// The fans of the BMC's readings as `ipmitool sdr type Fan` lists them.
async fn fans(s: &mut Service, password: &str, until: Instant) -> Result<String, BmcError> {
    let out = super::walk::read(s, password, until, None, Scope::Readings)
        .await
        .map_err(|e| unreachable(s, e))?;
    let mut lines = String::new();
    for sample in out
        .samples
        .iter()
        .filter(|x| x.name == "ipmi_fan_speed_rpm" || x.name == "ipmi_percent")
    {
        let sensor = sample.labels.get("sensor").unwrap_or("");
        let status = out
            .samples
            .iter()
            .find(|x| x.name == "ipmi_sensor_status" && x.labels == sample.labels)
            .map_or(0.0, |x| x.value);
        let unit = if sample.name == "ipmi_percent" {
            "percent"
        } else {
            "RPM"
        };
        // Entity 29.1, a fan, as IPMI numbers it: Redfish has no sensor numbers.
        let value = format!("{} {unit}", sample.value);
        lines.push_str(&sdr_text(sensor, 0, status, "29.1", &value));
    }
    Ok(lines)
}

/// Where the BMC's fan mode is, or why it has none.
async fn fan_mode_path(
    s: &mut Service,
    password: &str,
    until: Instant,
) -> Result<String, BmcError> {
    super::walk::ensure_layout(s, password, until)
        .await
        .map_err(|e| unreachable(s, e))?;
    s.layout
        .as_ref()
        .and_then(|l| l.fan_mode.clone())
        .ok_or_else(|| BmcError::Command {
            addr: s.conn.base.clone(),
            command: "fan mode",
            what: "this BMC offers no fan mode over Redfish (no manager has Oem.Supermicro.FanMode, and Redfish's standard schema has none)".to_string(),
        })
}

/// The mode's resource: its `Mode`, the words the BMC allows, its `@odata.etag`.
async fn mode_resource(
    s: &mut Service,
    path: &str,
    password: &str,
    until: Instant,
) -> Result<(String, Vec<String>, Option<String>), BmcError> {
    let answer = s
        .conn
        .get(path, password, until)
        .await
        .map_err(|e| unreachable(s, e))?;
    let v: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let mode = v["Mode"].as_str().unwrap_or("").to_string();
    let allowed = v["Mode@Redfish.AllowableValues"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| Some(m.as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let etag = v["@odata.etag"].as_str().map(str::to_string);
    Ok((mode, allowed, etag))
}

async fn read_mode(s: &mut Service, password: &str, until: Instant) -> Result<u8, BmcError> {
    let path = fan_mode_path(s, password, until).await?;
    let (mode, _, _) = mode_resource(s, &path, password, until).await?;
    MODES
        .iter()
        .find(|(_, word)| mode == *word || (*word == "PUE" && mode.starts_with("PUE")))
        .map(|(byte, _)| *byte)
        .ok_or_else(|| BmcError::Command {
            addr: s.conn.base.clone(),
            command: "fan mode",
            what: format!("the BMC reports fan mode `{mode}`, which dcmon does not know"),
        })
}

async fn set_mode(
    s: &mut Service,
    password: &str,
    until: Instant,
    byte: u8,
) -> Result<(), BmcError> {
    let path = fan_mode_path(s, password, until).await?;
    let (_, allowed, etag) = mode_resource(s, &path, password, until).await?;
    let Some((_, word)) = MODES.iter().find(|(b, _)| *b == byte) else {
        return Err(BmcError::Command {
            addr: s.conn.base.clone(),
            command: "fan mode",
            what: format!("no Supermicro fan mode is byte 0x{byte:02x}"),
        });
    };
    // The BMC's own word (PUE's varies); refused when the BMC does not list it.
    let chosen = allowed
        .iter()
        .find(|a| a.as_str() == *word || (*word == "PUE" && a.starts_with("PUE")))
        .cloned()
        .or_else(|| allowed.is_empty().then(|| word.to_string()));
    let Some(chosen) = chosen else {
        return Err(BmcError::Command {
            addr: s.conn.base.clone(),
            command: "fan mode",
            what: format!(
                "this BMC offers fan modes {}, not {word}",
                allowed.join(", ")
            ),
        });
    };
    let body = serde_json::json!({ "Mode": chosen }).to_string();
    s.conn
        .patch(&path, body, etag.as_deref(), password, until)
        .await
        .map_err(|e| unreachable(s, e))
}
