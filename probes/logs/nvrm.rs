//! NVIDIA driver (NVRM) kernel messages that mean a GPU is failing: Xid events and a GPU
//! fallen off the bus. Read from any kernel log line (dmesg or the journal), they give
//! the line structured labels (`xid`, `pci`, `pid`, `process`) and a priority, so they
//! can be searched, counted per GPU and Xid code, and alerted on.
//!
//! ```text
//! NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.
//! NVRM: Xid (PCI:0000:03:00): 31, pid='1234', name='python3', 'Illegal memory access'
//! NVRM: Xid (PCI:0000:b9:00): 74, pid=<unknown>, name=<unknown>, NVLink: fatal error detected on link 6(0x10000, ...)
//! NVRM: GPU at PCI:0000:18:00.0 has fallen off the bus.
//! NVRM: GPU 0000:91:00.0: GPU has fallen off the bus.
//! nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up
//! ```

use crate::output::Labels;

/// What one NVRM line says, when it is one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuEvent {
    pub labels: Labels,
    /// Syslog priority: 2 for the Xids that mean the GPU needs a reset or a replacement,
    /// 3 for the rest.
    pub priority: u8,
}

/// Xid codes from NVIDIA's public Xid catalogue (docs.nvidia.com, "XID Errors"), the
/// ones fleets see most, with the name the catalogue gives them and whether the GPU
/// needs a reset, a reboot or a replacement (critical) or the fault is the
/// application's (error).
pub const XIDS: &[(u32, &str, bool)] = &[
    (13, "Graphics Engine Exception", false),
    (31, "GPU memory page fault", false),
    (32, "Invalid or corrupted push buffer stream", false),
    (38, "Driver firmware error", true),
    (43, "GPU stopped processing", false),
    (45, "Preemptive cleanup, due to previous errors", false),
    (48, "Double Bit ECC Error", true),
    (
        54,
        "Auxiliary power is not connected to the GPU board",
        true,
    ),
    (56, "Display Engine error", false),
    (57, "Error programming video memory interface", true),
    (61, "Internal micro-controller breakpoint/warning", true),
    (62, "Internal micro-controller halt", true),
    (
        63,
        "ECC page retirement or row remapping recording event",
        false,
    ),
    (
        64,
        "ECC page retirement or row remapper recording failure",
        true,
    ),
    (68, "NVDEC0 Exception", false),
    (69, "Graphics Engine class error", false),
    (74, "NVLink Error", true),
    (79, "GPU has fallen off the bus", true),
    (92, "High single-bit ECC error rate", false),
    (94, "Contained ECC error", false),
    (95, "Uncontained ECC error", true),
    (109, "Context Switch Timeout Error", false),
    (119, "GSP RPC Timeout", true),
    (120, "GSP Error", true),
    (121, "C2C Link corrected error", false),
    (123, "SPI PMU RPC write failure", true),
    (140, "Unrecovered ECC Error", true),
    (143, "GPU Initialization Failure", true),
    (145, "RLW Error", false),
    (149, "NVLink Fatal error", true),
    (154, "GPU Recovery Action Changed", true),
];

/// The catalogue's name of an Xid code, if it is one dcmon knows.
pub fn xid_name(code: u32) -> Option<&'static str> {
    XIDS.iter().find(|(c, _, _)| *c == code).map(|(_, n, _)| *n)
}

/// Whether Xid `code` means the GPU needs a reset, a reboot or a replacement.
pub fn xid_is_critical(code: u32) -> bool {
    XIDS.iter().any(|(c, _, critical)| *c == code && *critical)
}

/// Gives a kernel log line its GPU event labels and, when the event is more serious
/// than the level the kernel gave the line, its priority.
/// Whether it was one.
pub fn label(entry: &mut crate::output::LogEntry) -> bool {
    let Some(event) = parse(&entry.message) else {
        return false;
    };
    entry.labels = event.labels;
    entry.priority = entry.priority.min(event.priority);
    true
}

