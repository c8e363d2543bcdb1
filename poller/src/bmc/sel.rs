//! The BMC's System Event Log over RMCP+, read incrementally: only the entries after
//! the saved cursor cross the network. Entries become log lines (source `sel`) worded
//! like the in-band `ipmi` probe's (`ipmitool sel elist`), with the same cursor (the
//! record id in hex), so either path continues where the other stopped.

use super::{BmcError, Session};
use dcmon_probes::{LogEntry, ProbeOutput};
use ipmi_rs::storage::sdr::SensorType;
use ipmi_rs::storage::sel::{Entry, EventDirection};
use std::collections::HashMap;
use std::fmt;

/// Entries kept from a first read, like the in-band probe's `sel elist last 200`.
const FIRST_READ_KEEP: usize = 200;
/// A SEL holds at most 65,534 records; real ones a few thousand. Stop rather than loop.
const MAX_ENTRIES: usize = 8192;
/// Completion code for "requested record not present" (a cleared SEL, a gone cursor).
const NOT_PRESENT: u8 = 0xCB;

/// Appends the SEL entries after `cursor` to `out.logs`.
pub(super) fn read(
    s: &mut Session,
    names: &HashMap<u8, String>,
    cursor: Option<&str>,
    out: &mut ProbeOutput,
) -> Result<(), BmcError> {
    let info = s.raw("get SEL info", 0x0A, 0x40, vec![])?;
    let count = info
        .get(1..3)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    if count == 0 {
        return Ok(());
    }
    let saved = cursor.and_then(|c| u16::from_str_radix(c, 16).ok());
    // From the saved entry's successor; from the start when none is saved or the saved
    // one is gone (the SEL was cleared since).
    let mut next = 0x0000;
    if let Some(saved) = saved {
        match get_entry(s, saved) {
            Ok((0xFFFF, _)) => return Ok(()),
            Ok((following, _)) => next = following,
            Err(BmcError::Refused {
                cc: NOT_PRESENT, ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut logs = Vec::new();
    for _ in 0..MAX_ENTRIES {
        let (following, record) = get_entry(s, next)?;
        logs.extend(log_line(&record, names));
        if following == 0xFFFF || following == next {
            break;
        }
        next = following;
    }
    if saved.is_none() && logs.len() > FIRST_READ_KEEP {
        logs.drain(..logs.len() - FIRST_READ_KEEP);
    }
    out.logs.extend(logs);
    Ok(())
}

/// Get SEL Entry (netfn Storage, cmd 0x43), the whole 16-byte record, which needs no
/// reservation: (the next record's id, the record).
fn get_entry(s: &mut Session, id: u16) -> Result<(u16, Vec<u8>), BmcError> {
    let [i0, i1] = id.to_le_bytes();
    let data = s.raw("get SEL entry", 0x0A, 0x43, vec![0, 0, i0, i1, 0, 0xFF])?;
    let next = data
        .get(0..2)
        .map_or(0xFFFF, |b| u16::from_le_bytes([b[0], b[1]]));
    Ok((next, data.get(2..).unwrap_or_default().to_vec()))
}

/// One SEL record as a log line: `{sensor}: {event} ({Asserted|Deasserted})`, the
/// sensor named as `ipmitool sel elist` names it: `{type} {SDR name}`, or
/// `{type} #0x{number}` when no SDR has its number.
/// None for a record too short to be one.
pub fn log_line(record: &[u8], names: &HashMap<u8, String>) -> Option<LogEntry> {
    let entry = Entry::parse(record).ok()?;
    let id = u16::from_le_bytes([record[0], record[1]]);
    let (sensor, message, priority) = match &entry {
        Entry::System {
            sensor_type,
            sensor_number,
            event_direction,
            ..
        } => {
            let kind = SensorType::from(*sensor_type);
            let sensor = match names.get(sensor_number) {
                Some(name) => format!("{kind} {name}"),
                None => format!("{kind} #0x{sensor_number:02x}"),
            };
            // One wording whichever path read the entry: ipmi-rs writes "Upper Critical -
            // going high" and "Power Supply Failure detected" where ipmitool writes "Upper
            // Critical going high" and "Failure detected".
            let described = Described(&entry)
                .to_string()
                .replace(" - going ", " going ");
            let kind_name = kind.to_string();
            let event = described
                .strip_prefix(kind_name.as_str())
                .map_or(described.as_str(), str::trim_start)
                .to_string();
            let state = match event_direction {
                EventDirection::Assert => "Asserted",
                EventDirection::Deassert => "Deasserted",
            };
            // The same priority as the in-band `sel elist` path gives the same event.
            let priority = dcmon_probes::ipmi::sel::priority(&sensor, &event, state);
            let message = if event.is_empty() {
                format!("{sensor} ({state})")
            } else {
                format!("{sensor}: {event} ({state})")
            };
            (sensor, message, priority)
        }
        Entry::OemTimestamped {
            ty,
            manufacturer_id,
            data,
            ..
        } => (
            format!("OEM record {ty:02x}"),
            format!(
                "OEM record {ty:02x}: manufacturer {manufacturer_id}, data {}",
                hex(data)
            ),
            4,
        ),
        Entry::OemNotTimestamped { ty, data, .. } => (
            format!("OEM record {ty:02x}"),
            format!("OEM record {ty:02x}: data {}", hex(data)),
            4,
        ),
    };
    let seconds = u32::from_le_bytes([record[3], record[4], record[5], record[6]]);
    // Below 0x20000000 the BMC counts from its own start (its clock was not set yet).
    let timestamped = !matches!(entry, Entry::OemNotTimestamped { .. }) && seconds >= 0x2000_0000;
    Some(LogEntry {
        source: "sel".into(),
        ts_ms: timestamped.then_some(i64::from(seconds) * 1000),
        priority,
        unit: Some(sensor),
        message,
        cursor: Some(format!("{id:x}")),
        labels: Default::default(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ipmi-rs describes an event through a formatter only.
struct Described<'a>(&'a Entry);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.event_description(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as ipmi_sim stores it: CPU1 Temp upper critical going high, asserted.
    const CPU_HOT: [u8; 16] = [
        0x01, 0x00, 0x02, 0x20, 0x1a, 0x00, 0x6b, 0x20, 0x00, 0x04, 0x01, 0x01, 0x01, 0x59, 0x60,
        0x5f,
    ];

    #[test]
    fn a_record_reads_as_ipmitool_words_it() {
        let names = HashMap::from([(1u8, "CPU1 Temp".to_string())]);
        let line = log_line(&CPU_HOT, &names).unwrap();
        assert_eq!(
            line.message,
            "Temperature CPU1 Temp: Upper Critical going high (Asserted)"
        );
        assert_eq!(line.ts_ms, Some(1_795_168_800_000));
        assert_eq!(line.cursor.as_deref(), Some("1"));
        assert_eq!(
            (line.priority, line.unit.as_deref()),
            (2, Some("Temperature CPU1 Temp")),
            "upper critical: crit, as ipmitool's path ranks it"
        );
        let mut deasserted = CPU_HOT;
        deasserted[12] |= 0x80;
        deasserted[3..7].copy_from_slice(&[0x10, 0, 0, 0]); // seconds since the BMC started
        let line = log_line(&deasserted, &HashMap::new()).unwrap();
        assert_eq!(line.priority, 5);
        assert_eq!(line.ts_ms, None, "pre-init time is no time");
        assert!(
            line.message.starts_with("Temperature #0x01: "),
            "{}",
            line.message
        );
    }

    #[test]
    fn any_bytes_read_without_panicking() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let names = HashMap::from([(1u8, "CPU1 Temp".to_string())]);
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let record: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(line) = log_line(&record, &names) {
                assert!(!line.message.is_empty());
                assert_eq!(line.source, "sel");
            }
        }
    }
}
