//! The `bmc` probe: a host's BMC read over the network with ipmi-rs (RMCP+, IPMI 2.0),
//! so a host whose OS is down still shows its power state and sensors. Same series
//! names as the in-band `ipmi` probe, labelled `path="bmc"`.
//!
//! ipmi-rs gaps worked around here (see ../shared/TESTBED.md): the session is raised to
//! Administrator by hand (Set Session Privilege Level), the SDR repository is read in
//! chunks of at most 32 bytes (many BMCs, ipmi_sim too, refuse whole-record reads, and
//! the crate's reader then yields nothing), and chassis status is sent raw. The crate is
//! blocking: callers run this on a blocking thread, one session at a time per BMC.

use dcmon_probes::{Labels, ProbeOutput};
use ipmi_rs::Ipmi;
use ipmi_rs::connection::{IpmiConnection, LogicalUnit, Message, Request, RequestTargetAddress};
use ipmi_rs::rmcp::{ActivationError, ParseSessionResponseError, Rmcp, V2_0ActivationError};
use ipmi_rs::storage::sdr::record::Record;
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

mod ops;
mod sdr_cache;
mod sel;
mod sensors;

pub use ops::{BmcAnswer, BmcOp, run as run_ops};
pub(crate) use ops::{raw_answer, sdr_text};

#[derive(Debug, Error)]
pub enum BmcError {
    #[error("BMC {addr}: {what}")]
    Session { addr: String, what: String },
    #[error("BMC {addr}: {command} failed: {what}")]
    Command {
        addr: String,
        command: &'static str,
        what: String,
    },
    #[error("BMC {addr}: {command} refused: completion code 0x{cc:02x} ({})", completion(*.cc))]
    Refused {
        addr: String,
        command: &'static str,
        cc: u8,
    },
}

/// What a completion code means (IPMI 2.0 table 5-2), in short.
fn completion(cc: u8) -> &'static str {
    match cc {
        0xC0 => "node busy",
        0xC1 => "invalid command: this BMC does not know it; is fan_profile right?",
        0xC2 => "invalid for this LUN",
        0xC3 => "timeout while processing",
        0xC4 => "out of space",
        0xC5 => "reservation cancelled",
        0xC7 | 0xC8 => "request data length invalid",
        0xC9 => "parameter out of range",
        0xCB => "requested data not present",
        0xCC => "invalid data field",
        0xCE => "response could not be provided",
        0xD4 => "insufficient privilege",
        0xD5 => "not supported in present state",
        _ => "see the BMC's documentation",
    }
}

/// Where the BMC is and how to log in (the password read from its file by the caller).
pub struct BmcLogin<'a> {
    pub address: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a [u8],
}

/// Runs `work` with a login to `bmc` on a blocking thread (ipmi-rs blocks), at most
/// `BMC_SESSIONS` at once. The password is read from its file here and goes nowhere
/// else; `what` names the work if its thread dies (`reader`, `sender`).
pub(crate) async fn on_blocking_thread<T: Send + 'static>(
    bmc: &dcmon_inventory::Bmc,
    what: &'static str,
    work: impl FnOnce(&BmcLogin<'_>) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let _slot = crate::host_round::BMC_SESSIONS.acquire().await;
    let bmc = bmc.clone();
    tokio::task::spawn_blocking(move || {
        let password = crate::fanout_bmc::read_password(&bmc)?;
        work(&BmcLogin {
            address: &bmc.address,
            port: bmc.port,
            user: &bmc.user,
            password: password.as_bytes(),
        })
    })
    .await
    .unwrap_or_else(|e| Err(format!("the BMC {what} stopped: {e}")))
}