/// Reads one kernel message (without its time stamp). None: not an NVRM GPU event.
pub fn parse(message: &str) -> Option<GpuEvent> {
    let message = message.trim_start();
    if message.starts_with("nvidia-nvswitch") {
        return sxid(message);
    }
    let rest = message.strip_prefix("NVRM:")?.trim_start();
    if let Some(after) = rest.strip_prefix("Xid (") {
        return xid(after);
    }
    // The probe-time form, one record of three lines (R525 and newer):
    // `NVRM: The NVIDIA GPU 0000:b3:00.0\nNVRM: (PCI ID: 10de:26b5) installed in this
    // system has\nNVRM: fallen off the bus and is not responding to commands.`
    if let Some(after) = rest.strip_prefix("The NVIDIA GPU ") {
        let whole: String = rest
            .lines()
            .map(|l| l.trim().trim_start_matches("NVRM:").trim())
            .collect::<Vec<_>>()
            .join(" ");
        if !whole.contains("fallen off the bus") {
            return None;
        }
        let address = after.split([' ', '\n']).next()?;
        let pci = bus_of(address)?;
        return Some(GpuEvent {
            labels: Labels::new([("pci", pci.as_str()), ("event", "fallen_off_bus")]),
            priority: 2,
        });
    }
    // `GPU at PCI:0000:18:00.0 has fallen off the bus.`, `GPU at 0000:01:00.0 has fallen
    // off the bus.` (2016 drivers) and `GPU 0000:91:00.0: GPU has fallen off the bus.`
    // (the line after an Xid 79 on current drivers).
    if let Some(after) = rest.strip_prefix("GPU ")
        && rest.contains("fallen off the bus")
    {
        let after = after.strip_prefix("at ").unwrap_or(after);
        let after = after.strip_prefix("PCI:").unwrap_or(after);
        // `0000:18:00.0 has`, `0000:91:00.0: GPU`, `0000:18:00: ...`.
        let address: String = after.split(' ').next()?.trim_end_matches(':').to_string();
        let pci = bus_of(&address)?;
        return Some(GpuEvent {
            labels: Labels::new([("pci", pci.as_str()), ("event", "fallen_off_bus")]),
            priority: 2,
        });
    }
    None
}

/// An NVSwitch error: `nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48
/// LTSSM Fault Up`. One error prints several lines (its `Severity ...` and `Data {...}`
/// lines follow); only the line that says `Fatal` or `Non-fatal` is the event, so each
/// error is one labelled line: `sxid`, `pci` (the switch), `switch`, `severity`, `link`.
fn sxid(message: &str) -> Option<GpuEvent> {
    let (switch, rest) = message.split_once(": SXid (")?;
    let switch = switch.strip_prefix("nvidia-")?;
    let (pci, code, mut fields) = coded(rest)?;
    let (severity, priority) = match fields.next()? {
        "Fatal" => ("fatal", 2),
        "Non-fatal" | "Nonfatal" | "Non-Fatal" => ("nonfatal", 4),
        _ => return None,
    };
    let code = code.to_string();
    let mut pairs = vec![
        ("event", "sxid".to_string()),
        ("pci", pci),
        ("sxid", code),
        ("switch", switch.to_string()),
        ("severity", severity.to_string()),
    ];
    if let Some(link) = fields
        .next()
        .and_then(|f| f.strip_prefix("Link "))
        .and_then(|f| f.split(' ').next())
        .filter(|l| !l.is_empty() && l.len() <= 3 && l.chars().all(|c| c.is_ascii_digit()))
    {
        pairs.push(("link", link.to_string()));
    }
    Some(GpuEvent {
        labels: Labels::new(pairs),
        priority,
    })
}

/// `PCI:0000:3b:00): 79, REST...` (an Xid's or an SXid's head) → the bus, the code and
/// the comma-separated fields after it.
fn coded(after: &str) -> Option<(String, u32, impl Iterator<Item = &str>)> {
    let (address, rest) = after.split_once("):")?;
    let address = address.trim();
    let pci = bus_of(address.strip_prefix("PCI:").unwrap_or(address))?;
    let mut fields = rest.split(',').map(str::trim);
    let code: u32 = fields.next()?.parse().ok()?;
    Some((pci, code, fields))
}

