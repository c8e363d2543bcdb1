//! `lspci -Dnn -d 10de:`: the NVIDIA devices on the host's PCIe bus, whatever the driver
//! sees. A GPU that fell off the bus, or that the driver failed to initialise, is still
//! here (or gone from here too, after a surprise removal) while `nvidia-smi` no longer
//! lists it: comparing the two, and both with the inventory's `expected_gpus`, finds
//! the missing GPU.
//!
//! ```text
//! 0000:17:00.0 3D controller [0302]: NVIDIA Corporation GA100GL [A30 PCIe] [10de:20b7] (rev a1)
//! 0000:07:00.0 Bridge [0680]: NVIDIA Corporation Device [10de:1af1] (rev a1)
//! ```

use crate::output::ProbeOutput;
use std::collections::BTreeSet;

/// What the bus holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OnBus {
    pub gpus: usize,
    pub nvswitches: usize,
}

/// Counts GPUs (classes 0300 VGA and 0302 3D controller) by their bus, so the SR-IOV
/// virtual functions of a vGPU host (`51:00.4`, `51:00.5`, ... on the GPU's own bus)
/// count once, and NVSwitches (class 0680, "other bridge"). NVIDIA's old nForce
/// chipsets put their Ethernet in class 0680 too (`Bridge [0680]: nVidia Corporation
/// MCP61 Ethernet`, as Ubuntu forum posts show): a 0680 function that names itself an
/// MCP part or Ethernet is no NVSwitch. Other NVIDIA functions (the audio, USB and UCSI
/// functions of consumer boards) are read and not counted; a line of no known shape is
/// a warning.
pub fn parse(text: &str, out: &mut ProbeOutput) -> OnBus {
    let mut gpu_buses = BTreeSet::new();
    let mut nvswitches = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((address, class)) = address_and_class(line) else {
            out.not_understood("pci", n + 1, line);
            continue;
        };
        match class {
            "0300" | "0302" => {
                gpu_buses.insert(address);
            }
            "0680" if !(line.contains(" MCP") || line.contains("Ethernet")) => nvswitches += 1,
            _ => {}
        }
    }
    OnBus {
        gpus: gpu_buses.len(),
        nvswitches,
    }
}

/// `0000:17:00.0 3D controller [0302]: ...` → (`0000:17`, `0302`); without `-D` the
/// domain is 0000.
fn address_and_class(line: &str) -> Option<(String, &str)> {
    let (address, rest) = line.trim().split_once(' ')?;
    let parts: Vec<&str> = address.split(':').collect();
    let (domain, bus, device_function) = match parts[..] {
        [domain, bus, df] => (domain, bus, df),
        [bus, df] => ("0000", bus, df),
        _ => return None,
    };
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    let (device, function) = device_function.split_once('.')?;
    if !(hex(domain) && hex(bus) && hex(device) && hex(function)) {
        return None;
    }
    let class = rest.split_once(" [")?.1.split_once("]:")?.0;
    (class.len() == 4 && hex(class))
        .then(|| (format!("{domain}:{}", bus.to_ascii_lowercase()), class))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_bus(text: &str) -> (OnBus, usize) {
        let mut out = ProbeOutput::default();
        let counted = parse(text, &mut out);
        (counted, out.warnings.len())
    }

    #[test]
    fn gpus_by_bus_and_nvswitches() {
        // An HGX-shaped host: eight GPUs on their own buses, four NVSwitches.
        let hgx: String = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
            .iter()
            .map(|bus| format!("0000:{bus}:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)\n"))
            .chain((0..4).map(|i| format!("0000:0{}:00.0 Bridge [0680]: NVIDIA Corporation Device [10de:22a3] (rev a1)\n", i + 5)))
            .collect();
        assert_eq!(
            on_bus(&hgx),
            (
                OnBus {
                    gpus: 8,
                    nvswitches: 4
                },
                0
            )
        );
        // Real lines (public docs and bug reports) without a domain; a consumer board's
        // audio function; SR-IOV virtual functions of one A40 counted once.
        let text = "17:00.0 3D controller [0302]: NVIDIA Corporation GA100GL [A30 PCIe] [10de:20b7] (rev a1)\n\
                    01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU104 [GeForce RTX 2080 SUPER] [10de:1e81] (rev a1)\n\
                    01:00.1 Audio device [0403]: NVIDIA Corporation TU104 HD Audio Controller [10de:10f8] (rev a1)\n\
                    51:00.4 3D controller [0302]: NVIDIA Corporation GA102GL [A40] [10de:2235] (rev a1)\n\
                    51:00.5 3D controller [0302]: NVIDIA Corporation GA102GL [A40] [10de:2235] (rev a1)\n\
                    51:01.0 3D controller [0302]: NVIDIA Corporation GA102GL [A40] [10de:2235] (rev a1)\n";
        assert_eq!(
            on_bus(text),
            (
                OnBus {
                    gpus: 3,
                    nvswitches: 0
                },
                0
            )
        );
        assert_eq!(on_bus(""), (OnBus::default(), 0));
        // A real HGX H100 (starlab3030/rhel-ai): 8 GPUs and 4 NVSwitches, named.
        let captured = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/nvidia-smi/lspci-dnn-h100-sxm5-8-gpus-4-nvswitches.txt"
        ))
        .unwrap();
        assert_eq!(
            on_bus(&captured),
            (
                OnBus {
                    gpus: 8,
                    nvswitches: 4
                },
                0
            )
        );
        // An nForce desktop: its Ethernet is class 0680 and no NVSwitch.
        let nforce = "00:07.0 Bridge [0680]: nVidia Corporation MCP61 Ethernet [10de:03ef] (rev a2)\n\
                      00:14.0 Bridge [0680]: nVidia Corporation MCP51 Ethernet Controller [10de:0269] (rev a3)\n";
        assert_eq!(on_bus(nforce), (OnBus::default(), 0));
        // lspci's own complaint and garbage are warnings, not devices.
        let (counted, warnings) =
            on_bus("pcilib: Cannot open /proc/bus/pci\nzz:00.0 x [0302]: y\n");
        assert_eq!((counted, warnings), (OnBus::default(), 2));
    }
}