/// Why no session opened, in an operator's words. ipmi-rs's errors are nested enums;
/// the causes met in practice are named, the rest shown as the crate gives them.
fn activation_failure(e: &ActivationError, user: &str, timeout: Duration) -> String {
    let detail = format!("{e:?}");
    // Open Session Response status codes that refuse the algorithms offered: 0x04
    // authentication, 0x05 integrity, 0x10 confidentiality, 0x11 no cipher suite matches.
    if let ActivationError::V2_0(V2_0ActivationError::OpenSessionResponseParse(
        ParseSessionResponseError::HaveErrorCode(code),
    )) = e
    {
        let refused = match code {
            Ok(known) => {
                let name = format!("{known:?}");
                name.contains("Algorithm") || name.contains("CipherSuite")
            }
            Err(raw) => matches!(raw, 0x04 | 0x05 | 0x10 | 0x11),
        };
        if refused {
            return format!(
                "the BMC refuses cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128), the \
                 only one dcmon speaks: enable it on the BMC ({detail})"
            );
        }
    }
    if detail.contains("AuthenticationFailed") || detail.contains("Unauthorized") {
        format!("the BMC refused user `{user}` or its password ({detail})")
    } else if detail.contains("WouldBlock") || detail.contains("TimedOut") {
        format!("nothing answered within {timeout:?} (is IPMI over LAN enabled?)")
    } else if detail.contains("ConnectionRefused") {
        "the port is closed (ICMP port unreachable): is this the BMC's address and port?"
            .to_string()
    } else {
        format!("no RMCP+ session ({detail})")
    }
}

/// Bytes asked for per Get SDR: ipmi_sim and many BMCs refuse more than about 32.
const SDR_CHUNK: u8 = 16;

struct Session {
    ipmi: Ipmi<Rmcp>,
    addr: String,
    /// No request went unanswered: closing is worth a try.
    answering: bool,
}

impl Drop for Session {
    /// ipmi-rs never closes its sessions, and a BMC holds only a few (often 4 to 20)
    /// until each times out (about a minute): a poller opening one per round would lock
    /// operators' own ipmitool out. Close Session needs the session's id (BMCs such as
    /// ipmi_sim refuse the by-handle form), which the crate keeps private.
    fn drop(&mut self) {
        if !self.answering {
            return;
        }
        if let Some(id) = self.session_id() {
            let _ = self.raw("close session", 0x06, 0x3C, id.to_le_bytes().to_vec());
        }
    }
}

impl Session {
    fn open(login: &BmcLogin<'_>, timeout: Duration) -> Result<Session, BmcError> {
        let addr = format!("{}:{}", login.address, login.port);
        let failed = |what: String| BmcError::Session {
            addr: addr.clone(),
            what,
        };
        let mut rmcp = Rmcp::new((login.address, login.port), timeout)
            .map_err(|e| failed(format!("cannot open a UDP socket: {e}")))?;
        rmcp.activate(true, Some(login.user), Some(login.password))
            .map_err(|e| failed(activation_failure(&e, login.user, timeout)))?;
        let mut session = Session {
            ipmi: Ipmi::new(rmcp),
            addr,
            answering: true,
        };
        // Set Session Privilege Level: Administrator (the crate stays at User).
        session.raw("set privilege", 0x06, 0x3B, vec![0x04])?;
        Ok(session)
    }

    /// The BMC's id for this session. ipmi-rs 0.6 keeps it private, but its Debug form
    /// shows it (`V2_0(State { .., session_id: N, .. })`): read it there.
    fn session_id(&mut self) -> Option<u32> {
        let state = format!("{:?}", self.ipmi.inner_mut());
        let after = state.split_once("V2_0(State {")?.1;
        let digits = after.split_once("session_id: ")?.1;
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    }

