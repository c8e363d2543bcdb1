//! Commands sent to a BMC over the network instead of through the host's OS: fan modes,
//! raw requests and fan readings, for `dcmon fan --via bmc` and for dashboard actions on
//! a host whose SSH is down. They are the fan profile's own ipmitool commands, read
//! back from their argument lists, and the answers are written as ipmitool writes them,
//! so one reader (and one audit trail) serves both paths.

use super::{BmcError, BmcLogin, Session, sdr_cache, sensors};
use ipmi_rs::storage::sdr::SensorType;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmcOp {
    /// `ipmitool raw NETFN CMD DATA...`: prints the answer's bytes.
    Raw { netfn: u8, cmd: u8, data: Vec<u8> },
    /// `echo TEXT`: a marker between answers, as on the SSH path.
    Echo(String),
    /// `ipmitool sdr type Fan`: the fan sensors, one line each.
    Fans,
}

impl BmcOp {
    /// The op for an ipmitool (or echo) argument list; None for anything else, which
    /// has no meaning on a BMC.
    pub fn from_argv(argv: &[String]) -> Option<BmcOp> {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["echo", text] => Some(BmcOp::Echo(text.to_string())),
            ["ipmitool", "sdr", "type", "Fan"] => Some(BmcOp::Fans),
            ["ipmitool", "raw", netfn, cmd, data @ ..] => {
                let byte = |w: &str| u8::from_str_radix(w.trim_start_matches("0x"), 16).ok();
                Some(BmcOp::Raw {
                    netfn: byte(netfn)?,
                    cmd: byte(cmd)?,
                    data: data.iter().map(|w| byte(w)).collect::<Option<_>>()?,
                })
            }
            _ => None,
        }
    }

    /// As the audit trail and the dashboard show it (ipmitool's words).
    pub fn shown(&self) -> String {
        match self {
            BmcOp::Raw { netfn, cmd, data } => {
                let mut s = format!("raw 0x{netfn:02x} 0x{cmd:02x}");
                for b in data {
                    let _ = write!(s, " 0x{b:02x}");
                }
                s
            }
            BmcOp::Echo(text) => format!("echo {text}"),
            BmcOp::Fans => "sdr type Fan".to_string(),
        }
    }
}

/// What the BMC answered, in ipmitool's words.
#[derive(Debug, Default)]
pub struct BmcAnswer {
    pub stdout: String,
    pub stderr: String,
    /// What failed the run: the first failed op, or with `keep_going` the last op if it
    /// failed (as a shell's `a; b` ends as `b` does; earlier failures are in stderr).
    pub error: Option<BmcError>,
}

impl BmcAnswer {
    /// Takes an op's outcome (`last`: the run's final op); true when the run stops.
    pub(crate) fn record(
        &mut self,
        done: Result<(), BmcError>,
        last: bool,
        keep_going: bool,
    ) -> bool {
        let Err(e) = done else {
            return false;
        };
        let _ = writeln!(self.stderr, "{e}");
        if !keep_going || last {
            self.error = Some(e);
            return true;
        }
        false
    }
}

/// Runs `ops` in one session, in order. A failed op ends the run unless `keep_going`
/// (a status read goes on to the fans when the mode cannot be read). Blocking.
pub fn run(login: &BmcLogin<'_>, timeout: Duration, ops: &[BmcOp], keep_going: bool) -> BmcAnswer {
    let mut answer = BmcAnswer::default();
    let mut s = match Session::open(login, timeout) {
        Ok(s) => s,
        Err(e) => {
            answer.error = Some(e);
            return answer;
        }
    };
    for (i, op) in ops.iter().enumerate() {
        let done = match op {
            BmcOp::Echo(text) => {
                answer.stdout.push_str(text);
                answer.stdout.push('\n');
                Ok(())
            }
            BmcOp::Raw { netfn, cmd, data } => s
                .raw("raw request", *netfn, *cmd, data.clone())
                .map(|bytes| answer.stdout.push_str(&raw_answer(&bytes))),
            BmcOp::Fans => sdr_cache::records(&mut s).map(|records| {
                for r in sensors::readings(&mut s, &records, Some(SensorType::Fan)) {
                    answer.stdout.push_str(&sdr_line(&r));
                }
            }),
        };
        if answer.record(done, i + 1 == ops.len(), keep_going) {
            break;
        }
    }
    answer
}

/// The bytes as `ipmitool raw` prints them: ` 01 02`, sixteen to a line.
pub(crate) fn raw_answer(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 16 == 0 {
            out.push('\n');
        }
        let _ = write!(out, " {b:02x}");
    }
    out.push('\n');
    out
}

/// A sensor as `ipmitool sdr type` lists it:
/// `FAN1             | 04h | ok  | 29.1 | 4800 RPM`.
fn sdr_line(r: &sensors::Reading) -> String {
    let value = match r.value {
        Some((_, _, v)) => format!("{v} {}", r.ipmitool_unit),
        None => "No Reading".to_string(),
    };
    sdr_text(&r.sensor, r.number, r.status, &r.entity, &value)
}

/// One `ipmitool sdr` line; `status` on `ipmi_sensor_status`'s scale.
pub(crate) fn sdr_text(sensor: &str, number: u8, status: f64, entity: &str, value: &str) -> String {
    let status = match status as i64 {
        0 => "ok",
        1 => "nc",
        2 => "cr",
        3 => "nr",
        _ => "ns",
    };
    format!("{sensor:<16} | {number:02X}h | {status:<3} | {entity:<4} | {value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_profiles_commands_read_back_as_requests() {
        assert_eq!(
            BmcOp::from_argv(&argv("ipmitool raw 0x30 0x45 0x01 0x02")),
            Some(BmcOp::Raw {
                netfn: 0x30,
                cmd: 0x45,
                data: vec![0x01, 0x02]
            })
        );
        assert_eq!(
            BmcOp::from_argv(&argv("ipmitool sdr type Fan")),
            Some(BmcOp::Fans)
        );
        assert_eq!(
            BmcOp::from_argv(&argv("echo ==dcmon==")),
            Some(BmcOp::Echo("==dcmon==".into()))
        );
        for other in [
            "uname -a",
            "ipmitool raw 0x30",
            "ipmitool raw 0x30 0x45 0xzz",
        ] {
            assert_eq!(BmcOp::from_argv(&argv(other)), None, "{other}");
        }
        let op = BmcOp::from_argv(&argv("ipmitool raw 0x30 0x30 0x02 0xff 0x1e")).unwrap();
        assert_eq!(op.shown(), "raw 0x30 0x30 0x02 0xff 0x1e");
    }

    #[test]
    fn answers_read_as_ipmitools_do() {
        assert_eq!(raw_answer(&[0x01]), " 01\n");
        let long: Vec<u8> = (0..18).collect();
        assert_eq!(
            raw_answer(&long),
            " 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n 10 11\n"
        );
        let fan = sensors::Reading {
            sensor: "FAN1".into(),
            entity: "29.1".into(),
            number: 4,
            status: 2.0,
            value: Some(("ipmi_fan_speed_rpm", "rpm", 300.0)),
            ipmitool_unit: "RPM",
        };
        let fans = crate::fan::fans(&sdr_line(&fan));
        assert_eq!(fans.len(), 1, "{}", sdr_line(&fan));
        assert_eq!(
            (
                fans[0].sensor.as_str(),
                fans[0].rpm,
                fans[0].status.as_str()
            ),
            ("FAN1", Some(300.0), "cr")
        );
    }
}