/// `PCI:0000:3b:00): 79, pid=1234, name=python3, ...`
fn xid(after: &str) -> Option<GpuEvent> {
    let (pci, code, fields) = coded(after)?;
    let mut pairs: Vec<(&str, String)> = vec![("pci", pci), ("xid", code.to_string())];
    for field in fields.take(4) {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('\'');
        if value.is_empty() || value == "<unknown>" {
            continue;
        }
        match key.trim() {
            "pid" if value.chars().all(|c| c.is_ascii_digit()) && value.len() <= 10 => {
                pairs.push(("pid", value.to_string()))
            }
            "name" if value.len() <= 64 && !value.contains(char::is_control) => {
                pairs.push(("process", value.to_string()))
            }
            _ => {}
        }
    }
    if let Some(name) = xid_name(code) {
        pairs.push(("xid_name", name.to_string()));
    }
    let critical = xid_is_critical(code);
    Some(GpuEvent {
        labels: Labels::new(pairs),
        priority: if critical { 2 } else { 3 },
    })
}

/// `0000:3b:00`, `0000:3B:00.0`, `00000000:3b:00.0` → `0000:3b:00` (domain, bus, device:
/// the form Xid lines print), lower case; none for anything else.
pub fn bus_of(address: &str) -> Option<String> {
    let address = address.trim().trim_end_matches(['.', ')']);
    let without_function = match address.rsplit_once('.') {
        Some((head, function)) if function.len() == 1 => head,
        _ => address,
    };
    let parts: Vec<&str> = without_function.split(':').collect();
    let [domain, bus, device] = parts[..] else {
        return None;
    };
    let hex = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    if !(hex(domain, 8) && hex(bus, 2) && hex(device, 2)) {
        return None;
    }
    let domain = u32::from_str_radix(domain, 16).ok()?;
    Some(format!(
        "{domain:04x}:{}:{}",
        bus.to_ascii_lowercase(),
        device.to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(message: &str) -> Vec<(String, String)> {
        parse(message)
            .map(|e| e.labels.pairs().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn xid_lines_in_the_forms_drivers_print() {
        let e = parse("NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.").unwrap();
        assert_eq!(e.priority, 2);
        assert_eq!(e.labels.get("xid"), Some("79"));
        assert_eq!(e.labels.get("pci"), Some("0000:3b:00"));
        assert_eq!(e.labels.get("pid"), None);
        assert_eq!(e.labels.get("xid_name"), Some("GPU has fallen off the bus"));
        let e = parse(
            "NVRM: Xid (PCI:0000:03:00): 31, pid='1234', name='python3', 'Illegal memory access'",
        )
        .unwrap();
        assert_eq!(e.priority, 3);
        assert_eq!(e.labels.get("pid"), Some("1234"));
        assert_eq!(e.labels.get("process"), Some("python3"));
        let e =
            parse("NVRM: Xid (PCI:0000:18:00): 79, pid=1234, GPU has fallen off the bus.").unwrap();
        assert_eq!(e.labels.get("pid"), Some("1234"));
        // An older driver's form with the function number; upper-case hex.
        let e = parse("NVRM: Xid (PCI:0000:10:00.0): 48, pid=77, name=train, Ch 00000010").unwrap();
        assert_eq!(e.labels.get("pci"), Some("0000:10:00"));
        assert_eq!(e.labels.get("xid"), Some("48"));
        assert_eq!(e.priority, 2);
        assert_eq!(labels("NVRM: Xid (PCI:0000:B9:00): 74, pid=<unknown>, name=<unknown>, NVLink: fatal error detected on link 6(0x10000, 0x0)")
            .iter().find(|(k, _)| k == "pci").map(|(_, v)| v.as_str()), Some("0000:b9:00"));
        // An Xid the table does not name keeps its code, without a name.
        let e = parse("NVRM: Xid (PCI:0000:3b:00): 999, something new").unwrap();
        assert_eq!(e.labels.get("xid"), Some("999"));
        assert_eq!(e.labels.get("xid_name"), None);
    }

    #[test]
    fn fallen_off_the_bus_without_an_xid() {
        let e = parse("NVRM: GPU at PCI:0000:18:00.0 has fallen off the bus.").unwrap();
        assert_eq!(e.labels.get("pci"), Some("0000:18:00"));
        assert_eq!(e.labels.get("event"), Some("fallen_off_bus"));
        assert_eq!(e.priority, 2);
    }

    /// The probe-time form NVIDIA/NVSentinel#155 shows from a fleet's dmesg (R570): one
    /// record of three lines, and the same words as two records (a host's journal).
    #[test]
    fn fallen_off_the_bus_at_probe_time() {
        let e = parse("NVRM: The NVIDIA GPU 0000:b3:00.0\nNVRM: (PCI ID: 10de:26b5) installed in this system has\nNVRM: fallen off the bus and is not responding to commands.").unwrap();
        assert_eq!(e.labels.get("pci"), Some("0000:b3:00"));
        assert_eq!(e.labels.get("event"), Some("fallen_off_bus"));
        assert_eq!(e.priority, 2);
        let e = parse("NVRM: The NVIDIA GPU 0000:01:00.0 (PCI ID: 10de:2d04) installed in this system has\nNVRM: fallen off the bus and is not responding to commands.").unwrap();
        assert_eq!(e.labels.get("pci"), Some("0000:01:00"));
        // Its first line alone says nothing yet.
        assert!(parse("NVRM: The NVIDIA GPU 0000:b3:00.0").is_none());
        assert!(parse("NVRM: The NVIDIA probe routine failed for 1 device(s).").is_none());
    }

    /// The forms a GPU fallen off the bus is told in besides Xid 79 (gpud's capture of an
    /// HGX guest; an Ubuntu forum post of a 2016 driver), and the NVSwitch SXid lines of
    /// the same capture: one event per error, its follow-up lines none.
    #[test]
    fn fallen_off_the_bus_forms_and_nvswitch_sxids() {
        for (line, pci) in [
            (
                "NVRM: GPU 0000:91:00.0: GPU has fallen off the bus.",
                "0000:91:00",
            ),
            (
                "NVRM: GPU at 0000:01:00.0 has fallen off the bus.",
                "0000:01:00",
            ),
            (
                "NVRM: GPU at PCI:0000:18:00.0 has fallen off the bus.",
                "0000:18:00",
            ),
        ] {
            let e = parse(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(e.labels.get("pci"), Some(pci), "{line}");
            assert_eq!(e.labels.get("event"), Some("fallen_off_bus"));
        }
        assert!(parse("NVRM: GPU 0000:91:00.0: GPU serial number is 1653723052734.").is_none());
        assert!(
            parse("NVRM: GPU at PCI:0000:91:00: GPU-b6c3b2be-c55b-d076-fa0e-d464e4c7e08b")
                .is_none()
        );
        let e = parse(
            "nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up",
        )
        .unwrap();
        assert_eq!(
            e.labels.pairs().to_vec(),
            [
                ("event", "sxid"),
                ("link", "48"),
                ("pci", "0000:06:00"),
                ("severity", "fatal"),
                ("switch", "nvswitch1"),
                ("sxid", "20034"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(e.priority, 2);
        let e = parse("nvidia-nvswitch3: SXid (PCI:0000:08:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error").unwrap();
        assert_eq!(
            (e.priority, e.labels.get("severity")),
            (4, Some("nonfatal"))
        );
        for follow_up in [
            "nvidia-nvswitch2: SXid (PCI:0000:07:00.0): 20034, Severity 1 Engine instance 60 Sub-engine instance 00",
            "nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 20034, Data {0x10000000, 0x10000000, 0x00000000}",
            "nvidia-nvswitch0: SXid (PCI:zz): 20034, Fatal, Link 1",
        ] {
            assert!(parse(follow_up).is_none(), "{follow_up}");
        }
    }

    #[test]
    fn other_lines_are_not_events() {
        for line in [
            "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  560.35.03",
            "NVRM: A GPU crash dump has been created.",
            "NVRM: Xid (PCI:0000:3b:00): notanumber, pid=1",
            "NVRM: Xid (PCI:zzzz:3b:00): 79, pid=1",
            "NVRM: Xid PCI:0000:3b:00 79",
            "nvidia 0000:2a:00.0: enabling device (0000 -> 0003)",
            "",
        ] {
            assert_eq!(parse(line), None, "{line}");
        }
    }

    #[test]
    fn bus_addresses_normalise() {
        assert_eq!(bus_of("00000000:3B:00.0").as_deref(), Some("0000:3b:00"));
        assert_eq!(bus_of("0000:3b:00").as_deref(), Some("0000:3b:00"));
        assert_eq!(bus_of("0001:c1:00.1").as_deref(), Some("0001:c1:00"));
        assert_eq!(bus_of("3b:00.0"), None);
        assert_eq!(bus_of("0000:3b:00:00"), None);
        assert_eq!(bus_of("0000:3bb:00"), None);
    }
}
