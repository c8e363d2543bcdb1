//! What discrete sensor states and SEL events mean: the state names ipmitool prints for
//! each sensor type (its `sensor_specific_event_types` and generic event tables, after
//! the IPMI 2.0 specification, tables 42-2 and 42-3), and how serious each one is.
//!
//! Discrete sensors carry up to 15 state bits. `ipmitool sdr elist` prints the asserted
//! ones by name (`Presence detected, Failure detected`); `ipmitool sensor` prints them as
//! a hex word (`0x0180`: bits 0-7 in the first byte, 8-14 in the second, whose top bit
//! is reserved). A sensor's type says what each bit means; `sensor` output does not
//! print the type, so it is told from the name where the name is unambiguous.

/// How serious an asserted state or event is; the order matters (worst last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Routine: presence, power state changes, a log cleared.
    Notice,
    /// Degraded but working: predictive failure, correctable errors, redundancy lost.
    Warning,
    /// Something failed: PSU failure, uncorrectable ECC, critical temperature, watchdog.
    Critical,
}

impl Severity {
    /// The syslog priority of an asserted SEL event of this severity.
    pub fn priority(self) -> u8 {
        match self {
            Severity::Notice => 5,
            Severity::Warning => 4,
            Severity::Critical => 2,
        }
    }

    /// The `ipmi_sensor_status` a discrete sensor with such a state asserted gets
    /// (0 ok, 1 non-critical, 2 critical), as threshold sensors get theirs.
    pub fn status(self) -> f64 {
        match self {
            Severity::Notice => 0.0,
            Severity::Warning => 1.0,
            Severity::Critical => 2.0,
        }
    }
}

use Severity::{Critical as C, Notice as N, Warning as W};

/// One sensor type's states, bit 0 first.
#[derive(Debug)]
pub struct StateTable {
    /// The IPMI sensor type code (or the generic event/reading type for shared tables).
    pub code: u8,
    pub name: &'static str,
    pub states: &'static [(&'static str, Severity)],
    /// Words in a sensor's name that say it is of this type (lower case); `None` for a
    /// table no name picks (a name alone cannot tell it).
    name_words: &'static [&'static str],
}