    /// A raw request; the response's data after the completion code, which must be 0.
    fn raw(
        &mut self,
        command: &'static str,
        netfn: u8,
        cmd: u8,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, BmcError> {
        let mut request = Request::new(
            Message::new_raw(netfn, cmd, data),
            RequestTargetAddress::Bmc(LogicalUnit::Zero),
        );
        let response = match self.ipmi.inner_mut().send_recv(&mut request) {
            Ok(response) => response,
            Err(e) => {
                self.answering = false;
                return Err(BmcError::Command {
                    addr: self.addr.clone(),
                    command,
                    what: format!("{e:?}"),
                });
            }
        };
        if response.cc() != 0 {
            return Err(BmcError::Refused {
                addr: self.addr.clone(),
                command,
                cc: response.cc(),
            });
        }
        Ok(response.data().to_vec())
    }

    /// Every SDR record, read in chunks.
    fn sdrs(&mut self) -> Result<Vec<Record>, BmcError> {
        let reservation = self.raw("reserve SDR repository", 0x0A, 0x22, vec![])?;
        let (r0, r1) = (
            reservation.first().copied().unwrap_or(0),
            reservation.get(1).copied().unwrap_or(0),
        );
        let mut records = Vec::new();
        let mut id: u16 = 0;
        // A repository of more than 1,000 records is not a BMC's: stop rather than loop.
        for _ in 0..1000 {
            let [i0, i1] = id.to_le_bytes();
            let header = self.raw("get SDR", 0x0A, 0x23, vec![r0, r1, i0, i1, 0, 5])?;
            if header.len() < 7 {
                break;
            }
            let next = u16::from_le_bytes([header[0], header[1]]);
            let mut bytes = header[2..7].to_vec();
            let length = bytes[4];
            let mut offset = 5u8;
            while offset < 5 + length {
                let ask = SDR_CHUNK.min(5 + length - offset);
                let chunk = self.raw("get SDR", 0x0A, 0x23, vec![r0, r1, i0, i1, offset, ask])?;
                bytes.extend_from_slice(chunk.get(2..).unwrap_or_default());
                offset += ask;
            }
            if let Ok(record) = Record::parse(&bytes) {
                records.push(record);
            }
            if next == 0xFFFF {
                break;
            }
            id = next;
        }
        Ok(records)
    }
}

/// Reads the BMC: device id and firmware (facts), chassis power, every full sensor's
/// reading with its threshold status, and the SEL entries after `sel_cursor` (the
/// record id, in hex, of the newest entry already stored) as log lines. Blocking.
pub fn read(
    login: &BmcLogin<'_>,
    timeout: Duration,
    sel_cursor: Option<&str>,
) -> Result<ProbeOutput, BmcError> {
    let mut s = Session::open(login, timeout)?;
    let mut out = ProbeOutput::default();
    let bmc = || Labels::new([("path", "bmc")]);
    let id = s.raw("get device id", 0x06, 0x01, vec![])?;
    if id.len() >= 11 {
        out.fact("bmc_device_id", &id[0].to_string());
        out.fact("bmc_firmware", &format!("{}.{:02x}", id[2] & 0x7F, id[3]));
        let manufacturer = u32::from_le_bytes([id[6], id[7], id[8], 0]);
        out.fact("bmc_manufacturer_id", &manufacturer.to_string());
    }
    let chassis = s.raw("get chassis status", 0x00, 0x01, vec![])?;
    if let Some(state) = chassis.first() {
        out.gauge("ipmi_chassis_power_on", bmc(), f64::from(state & 1), "");
    }
    let records = sdr_cache::records(&mut s)?;
    // SEL entries name their sensor by number; ipmitool names them from the SDRs too.
    let names: HashMap<u8, String> = records
        .iter()
        .filter_map(|r| Some((r.sensor_number()?.get(), r.id()?.to_string())))
        .collect();
    for r in sensors::readings(&mut s, &records, None) {
        let labels = || {
            Labels::new([
                ("sensor", r.sensor.as_str()),
                ("entity", r.entity.as_str()),
                ("path", "bmc"),
            ])
        };
        out.gauge("ipmi_sensor_status", labels(), r.status, "");
        if let Some((series, unit, value)) = r.value {
            out.gauge(series, labels(), value, unit);
        }
    }
    // The event log is worth having, but not at the price of the readings above.
    if let Err(e) = sel::read(&mut s, &names, sel_cursor, &mut out) {
        out.warnings.push(dcmon_probes::ParseError::ToolFailed {
            tool: "sel".into(),
            message: e.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a BMC that offers only other suites answers to the Open Session Request.
    fn open_session_refused(status: u8) -> ActivationError {
        ActivationError::V2_0(V2_0ActivationError::OpenSessionResponseParse(
            ParseSessionResponseError::HaveErrorCode(TryFrom::try_from(status).map_err(|_| status)),
        ))
    }

    #[test]
    fn a_refused_cipher_suite_says_so() {
        for status in [0x04, 0x05, 0x10, 0x11] {
            let said = activation_failure(
                &open_session_refused(status),
                "admin",
                Duration::from_secs(3),
            );
            assert!(
                said.starts_with("the BMC refuses cipher suite 3 (RAKP-HMAC-SHA1"),
                "{status:#x}: {said}"
            );
        }
        // Out of resources is not about the suite.
        let said = activation_failure(&open_session_refused(0x01), "admin", Duration::from_secs(3));
        assert!(said.starts_with("no RMCP+ session"), "{said}");
    }
}
