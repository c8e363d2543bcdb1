//! PCIe Advanced Error Reporting lines of the kernel log: each error the kernel's AER
//! driver decodes (`drivers/pci/pcie/aer.c`) is printed once as a "PCIe Bus Error" line
//! naming the device that logged it. Labelled (`event=aer`, `pci`, `severity`, `type`),
//! so a GPU's, NIC's or drive's link errors can be searched beside the AER counters the
//! `pcie` probe reads from sysfs. The lines around it ("error received", the status
//! words) are not labelled, so one error is one labelled line.
//!
//! ```text
//! nvme 0000:02:00.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)
//! pcieport 0000:00:1c.5: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Transmitter ID)
//! pcieport 0000:00:1d.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, id=00e8(Receiver ID)
//! nvidia 0000:3b:00.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)
//! ```

use crate::output::Labels;

/// The labels and syslog priority of one AER "PCIe Bus Error" line; none for any other.
pub fn parse(message: &str) -> Option<(Labels, u8)> {
    let (head, rest) = message.split_once(": PCIe Bus Error: severity=")?;
    // `DRIVER 0000:02:00.0` or `DRIVER 0000:00:1c.5: AER` (kernels from 6.x).
    let head = head.strip_suffix(": AER").unwrap_or(head);
    let address = head.rsplit(' ').next()?;
    if !is_pci_address(address) {
        return None;
    }
    let (severity, rest) = rest.split_once(", type=")?;
    let (severity, priority) = match severity.trim() {
        "Corrected" => ("corrected", 4),
        "Uncorrected (Non-Fatal)" | "Uncorrectable (Non-Fatal)" => ("nonfatal", 3),
        "Uncorrected (Fatal)" | "Uncorrectable (Fatal)" => ("fatal", 2),
        _ => return None,
    };
    let kind = match rest.split(',').next()?.trim() {
        "Physical Layer" => "physical_layer",
        "Data Link Layer" => "data_link_layer",
        "Transaction Layer" => "transaction_layer",
        "Inaccessible" => "inaccessible",
        _ => "unknown",
    };
    Some((
        Labels::new([
            ("event", "aer"),
            ("pci", address.to_ascii_lowercase().as_str()),
            ("severity", severity),
            ("type", kind),
        ]),
        priority,
    ))
}

/// `0000:02:00.0`: domain, bus, device, function in hex.
fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split([':', '.']).collect();
    matches!(parts[..], [d, b, dev, f] if hex(d, 4) && hex(b, 2) && hex(dev, 2) && hex(f, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(message: &str) -> Option<(Vec<(String, String)>, u8)> {
        parse(message).map(|(l, p)| (l.pairs().to_vec(), p))
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The shapes of real kernel logs (an NVMe drive's receiver errors, a Skylake root
    /// port's, a 6.x kernel's `AER:` prefix, an old kernel's `id=00e8`).
    #[test]
    fn bus_error_lines_as_kernels_print_them() {
        assert_eq!(
            of(
                "nvme 0000:02:00.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)"
            ),
            Some((
                pairs(&[
                    ("event", "aer"),
                    ("pci", "0000:02:00.0"),
                    ("severity", "corrected"),
                    ("type", "physical_layer")
                ]),
                4
            ))
        );
        let (labels, _) = of("pcieport 0000:00:1c.5: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Transmitter ID)").unwrap();
        assert!(labels.contains(&("pci".into(), "0000:00:1c.5".into())));
        let (labels, _) = of("pcieport 0000:00:1d.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, id=00e8(Receiver ID)").unwrap();
        assert!(labels.contains(&("pci".into(), "0000:00:1d.0".into())));
        let (labels, priority) = of("nvidia 0000:3B:00.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)").unwrap();
        assert_eq!(priority, 3);
        assert!(labels.contains(&("pci".into(), "0000:3b:00.0".into())));
        assert!(labels.contains(&("type".into(), "transaction_layer".into())));
        assert_eq!(
            of("pcieport 0000:00:03.1: PCIe Bus Error: severity=Uncorrected (Fatal), type=Inaccessible, (Unregistered Agent ID)").map(|x| x.1),
            Some(2)
        );
        // Through the kernel event labelling the dmesg and journal readers use.
        let mut entry = crate::output::LogEntry {
            source: "dmesg".into(),
            ts_ms: None,
            priority: 6,
            unit: None,
            message: "nvme 0000:02:00.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)".into(),
            cursor: None,
            labels: Default::default(),
        };
        crate::logs::label_kernel_event(None, &mut entry);
        assert_eq!(
            (entry.priority, entry.labels.get("event")),
            (4, Some("aer"))
        );
        // The lines around it, and anything else, are not labelled.
        for other in [
            "pcieport 0000:00:1d.0: AER: Corrected error received: 0000:02:00.0",
            "nvme 0000:02:00.0:   device [15b7:5006] error status/mask=00000001/0000e000",
            "nvme 0000:02:00.0:    [ 0] RxErr                  (First)",
            "x: PCIe Bus Error: severity=Corrected, type=Physical Layer",
            "nvme 0000:02:00.0: PCIe Bus Error: severity=Sometimes, type=Physical Layer",
            "",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
    }
}