/// The sensor-specific tables dcmon names states from (IPMI 2.0 table 42-3, as ipmitool
/// prints them), then the generic ones (table 42-2) that BMCs use for redundancy and
/// presence sensors.
pub static TABLES: &[StateTable] = &[
    StateTable {
        code: 0x05,
        name: "Physical Security",
        states: &[
            ("General Chassis intrusion", W),
            ("Drive Bay intrusion", W),
            ("I/O Card area intrusion", W),
            ("Processor area intrusion", W),
            ("System unplugged from LAN", W),
            ("Unauthorized dock", W),
            ("FAN area intrusion", W),
        ],
        name_words: &["intru"],
    },
    StateTable {
        code: 0x07,
        name: "Processor",
        states: &[
            ("IERR", C),
            ("Thermal Trip", C),
            ("FRB1/BIST failure", C),
            ("FRB2/Hang in POST failure", C),
            ("FRB3/Processor startup/init failure", C),
            ("Configuration Error", C),
            ("SM BIOS Uncorrectable CPU-complex Error", C),
            ("Presence detected", N),
            ("Disabled", W),
            ("Terminator presence detected", N),
            ("Throttled", W),
            ("Uncorrectable machine check exception", C),
            ("Correctable machine check error", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x08,
        name: "Power Supply",
        states: &[
            ("Presence detected", N),
            ("Failure detected", C),
            ("Predictive failure", W),
            ("Power Supply AC lost", C),
            ("AC lost or out-of-range", C),
            ("AC out-of-range, but present", W),
            ("Config Error", W),
            ("Power Supply Inactive", N),
        ],
        name_words: &["ps", "psu", "power supply"],
    },
    StateTable {
        code: 0x09,
        name: "Power Unit",
        states: &[
            ("Power off/down", N),
            ("Power cycle", N),
            ("240VA power down", W),
            ("Interlock power down", W),
            ("AC lost", C),
            ("Soft-power control failure", C),
            ("Failure detected", C),
            ("Predictive failure", W),
        ],
        name_words: &["power unit"],
    },
    StateTable {
        code: 0x0c,
        name: "Memory",
        states: &[
            ("Correctable ECC", W),
            ("Uncorrectable ECC", C),
            ("Parity", C),
            ("Memory Scrub Failed", C),
            ("Memory Device Disabled", W),
            ("Correctable ECC logging limit reached", W),
            ("Presence Detected", N),
            ("Configuration Error", C),
            ("Spare", N),
            ("Throttled", W),
            ("Critical Overtemperature", C),
        ],
        name_words: &["memory", "ecc"],
    },
    StateTable {
        code: 0x0d,
        name: "Drive Slot",
        states: &[
            ("Drive Present", N),
            ("Drive Fault", C),
            ("Predictive Failure", W),
            ("Hot Spare", N),
            ("Parity Check In Progress", N),
            ("In Critical Array", C),
            ("In Failed Array", C),
            ("Rebuild In Progress", W),
            ("Rebuild Aborted", C),
        ],
        name_words: &["drive", "hdd", "disk"],
    },
    StateTable {
        code: 0x10,
        name: "Event Logging Disabled",
        states: &[
            ("Correctable memory error logging disabled", W),
            ("Event logging disabled", W),
            ("Log area reset/cleared", N),
            ("All event logging disabled", W),
            ("Log full", W),
            ("Log almost full", N),
        ],
        name_words: &["event log", "sel"],
    },
    StateTable {
        code: 0x11,
        name: "Watchdog 1",
        states: &[
            ("BIOS Reset", C),
            ("OS Reset", C),
            ("OS Shut Down", C),
            ("OS Power Down", C),
            ("OS Power Cycle", C),
            ("OS NMI/Diag Interrupt", C),
            ("OS Expired", C),
            ("OS pre-timeout Interrupt", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x12,
        name: "System Event",
        states: &[
            ("System Reconfigured", N),
            ("OEM System boot event", N),
            ("Undetermined system hardware failure", C),
            ("Entry added to auxiliary log", N),
            ("PEF Action", N),
            ("Timestamp Clock Sync", N),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x13,
        name: "Critical Interrupt",
        states: &[
            ("NMI/Diag Interrupt", C),
            ("Bus Timeout", C),
            ("I/O Channel check NMI", C),
            ("Software NMI", W),
            ("PCI PERR", C),
            ("PCI SERR", C),
            ("EISA failsafe timeout", C),
            ("Bus Correctable error", W),
            ("Bus Uncorrectable error", C),
            ("Fatal NMI", C),
            ("Bus Fatal Error", C),
            ("Bus Degraded", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x1f,
        name: "OS Boot",
        states: &[
            ("A: boot completed", N),
            ("C: boot completed", N),
            ("PXE boot completed", N),
            ("Diagnostic boot completed", N),
            ("CD-ROM boot completed", N),
            ("ROM boot completed", N),
            ("boot completed - device not specified", N),
            ("Installation started", N),
            ("Installation completed", N),
            ("Installation aborted", W),
            ("Installation failed", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x20,
        name: "OS Stop/Shutdown",
        states: &[
            ("Error during system startup", C),
            ("Run-time critical stop", C),
            ("OS graceful stop", N),
            ("OS graceful shutdown", N),
            ("PEF initiated soft shutdown", N),
            ("Agent not responding", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x22,
        name: "System ACPI Power State",
        states: &[
            ("S0/G0: working", N),
            (
                "S1: sleeping with system hw & processor context maintained",
                N,
            ),
            ("S2: sleeping, processor context lost", N),
            (
                "S3: sleeping, processor & hw context lost, memory retained",
                N,
            ),
            ("S4: non-volatile sleep/suspend-to-disk", N),
            ("S5/G2: soft-off", N),
            ("S4/S5: soft-off", N),
            ("G3: mechanical off", N),
            ("Sleeping in S1/S2/S3 state", N),
            ("G1: sleeping", N),
            ("S5: entered by override", N),
            ("Legacy ON state", N),
            ("Legacy OFF state", N),
            ("Unknown", N),
        ],
        name_words: &["acpi"],
    },
    StateTable {
        code: 0x23,
        name: "Watchdog 2",
        states: &[
            ("Timer expired", C),
            ("Hard reset", C),
            ("Power down", C),
            ("Power cycle", C),
            ("Reserved", N),
            ("Reserved", N),
            ("Reserved", N),
            ("Reserved", N),
            ("Timer interrupt", W),
        ],
        name_words: &["watchdog"],
    },
    StateTable {
        code: 0x28,
        name: "Management Subsystem Health",
        states: &[
            ("Sensor access degraded or unavailable", W),
            ("Controller access degraded or unavailable", W),
            ("Management controller off-line", C),
            ("Management controller unavailable", C),
            ("Sensor failure", W),
            ("FRU failure", W),
        ],
        name_words: &[],
    },
    StateTable {
        code: 0x29,
        name: "Battery",
        states: &[("Low", W), ("Failed", C), ("Presence Detected", N)],
        name_words: &["battery", "megacell"],
    },
    // Generic event/reading type 0x0b: redundancy, used by "Fans", "PS Redundancy".
    StateTable {
        code: 0x0b,
        name: "Redundancy",
        states: &[
            ("Fully Redundant", N),
            ("Redundancy Lost", C),
            ("Redundancy Degraded", W),
            ("Non-Redundant: Sufficient from Redundant", W),
            ("Non-Redundant: Sufficient from Insufficient", W),
            ("Non-Redundant: Insufficient Resources", C),
            ("Redundancy Degraded from Fully Redundant", W),
            ("Redundancy Degraded from Non-redundant", W),
        ],
        // HPE names its redundancy sensors in the plural: `Power Supplies`, `Fans`.
        name_words: &["redundan", "power supplies", "fans"],
    },
    // Generic 0x08: presence (bit 0 absent, bit 1 present), used by "Fan 1 Presence".
    StateTable {
        code: 0x08,
        name: "Device Presence",
        states: &[("Device Absent", N), ("Device Present", N)],
        name_words: &[],
    },
    // Generic 0x07: severity transitions.
    StateTable {
        code: 0x07,
        name: "Severity",
        states: &[
            ("Transition to OK", N),
            ("Transition to Non-critical from OK", W),
            ("Transition to Critical from less severe", C),
            ("Transition to Non-recoverable from less severe", C),
            ("Transition to Non-critical from more severe", W),
            ("Transition to Critical from Non-recoverable", C),
            ("Transition to Non-recoverable", C),
            ("Monitor", N),
            ("Informational", N),
        ],
        name_words: &[],
    },
];

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The table a sensor's name picks (`PS1 Status`, `Chassis Intru`, `PS Redundancy`), or
/// none when the name says nothing certain. Words are matched whole-word for short ones
/// (`ps` in `PS1`, not in `Temps`), and redundancy wins over the device it concerns.
pub fn table_for_name(sensor: &str) -> Option<&'static StateTable> {
    let lower = sensor.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |word: &str| {
        if word.len() <= 3 {
            words.contains(&word)
        } else {
            lower.contains(word)
        }
    };
    if is_threshold_name(sensor) {
        return None;
    }
    let redundancy = TABLES.iter().find(|t| t.name == "Redundancy")?;
    if redundancy.name_words.iter().any(|w| has(w)) {
        return Some(redundancy);
    }
    TABLES.iter().find(|t| t.name_words.iter().any(|w| has(w)))
}

/// Temperature, voltage, current and fan speed sensors are threshold sensors, whatever
/// else their name says (`PS1 Temp`, `Memory VR Temp`): no state table is theirs.
fn is_threshold_name(sensor: &str) -> bool {
    let lower = sensor.to_ascii_lowercase();
    [
        "temp",
        "volt",
        "vcc",
        "rpm",
        "tach",
        "current",
        "curr",
        "power in",
        "watts",
        "dutycycle",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The sensor-specific table of a sensor type code (`sdr -v` prints it:
/// `Sensor Type (Discrete): Power Supply (0x08)`); the generic tables share codes with
/// sensor types and are never picked by code.
pub fn table_for_code(code: u8) -> Option<&'static StateTable> {
    const GENERIC: [&str; 3] = ["Redundancy", "Device Presence", "Severity"];
    TABLES
        .iter()
        .find(|t| t.code == code && !GENERIC.contains(&t.name))
}

/// The one table that defines every named state (`Presence detected, Failure detected`
/// is a power supply), using the sensor's name to choose between tables that share
/// them; none when no table, or more than one, fits.
pub fn table_for_states(sensor: &str, states: &[&str]) -> Option<&'static StateTable> {
    if states.is_empty() || is_threshold_name(sensor) {
        return None;
    }
    let fits: Vec<&'static StateTable> = TABLES
        .iter()
        .filter(|t| {
            states
                .iter()
                .all(|s| t.states.iter().any(|(name, _)| same(name, s)))
        })
        .collect();
    match fits[..] {
        [one] => Some(one),
        [] => None,
        _ => table_for_name(sensor).filter(|t| fits.iter().any(|f| std::ptr::eq(*f, *t))),
    }
}

/// The severity of a state named in any table (`Failure detected`), else of a threshold
/// event (`Upper Critical going high`); none for a name no table holds.
pub fn severity_of(state: &str) -> Option<Severity> {
    let state = state.trim();
    if let Some(severity) = TABLES
        .iter()
        .flat_map(|t| t.states.iter())
        .filter(|(name, _)| same(name, state))
        .map(|(_, severity)| *severity)
        .max()
    {
        return Some(severity);
    }
    threshold_event(state)
}

/// `Lower Non-critical going low`, `Upper Critical going high`, `Upper Non-recoverable
/// going high` (table 42-2, threshold sensors).
fn threshold_event(event: &str) -> Option<Severity> {
    let lower = event.to_ascii_lowercase();
    if !(lower.starts_with("upper ") || lower.starts_with("lower ")) || !lower.contains("going") {
        return None;
    }
    Some(if lower.contains("non-critical") {
        Severity::Warning
    } else {
        Severity::Critical
    })
}

/// The severity of one SEL event, from its sensor column (`Power Supply PS1 Status`,
/// `Watchdog2 #0x81`) and event text. Watchdog events are critical whatever they say
/// (the OS stopped answering); events no table names are warnings (unknown, so not
/// routine).
pub fn event_severity(sensor: &str, event: &str) -> Severity {
    let lower = sensor.to_ascii_lowercase();
    if lower.starts_with("watchdog") {
        return Severity::Critical;
    }
    // Events print as `Failure detected`, sometimes with data: `Configuration Error ()`
    // or `Config Error : Vendor mismatch`; the table name is before any of it.
    let head = event
        .split([':', '('])
        .next()
        .unwrap_or(event)
        .trim_end_matches(['.', ' ']);
    // The event's own table first (by the sensor type at the start of the column), so
    // a processor's `Presence detected` and a PSU's read alike but `Failure detected`
    // of a power unit is critical. The whole text first: some names hold a colon
    // (`S5/G2: soft-off`).
    let table = TABLES
        .iter()
        .find(|t| lower.starts_with(&t.name.to_ascii_lowercase()));
    for text in [event.trim(), head] {
        if let Some(table) = table
            && let Some((_, severity)) = table.states.iter().find(|(name, _)| same(name, text))
        {
            return *severity;
        }
        if let Some(severity) = severity_of(text) {
            return severity;
        }
    }
    oem_words(head).unwrap_or(Severity::Warning)
}

/// Words vendors use in their own event texts (`Fan Redundancy Lost`, `PSU failure`).
fn oem_words(event: &str) -> Option<Severity> {
    let lower = event.to_ascii_lowercase();
    if ["fail", "fault", "uncorrectable", "lost", "critical", "trip"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Some(Severity::Critical);
    }
    None
}

/// The asserted state bits of `ipmitool sensor`'s status word `0xAABB`: AA holds bits
/// 0-7, BB bits 8-14 (its top bit is reserved and often set). None for anything else.
pub fn state_bits(word: &str) -> Option<u16> {
    let hex = word.trim().strip_prefix("0x")?;
    if hex.len() != 4 {
        return None;
    }
    let value = u16::from_str_radix(hex, 16).ok()?;
    let (low, high) = (value >> 8, value & 0x7f);
    Some(low | (high << 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_words_read_as_ipmitool_prints_them() {
        assert_eq!(state_bits("0x0100"), Some(0b1));
        assert_eq!(state_bits("0x0180"), Some(0b1), "reserved bit 15 ignored");
        assert_eq!(state_bits("0x0280"), Some(0b10));
        assert_eq!(state_bits("0x4080"), Some(0b100_0000));
        assert_eq!(state_bits("0x0001"), Some(1 << 8));
        assert_eq!(state_bits("0x00ff"), Some(0x7f << 8));
        assert_eq!(state_bits("0x0000"), Some(0));
        for bad in ["na", "0x0", "0x12345", "ok", "0xzzzz", ""] {
            assert_eq!(state_bits(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_pick_tables_only_when_certain() {
        let name = |s: &str| table_for_name(s).map(|t| t.name);
        assert_eq!(name("PS1 Status"), Some("Power Supply"));
        assert_eq!(name("Power Supply 2"), Some("Power Supply"));
        assert_eq!(name("PSU2 Status"), Some("Power Supply"));
        assert_eq!(name("Chassis Intru"), Some("Physical Security"));
        assert_eq!(name("Intrusion"), Some("Physical Security"));
        assert_eq!(name("PS Redundancy"), Some("Redundancy"));
        assert_eq!(name("Fan Redundancy"), Some("Redundancy"));
        assert_eq!(name("Memory Status"), Some("Memory"));
        assert_eq!(name("Megacell Status"), Some("Battery"));
        assert_eq!(name("Watchdog2"), Some("Watchdog 2"));
        for unknown in [
            "PS1 Temp",
            "UID",
            "SysHealth_Stat",
            "Fan 1 Presence",
            "Temps",
            "CPU1 Vcore",
        ] {
            assert_eq!(name(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn states_pick_the_one_table_defining_them_all() {
        let name = |sensor: &str, s: &[&str]| table_for_states(sensor, s).map(|t| t.name);
        assert_eq!(
            name("Power Supply 1", &["Presence detected", "Failure detected"]),
            Some("Power Supply")
        );
        assert_eq!(
            name("Anything", &["Power Supply AC lost"]),
            Some("Power Supply")
        );
        assert_eq!(
            name("PS2 Status", &["Presence detected"]),
            Some("Power Supply")
        );
        assert_eq!(
            name("CPU1 Status", &["Presence detected"]),
            None,
            "ambiguous"
        );
        assert_eq!(name("X", &["Fully Redundant"]), Some("Redundancy"));
        assert_eq!(name("X", &["Not a state"]), None);
        assert_eq!(name("X", &[]), None);
    }

    #[test]
    fn sel_events_get_the_severity_their_tables_give() {
        let s = event_severity;
        assert_eq!(
            s("Power Supply PS1 Status", "Failure detected"),
            Severity::Critical
        );
        assert_eq!(
            s("Power Supply #0x51", "Power Supply AC lost"),
            Severity::Critical
        );
        assert_eq!(s("Power Supply PS2", "Presence detected"), Severity::Notice);
        assert_eq!(s("Power Unit #0x01", "Power off/down"), Severity::Notice);
        assert_eq!(s("Memory #0x53", "Uncorrectable ECC"), Severity::Critical);
        assert_eq!(s("Memory DIMM_A1", "Correctable ECC"), Severity::Warning);
        assert_eq!(
            s("Temperature CPU1 Temp", "Upper Critical going high"),
            Severity::Critical
        );
        assert_eq!(
            s("Temperature CPU1 Temp", "Upper Non-critical going high"),
            Severity::Warning
        );
        assert_eq!(s("Watchdog2 #0x81", "Hard reset"), Severity::Critical);
        assert_eq!(
            s("Watchdog2 IPMI Watchdog", "Timer interrupt"),
            Severity::Critical
        );
        assert_eq!(
            s("Physical Security #0x51", "General Chassis intrusion"),
            Severity::Warning
        );
        assert_eq!(
            s("System ACPI Power State #0x1", "S5/G2: soft-off"),
            Severity::Notice
        );
        assert_eq!(
            s("System Event #0x83", "Timestamp Clock Sync"),
            Severity::Notice
        );
        assert_eq!(
            s("Event Logging Disabled SEL", "Log area reset/cleared"),
            Severity::Notice
        );
        assert_eq!(s("Processor CPU1", "IERR"), Severity::Critical);
        assert_eq!(s("Fan FAN1", "Redundancy Lost"), Severity::Critical);
        assert_eq!(
            s("OEM #0xff", "OEM-specific thing"),
            Severity::Warning,
            "unknown"
        );
        assert_eq!(
            s("Power Supply PS1", "Config Error : Vendor mismatch"),
            Severity::Warning
        );
        assert_eq!(Severity::Critical.priority(), 2);
        assert_eq!(Severity::Notice.priority(), 5);
    }
}
