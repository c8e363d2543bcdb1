//! nvidia probe tests: exact values for every nvidia-smi fixture (CSV with header and
//! units, `noheader,nounits`, XML v10-v13), MIG, absent tool, garbled input.

use super::*;
use crate::output::ParseError;
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/fixtures/nvidia-smi/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn read(name: &str) -> ProbeOutput {
    let text = fixture(name);
    let mut out = ProbeOutput::default();
    if name.ends_with(".xml") {
        xml::parse(&text, &mut out);
    } else {
        csv::parse(&text, QUERY_FIELDS, &mut out);
    }
    out
}

fn gpu0(out: &ProbeOutput, series: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.name == series && s.labels.get("gpu") == Some("0"))
        .map(|s| s.value)
}

/// (file, GPU name, temperature °C, power draw W, memory used MiB)
type Expected = (
    &'static str,
    &'static str,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);
const EXPECTED: &[Expected] = &[
    (
        "q-x-a100-sxm4-v12-telegraf.xml",
        "NVIDIA A100-SXM4-80GB",
        Some(27.0),
        Some(67.03),
        Some(50.0),
    ),
    (
        "q-x-a10g-telegraf.xml",
        "NVIDIA A10G",
        Some(17.0),
        Some(25.58),
        Some(22.0),
    ),
    (
        "q-x-gtx-1070-ti-telegraf.xml",
        "GeForce GTX 1070 Ti",
        Some(39.0),
        None,
        Some(42.0),
    ),
    (
        "q-x-gtx-1660-ti-telegraf.xml",
        "Graphics Device",
        Some(40.0),
        Some(8.93),
        Some(0.0),
    ),
    (
        "q-x-quadro-p2000-v12-telegraf.xml",
        "Quadro P2000",
        Some(34.0),
        Some(4.61),
        Some(1.0),
    ),
    (
        "q-x-rtx-3060-netdata.xml",
        "NVIDIA GeForce RTX 3060 Laptop GPU",
        Some(45.0),
        Some(8.7),
        Some(5.0),
    ),
    (
        "q-x-rtx-3060-v12-telegraf.xml",
        "NVIDIA GeForce RTX 3060",
        Some(42.0),
        Some(11.6), // average_power_draw (11.63 is the instant one; issue 17)
        Some(116.0),
    ),
    (
        "q-x-rtx-3080-v12-telegraf.xml",
        "NVIDIA GeForce RTX 3080",
        Some(31.0),
        Some(22.78),
        Some(1128.0),
    ),
    (
        "q-x-rtx-3090-v12-telegraf.xml",
        "NVIDIA GeForce RTX 3090",
        Some(37.0),
        Some(27.23),
        Some(1.0),
    ),
    (
        "q-x-rtx-4000-sff-ada-v13-telegraf.xml",
        "NVIDIA RTX 4000 SFF Ada Generation",
        Some(38.0),
        Some(8.81), // average_power_draw (8.44 is the instant one; issue 17)
        Some(3534.0),
    ),
    (
        "q-x-rtx-4090-driver-535-netdata.xml",
        "NVIDIA GeForce RTX 4090",
        Some(40.0),
        Some(26.84),
        Some(2.0),
    ),
    (
        "q-x-rtx-pro-6000-driver-580-netdata.xml",
        "NVIDIA RTX PRO 6000 Blackwell",
        Some(37.0),
        Some(66.84),
        None,
    ),
    (
        "q-x-tesla-p100-netdata.xml",
        "Tesla P100-PCIE-16GB",
        Some(38.0),
        Some(26.16),
        Some(0.0),
    ),
    (
        "q-x-tesla-t4-telegraf.xml",
        "Tesla T4",
        Some(40.0),
        Some(26.78),
        Some(1032.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-595.71.05-linux-idle.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(40.0),
        Some(39.32),
        Some(214.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-595.71.05-linux-load.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(45.0),
        Some(111.5),
        Some(819.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-610.57.04-linux-idle.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(33.0),
        Some(39.17),
        Some(211.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-610.57.04-linux-load.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(38.0),
        Some(98.14),
        Some(815.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-610.62-windows-idle.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(40.0),
        Some(39.25),
        Some(797.0),
    ),
    (
        "query-gpu-geforce-rtx-2080-super-610.62-windows-load.csv",
        "NVIDIA GeForce RTX 2080 SUPER",
        Some(44.0),
        Some(97.99),
        Some(1366.0),
    ),
    (
        "query-gpu-geforce-rtx-4080-super-595.71.05-linux-idle.csv",
        "NVIDIA GeForce RTX 4080 SUPER",
        Some(43.0),
        Some(26.2),
        Some(596.0),
    ),
    (
        "query-gpu-geforce-rtx-4080-super-595.71.05-linux-load.csv",
        "NVIDIA GeForce RTX 4080 SUPER",
        Some(46.0),
        Some(84.24),
        Some(1474.0),
    ),
    (
        "query-gpu-h100-80gb-hbm3-590.48.01-linux-idle.csv",
        "NVIDIA H100 80GB HBM3",
        Some(41.0),
        Some(69.85),
        Some(0.0),
    ),
    (
        "query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv",
        "NVIDIA H100 80GB HBM3",
        Some(59.0),
        Some(631.95),
        Some(19818.0),
    ),
    (
        "query-gpu-h100-mig-590.48.01-linux-idle.csv",
        "NVIDIA H100 80GB HBM3",
        Some(42.0),
        Some(71.15),
        Some(59.0),
    ),
    (
        "query-gpu-h100-mig-590.48.01-linux-load.csv",
        "NVIDIA H100 80GB HBM3",
        Some(53.0),
        Some(433.78),
        Some(11125.0),
    ),
    (
        "query-gpu-h200-590.48.01-linux-idle.csv",
        "NVIDIA H200",
        Some(28.0),
        Some(77.71),
        Some(0.0),
    ),
    (
        "query-gpu-h200-590.48.01-linux-load.csv",
        "NVIDIA H200",
        Some(52.0),
        Some(627.4),
        Some(32362.0),
    ),
    (
        "query-gpu-l40s-595.80-linux-idle.csv",
        "NVIDIA L40S",
        Some(63.0),
        Some(144.97),
        Some(0.0),
    ),
    (
        "query-gpu-l40s-595.80-linux-load.csv",
        "NVIDIA L40S",
        Some(54.0),
        Some(110.23),
        Some(1235.0),
    ),
    (
        "query-gpu-tesla-p100-netdata.csv",
        "Tesla P100-PCIE-16GB",
        Some(37.0),
        Some(28.16),
        Some(0.0),
    ),
];

#[test]
fn every_fixture_gives_its_gpu_values() {
    let files: Vec<String> = std::fs::read_dir(format!(
        "{}/../tests/fixtures/nvidia-smi",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    // `nvidia-smi nvlink` and compute-apps captures have their own tests.
    .filter(|f| {
        !f.starts_with("nvlink-")
            && !f.starts_with("query-compute-apps-")
            && !f.starts_with("lspci-")
    })
    .collect();
    assert_eq!(
        files.len(),
        EXPECTED.len(),
        "every nvidia-smi fixture has a row here"
    );
    for (file, name, temp, power, mem_mib) in EXPECTED {
        let out = read(file);
        assert_eq!(out.warnings, [], "{file}");
        let labelled = out
            .samples
            .iter()
            .find(|s| s.name == "nvidia_gpu_temperature_celsius")
            .unwrap();
        assert_eq!(labelled.labels.get("name"), Some(*name), "{file}");
        // Each fixture holds one GPU (its index is the device minor number in XML).
        let first = |series: &str| {
            out.samples
                .iter()
                .find(|s| s.name == series)
                .map(|s| s.value)
        };
        assert_eq!(first("nvidia_gpu_temperature_celsius"), *temp, "{file}");
        assert_eq!(first("nvidia_gpu_power_draw_watts"), *power, "{file}");
        assert_eq!(
            first("nvidia_gpu_memory_used_bytes").map(|b| b / 1048576.0),
            *mem_mib,
            "{file}"
        );
    }
}

#[test]
fn csv_details_h100() {
    let out = read("query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv");
    assert_eq!(
        gpu0(&out, "nvidia_gpu_memory_temperature_celsius"),
        Some(54.0)
    );
    assert_eq!(gpu0(&out, "nvidia_gpu_power_limit_watts"), Some(700.0));
    assert_eq!(gpu0(&out, "nvidia_gpu_utilization_percent"), Some(100.0));
    assert_eq!(gpu0(&out, "nvidia_gpu_sm_clock_hertz"), Some(1.98e9));
    assert_eq!(
        gpu0(&out, "nvidia_gpu_memory_total_bytes"),
        Some(81559.0 * 1048576.0)
    );
    assert_eq!(gpu0(&out, "nvidia_gpu_pcie_link_gen"), Some(5.0));
    assert_eq!(gpu0(&out, "nvidia_gpu_pcie_link_width"), Some(16.0));
    assert_eq!(gpu0(&out, "nvidia_gpu_persistence_mode"), Some(1.0));
    assert_eq!(
        gpu0(&out, "nvidia_gpu_fan_speed_percent"),
        None,
        "[N/A] is absent, not zero"
    );
    let ecc = out
        .samples
        .iter()
        .find(|s| {
            s.name == "nvidia_gpu_ecc_errors_total"
                && s.labels.get("type") == Some("uncorrected")
                && s.labels.get("scope") == Some("aggregate")
        })
        .unwrap();
    assert_eq!(ecc.value, 0.0);
    // 0x...0000 active reasons: nothing throttles.
    let reasons: Vec<_> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvidia_gpu_clock_event_active")
        .collect();
    assert_eq!(reasons.len(), 9);
    assert!(reasons.iter().all(|s| s.value == 0.0));
    let fact = |k: &str| {
        out.facts
            .iter()
            .find(|f| f.key == k)
            .map(|f| f.value.as_str())
    };
    assert_eq!(fact("nvidia_driver_version"), Some("590.48.01"));
    assert_eq!(fact("gpu0_vbios"), Some("96.00.A5.00.01"));
    assert_eq!(fact("gpu_count"), Some("1"));
}

/// The capture's `clocks_event_reasons.active` is 0x4 and its own per-reason columns
/// say `sw_power_cap = Active`, all others `Not Active`: the bit table agrees with NVML.
#[test]
fn clock_event_bits_match_the_per_reason_columns() {
    let out = read("query-gpu-geforce-rtx-2080-super-595.71.05-linux-idle.csv");
    let active: Vec<&str> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvidia_gpu_clock_event_active" && s.value == 1.0)
        .map(|s| s.labels.get("reason").unwrap())
        .collect();
    assert_eq!(active, ["sw_power_cap"]);
}

/// What `nvidia.sh` asks for, printed `noheader,nounits`: columns by position.
#[test]
fn noheader_nounits_uses_the_query_field_order() {
    let line = "0, GPU-5a8f, NVIDIA H100 80GB HBM3, 1650522003820, 590.48.01, 96.00.A5.00.01, 00000000:00:09.0, 59, 631.95, 700.00, 100, 11, [N/A], 1980, 2619, 19818, 81559, 0, 0, 0, 0, 5, 16, Enabled, P0, 5, 16, 1980, 700.00, 54, 0x0000000000000004\n";
    let mut out = ProbeOutput::default();
    csv::parse(line, QUERY_FIELDS, &mut out);
    assert_eq!(out.warnings, []);
    assert_eq!(gpu0(&out, "nvidia_gpu_power_draw_watts"), Some(631.95));
    assert_eq!(
        gpu0(&out, "nvidia_gpu_memory_temperature_celsius"),
        Some(54.0)
    );
    assert_eq!(gpu0(&out, "nvidia_gpu_fan_speed_percent"), None);
    let capped = out
        .samples
        .iter()
        .find(|s| {
            s.name == "nvidia_gpu_clock_event_active"
                && s.labels.get("reason") == Some("sw_power_cap")
        })
        .unwrap();
    assert_eq!(capped.value, 1.0);
}

#[test]
fn all_absent_spellings_are_no_value() {
    let mut text = String::from(
        "index, uuid, name, temperature.gpu, power.draw, fan.speed, utilization.gpu, memory.used\n",
    );
    for (i, absent) in [
        "[N/A]",
        "[Not Supported]",
        "[Unknown Error]",
        "[Requested functionality has been deprecated]",
        "[Function Not Found]",
        "N/A",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "{i}, GPU-{i}, X, {absent}, {absent}, {absent}, {absent}, {absent}\n"
        ));
    }
    let mut out = ProbeOutput::default();
    csv::parse(&text, QUERY_FIELDS, &mut out);
    assert_eq!(out.warnings, []);
    assert!(out.samples.is_empty(), "{:?}", out.samples);
    assert_eq!(
        out.facts
            .iter()
            .find(|f| f.key == "gpu_count")
            .unwrap()
            .value,
        "6"
    );
}

#[test]
fn mig_instances_from_xml() {
    let out = read("q-x-a100-sxm4-v12-telegraf.xml");
    let used: Vec<_> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvidia_mig_memory_used_bytes")
        .collect();
    assert_eq!(used.len(), 4);
    assert_eq!(used[0].labels.get("gpu_instance"), Some("3"));
    assert_eq!(used[0].labels.get("compute_instance"), Some("0"));
    assert_eq!(used[0].value, 12.0 * 1048576.0);
    let sms = out
        .samples
        .iter()
        .find(|s| s.name == "nvidia_mig_multiprocessors")
        .unwrap();
    assert_eq!(sms.value, 14.0);
    let fact = |k: &str| {
        out.facts
            .iter()
            .find(|f| f.key == k)
            .map(|f| f.value.as_str())
    };
    assert_eq!(
        used[0].labels.get("gpu"),
        Some("1"),
        "XML's minor_number is the device index"
    );
    assert_eq!(fact("gpu1_mig_mode"), Some("Enabled"));
    assert_eq!(fact("cuda_version"), Some("12.2"));
    assert_eq!(fact("nvidia_smi_schema"), Some("v12"));
    assert_eq!(fact("gpu1_serial"), Some("1650522003820"));
}

#[test]
fn probe_scripts_output_and_absent_tool() {
    let text = format!(
        "\n==dcmon== csv\n{}\n==dcmon== end\n",
        fixture("query-gpu-l40s-595.80-linux-load.csv")
    );
    let out = parse(&text);
    assert_eq!(gpu0(&out, "nvidia_gpu_power_draw_watts"), Some(110.23));
    let details = parse_details(&format!(
        "\n==dcmon== xml\n{}\n==dcmon== end\n",
        fixture("q-x-tesla-t4-telegraf.xml")
    ));
    assert_eq!(gpu0(&details, "nvidia_gpu_temperature_celsius"), Some(40.0));
    let absent = parse("\n==dcmon== absent\nnvidia-smi is not installed\n\n==dcmon== end\n");
    assert_eq!(
        absent.absent.as_deref(),
        Some("nvidia-smi is not installed")
    );
    assert!(absent.samples.is_empty() && absent.warnings.is_empty());
}

#[test]
fn driver_failures_are_tool_failures() {
    let text = "\n==dcmon== csv\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n==dcmon== end\n";
    let out = parse(text);
    assert!(
        matches!(&out.warnings[..], [ParseError::ToolFailed { tool, .. }] if tool == "nvidia-smi"),
        "{:?}",
        out.warnings
    );
    let mut bad = ProbeOutput::default();
    xml::parse("<nvidia_smi_log><gpu>", &mut bad);
    assert!(
        matches!(&bad.warnings[..], [ParseError::Malformed { section, .. }] if section == "xml")
    );
}

proptest! {
    #[test]
    fn csv_and_xml_never_panic(text in "[ -~\n]{0,400}", cut in 0usize..70000, pos in 0usize..70000, byte in any::<u8>()) {
        let mut out = ProbeOutput::default();
        csv::parse(&text, QUERY_FIELDS, &mut out);
        xml::parse(&text, &mut out);
        nvlink::status(&text, &mut out);
        nvlink::errors(&text, &mut out);
        fabricmanager::parse(&text, &mut out);
        for name in [
            "q-x-a100-sxm4-v12-telegraf.xml",
            "query-gpu-h200-590.48.01-linux-load.csv",
            "nvlink-s-h100-80gb-hbm3-590.48.01.txt",
            "nvlink-e-tesla-v100-sxm2-32gb-ls.txt",
        ] {
            let text = crate::test_support::mutated(&fixture(name), pos, byte, cut);
            let mut out = ProbeOutput::default();
            csv::parse(&text, QUERY_FIELDS, &mut out);
            xml::parse(&text, &mut out);
            nvlink::status(&text, &mut out);
            nvlink::errors(&text, &mut out);
            prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
        }
    }
}

fn power(out: &ProbeOutput) -> Vec<(String, f64)> {
    out.samples
        .iter()
        .filter(|s| s.name == "nvidia_gpu_power_draw_watts")
        .map(|s| (s.labels.get("reading").unwrap_or("").to_string(), s.value))
        .collect()
}

use crate::test_support::{assert_series_unique, fact};

/// Quirk 8: the CSV's `power.draw` is the 1 s average on new drivers while the XML also
/// reports the instant reading: each sample says which it is, one per GPU, the same
/// choice from both paths.
#[test]
fn power_readings_are_labelled_and_agree() {
    let cases: [(&str, &str, f64); 7] = [
        // power.draw.average 631.95, .instant 625.68
        (
            "query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv",
            "average",
            631.95,
        ),
        // Windows: average [N/A], instant 97.99
        (
            "query-gpu-geforce-rtx-2080-super-610.62-windows-load.csv",
            "instant",
            97.99,
        ),
        // Only `power.draw` in the query
        ("query-gpu-tesla-p100-netdata.csv", "draw", 28.16),
        // average_power_draw 11.60, instant_power_draw 11.63
        ("q-x-rtx-3060-v12-telegraf.xml", "average", 11.6),
        ("q-x-rtx-4000-sff-ada-v13-telegraf.xml", "average", 8.81),
        // power_draw N/A, average N/A, instant 66.84
        ("q-x-rtx-pro-6000-driver-580-netdata.xml", "instant", 66.84),
        // gpu_power_readings/power_draw only (driver 535.54)
        ("q-x-a100-sxm4-v12-telegraf.xml", "draw", 67.03),
    ];
    for (file, reading, watts) in cases {
        assert_eq!(power(&read(file)), [(reading.to_string(), watts)], "{file}");
    }
    // The same GPU through both paths: the XML the details probe reads and the CSV the
    // nvidia probe reads, on a driver with both readings, give the same labelled sample.
    let csv = "index, uuid, name, power.draw [W], power.draw.average [W], power.draw.instant [W]\n0, GPU-1, NVIDIA RTX 4000 SFF Ada Generation, 8.81 W, 8.81 W, 8.44 W\n";
    let mut out = ProbeOutput::default();
    csv::parse(csv, QUERY_FIELDS, &mut out);
    assert_eq!(
        power(&out),
        power(&read("q-x-rtx-4000-sff-ada-v13-telegraf.xml"))
    );
}

/// Quirk 8: driver model (WDDM/TCC, Windows only) and MIG mode as facts from both.
#[test]
fn driver_model_and_mig_mode_facts_from_csv_and_xml() {
    let windows = read("query-gpu-geforce-rtx-2080-super-610.62-windows-load.csv");
    assert_eq!(fact(&windows, "gpu0_driver_model"), Some("WDDM"));
    assert_eq!(fact(&windows, "gpu0_mig_mode"), None, "[N/A]: no fact");
    let mig = read("query-gpu-h100-mig-590.48.01-linux-idle.csv");
    assert_eq!(fact(&mig, "gpu0_mig_mode"), Some("Enabled"));
    assert_eq!(fact(&mig, "gpu0_driver_model"), None, "Linux: [N/A]");
    let h100 = read("query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv");
    assert_eq!(fact(&h100, "gpu0_mig_mode"), Some("Disabled"));
    let rtx3080 = read("q-x-rtx-3080-v12-telegraf.xml");
    assert_eq!(fact(&rtx3080, "gpu0_driver_model"), Some("WDDM"));
    let a100 = read("q-x-a100-sxm4-v12-telegraf.xml");
    // Its device minor number is 1.
    assert_eq!(fact(&a100, "gpu1_mig_mode"), Some("Enabled"));
    assert_eq!(fact(&a100, "gpu1_driver_model"), None);
}

fn labelled(out: &ProbeOutput, series: &str, key: &str, value: &str) -> Option<f64> {
    crate::test_support::value(out, series, &[(key, value)])
}

/// Issue 18: PCIe link against its maximum (judged under load only), rows remapped,
/// pages retired, enforced limit, SM clock maximum, recovery action and fabric state,
/// from the real captures.
#[test]
fn gpu_health_from_csv_and_xml() {
    let h100 = read("query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv");
    assert_eq!(gpu0(&h100, "nvidia_gpu_pcie_link_gen_max"), Some(5.0));
    assert_eq!(gpu0(&h100, "nvidia_gpu_pcie_link_width_max"), Some(16.0));
    assert_eq!(
        gpu0(&h100, "nvidia_gpu_pcie_link_downgraded"),
        Some(0.0),
        "Gen5 x16 of Gen5 x16 at 100 %"
    );
    assert_eq!(
        labelled(&h100, "nvidia_gpu_remapped_rows", "type", "correctable"),
        Some(0.0)
    );
    assert_eq!(
        labelled(&h100, "nvidia_gpu_remapped_rows", "type", "uncorrectable"),
        Some(0.0)
    );
    assert_eq!(gpu0(&h100, "nvidia_gpu_remapped_rows_pending"), Some(0.0));
    assert_eq!(gpu0(&h100, "nvidia_gpu_remapped_rows_failure"), Some(0.0));
    assert_eq!(
        gpu0(&h100, "nvidia_gpu_retired_pages"),
        None,
        "[N/A] on H100"
    );
    assert_eq!(
        gpu0(&h100, "nvidia_gpu_enforced_power_limit_watts"),
        Some(700.0)
    );
    assert_eq!(gpu0(&h100, "nvidia_gpu_sm_clock_max_hertz"), Some(1980e6));
    assert_eq!(fact(&h100, "gpu0_recovery_action"), Some("None"));
    assert_eq!(fact(&h100, "gpu0_fabric_state"), Some("Completed"));
    assert_eq!(fact(&h100, "gpu0_fabric_status"), Some("Success"));
    // Idle at Gen1 of Gen3: lowered on purpose, not judged.
    let idle = read("query-gpu-geforce-rtx-2080-super-595.71.05-linux-idle.csv");
    assert_eq!(gpu0(&idle, "nvidia_gpu_pcie_link_gen_max"), Some(3.0));
    assert_eq!(gpu0(&idle, "nvidia_gpu_pcie_link_downgraded"), None);
    assert_eq!(
        gpu0(&idle, "nvidia_gpu_remapped_rows_pending"),
        None,
        "GeForce: [N/A]"
    );
    assert_eq!(fact(&idle, "gpu0_fabric_state"), None, "N/A: no fact");
    // The same GPU at Gen3 x8 of Gen5 x16 under load is trained down; rows pending.
    let degraded = std::fs::read_to_string(format!(
        "{}/../tests/fixtures/nvidia-smi/query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let header: Vec<&str> = degraded.lines().next().unwrap().split(", ").collect();
    let mut row: Vec<String> = degraded
        .lines()
        .nth(1)
        .unwrap()
        .split(", ")
        .map(str::to_string)
        .collect();
    for (field, v) in [
        ("pcie.link.gen.current", "3"),
        ("pcie.link.width.current", "8"),
        ("remapped_rows.pending", "Yes"),
        ("remapped_rows.uncorrectable", "2"),
    ] {
        let i = header.iter().position(|h| *h == field).unwrap();
        row[i] = v.to_string();
    }
    let mut out = ProbeOutput::default();
    csv::parse(
        &format!("{}\n{}\n", header.join(", "), row.join(", ")),
        QUERY_FIELDS,
        &mut out,
    );
    assert_eq!(out.warnings, []);
    assert_eq!(gpu0(&out, "nvidia_gpu_pcie_link_downgraded"), Some(1.0));
    assert_eq!(gpu0(&out, "nvidia_gpu_remapped_rows_pending"), Some(1.0));
    assert_eq!(
        labelled(&out, "nvidia_gpu_remapped_rows", "type", "uncorrectable"),
        Some(2.0)
    );
    // XML: the RTX 4000 Ada idles at Gen1 of Gen4 (not judged), rows remapped 0.
    let ada = read("q-x-rtx-4000-sff-ada-v13-telegraf.xml");
    assert_eq!(gpu0(&ada, "nvidia_gpu_pcie_link_gen_max"), Some(4.0));
    assert_eq!(gpu0(&ada, "nvidia_gpu_pcie_link_width_max"), Some(16.0));
    assert_eq!(gpu0(&ada, "nvidia_gpu_pcie_link_downgraded"), None);
    assert_eq!(
        labelled(&ada, "nvidia_gpu_remapped_rows", "type", "correctable"),
        Some(0.0)
    );
    assert_eq!(gpu0(&ada, "nvidia_gpu_remapped_rows_failure"), Some(0.0));
    assert_eq!(gpu0(&ada, "nvidia_gpu_sm_clock_max_hertz"), Some(3105e6));
}

fn whole(series: &str, out: &ProbeOutput) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.name == series)
        .map(|s| s.value)
}

/// Issue 18: GPUs on the bus or expected by the inventory but not listed by the driver.
#[test]
fn gpus_on_the_bus_and_expected_against_the_driver() {
    let csv = fixture("query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv");
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    // Seven of eight H100s listed by the driver (the capture's row, indexes 0-6).
    let rows: String = (0..7)
        .map(|i| format!("{}\n", row.replacen("0, ", &format!("{i}, "), 1)))
        .collect();
    let pci: String = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
        .iter()
        .map(|bus| format!("0000:{bus}:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)\n"))
        .collect();
    let text = format!(
        "\n==dcmon== csv\n{header}\n{rows}\n==dcmon== pci\n{pci}\n==dcmon== expected\n8\n\n==dcmon== end\n"
    );
    let out = parse(&text);
    assert_eq!(out.warnings, []);
    assert_eq!(whole("nvidia_gpus_visible", &out), Some(7.0));
    assert_eq!(whole("nvidia_gpus_on_bus", &out), Some(8.0));
    assert_eq!(whole("nvidia_gpus_expected", &out), Some(8.0));
    assert_eq!(whole("nvidia_gpu_missing", &out), Some(1.0));
    // Gone from the bus too (surprise removal): the inventory still expects it.
    let seven_on_bus: String = pci.lines().take(7).map(|l| format!("{l}\n")).collect();
    let out = parse(&text.replace(&pci, &seven_on_bus));
    assert_eq!(whole("nvidia_gpus_on_bus", &out), Some(7.0));
    assert_eq!(whole("nvidia_gpu_missing", &out), Some(1.0));
    // The driver failing lists none: every GPU on the bus is missing.
    let failed = parse(&format!(
        "\n==dcmon== csv\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n\n==dcmon== pci\n{pci}\n==dcmon== end\n"
    ));
    assert_eq!(whole("nvidia_gpu_missing", &failed), Some(8.0));
    // Nothing to compare with: nothing judged.
    let plain = parse(&format!("\n==dcmon== csv\n{csv}\n==dcmon== end\n"));
    assert_eq!(whole("nvidia_gpu_missing", &plain), None);
    // A garbled expected count is a warning.
    let bad = parse(&text.replace("expected\n8\n", "expected\neight\n"));
    assert_eq!(bad.warnings.len(), 1, "{:?}", bad.warnings);
    assert_eq!(
        whole("nvidia_gpu_missing", &bad),
        Some(1.0),
        "the bus still counts"
    );
    // The inventory's count reaches the script as an assignment.
    let inputs = inputs(&crate::registry::ProbeInputs {
        cursors: &Default::default(),
        log_files: &[],
        custom_scripts: &[],
        expected_gpus: Some(8),
    });
    assert_eq!(inputs, "DCMON_EXPECTED_GPUS=8\n");
}

fn nvlink_of(name: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    nvlink::status(&fixture(name), &mut out);
    out
}

/// Issue 18: `nvidia-smi nvlink -s` from real captures: an H100's 18 links, and the
/// words of GPUs without NVLink (GeForce, L40S, MIG mode), which are no warning.
#[test]
fn nvlink_status_from_real_captures() {
    let h100 = nvlink_of("nvlink-s-h100-80gb-hbm3-590.48.01.txt");
    assert_eq!(h100.warnings, []);
    let up: Vec<&crate::output::Sample> = h100
        .samples
        .iter()
        .filter(|s| s.name == "nvidia_nvlink_up")
        .collect();
    assert_eq!(up.len(), 18);
    assert!(
        up.iter()
            .all(|s| s.value == 1.0 && s.labels.get("gpu") == Some("0"))
    );
    assert_eq!(up[17].labels.get("link"), Some("17"));
    assert_eq!(up[0].labels.get("name"), Some("NVIDIA H100 80GB HBM3"));
    let speed = h100
        .samples
        .iter()
        .find(|s| s.name == "nvidia_nvlink_speed_bytes_per_second")
        .unwrap();
    assert_eq!(speed.value, 26.562e9);
    for quiet in [
        "nvlink-s-geforce-rtx-2080-super-595.71.05.txt",
        "nvlink-s-l40s-595.80.txt",
        "nvlink-s-h100-mig-590.48.01.txt",
    ] {
        let out = nvlink_of(quiet);
        assert_eq!(out.warnings, [], "{quiet}");
        assert!(out.samples.is_empty(), "{quiet}");
    }
    // A link that dropped reads 0; a line of no known shape is a warning.
    let mut out = ProbeOutput::default();
    nvlink::status(
        "GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n\t Link 2: fast\nLink 9: 1 GB/s\n",
        &mut out,
    );
    let link1 = out
        .samples
        .iter()
        .find(|s| s.name == "nvidia_nvlink_up" && s.labels.get("link") == Some("1"))
        .unwrap();
    assert_eq!((link1.value, link1.labels.get("gpu")), (0.0, Some("3")));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].to_string().contains("line 4"));
    // The details probe reads it from its own section.
    let details = parse_details(&format!(
        "\n==dcmon== xml\n{}\n==dcmon== nvlink\n{}\n==dcmon== end\n",
        fixture("q-x-tesla-t4-telegraf.xml"),
        fixture("nvlink-s-h100-80gb-hbm3-590.48.01.txt")
    ));
    assert_eq!(
        details
            .samples
            .iter()
            .filter(|s| s.name == "nvidia_nvlink_up")
            .count(),
        18
    );
}

fn nvlink_errors_of(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    nvlink::errors(text, &mut out);
    out
}

fn nvlink_error(out: &ProbeOutput, gpu: &str, link: &str, counter: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| {
            s.name == "nvidia_nvlink_errors_total"
                && s.labels.get("gpu") == Some(gpu)
                && s.labels.get("link") == Some(link)
                && s.labels.get("counter") == Some(counter)
        })
        .map(|s| s.value)
}

/// Issue 18: `nvidia-smi nvlink -e` from real captures: a V100 pair whose GPU 0 link 3
/// replays and whose GPU 2 link 0 CRC counter sits at Volta's 65535 ceiling (GPU 1 is
/// not printed: indices keep the driver's numbering), and an H100's 18 links.
#[test]
fn nvlink_error_counters_from_real_captures() {
    let v100 = nvlink_errors_of(&fixture("nvlink-e-tesla-v100-sxm2-32gb-ls.txt"));
    assert_eq!(v100.warnings, []);
    assert_eq!(v100.samples.len(), 2 * 6 * 3);
    assert_eq!(nvlink_error(&v100, "0", "3", "replay"), Some(211.0));
    assert_eq!(nvlink_error(&v100, "0", "3", "crc"), Some(0.0));
    assert_eq!(nvlink_error(&v100, "2", "0", "crc"), Some(65535.0));
    assert_eq!(nvlink_error(&v100, "2", "0", "replay"), Some(2.0));
    assert_eq!(nvlink_error(&v100, "2", "5", "recovery"), Some(0.0));
    assert_eq!(nvlink_error(&v100, "1", "0", "crc"), None);
    let s = &v100.samples[0];
    assert_eq!(s.labels.get("name"), Some("Tesla V100-SXM2-32GB-LS"));
    assert_eq!(
        s.labels.get("uuid"),
        Some("GPU-bd0738fc-434f-4a42-28e0-d699cb37f301")
    );
    assert_series_unique(&v100);
    let h100 = nvlink_errors_of(&fixture("nvlink-e-h100-80gb-hbm3.txt"));
    assert_eq!(h100.warnings, []);
    assert_eq!(nvlink_error(&h100, "0", "17", "recovery"), Some(0.0));
    assert_eq!(h100.samples.len(), 3 * 3);
    // GPUs without NVLink say so in words; N/A gives no sample; a later driver's other
    // counter names are kept; anything else is a warning with its line.
    let other = nvlink_errors_of(
        "GPU 0: NVIDIA L40S (UUID: GPU-1)\nDevice does not have or support Nvlink\nGPU 1: NVIDIA B200 (UUID: GPU-2)\n\t Link 0: Replay Errors: N/A\n\t Link 0: Data Rx Errors: 7\n\t Link 0: CRC Errors: -1\n\t Link 1: Replay: 3\n\t Link 0: Replay Errors: 18446744073709551616\n",
    );
    assert_eq!(nvlink_error(&other, "1", "0", "data_rx"), Some(7.0));
    assert_eq!(other.samples.len(), 1, "{:?}", other.samples);
    let lines: Vec<String> = other.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (warning, line) in lines.iter().zip(["line 6", "line 7", "line 8"]) {
        assert!(warning.contains(line), "{warning}");
    }
    // The details probe reads it from its own section.
    let details = parse_details(&format!(
        "\n==dcmon== nvlink_errors\n{}\n==dcmon== end\n",
        fixture("nvlink-e-tesla-v100-sxm2-32gb-ls.txt")
    ));
    assert_eq!(nvlink_error(&details, "2", "0", "crc"), Some(65535.0));
}

/// Issue 18: the PCIe replay counter of `nvidia-smi -q -x` (`<pci><replay_counter>`), a
/// counter per GPU; real captures read 0, a driver that prints none gives no sample.
#[test]
fn pcie_replays_from_the_xml_report() {
    let replays = |text: &str| -> Vec<f64> {
        let mut out = ProbeOutput::default();
        xml::parse(text, &mut out);
        out.samples
            .iter()
            .filter(|s| s.name == "nvidia_gpu_pcie_replays_total")
            .map(|s| s.value)
            .collect()
    };
    let a100 = fixture("q-x-a100-sxm4-v12-telegraf.xml");
    assert_eq!(replays(&a100), [0.0]);
    assert_eq!(
        replays(&fixture("q-x-gtx-1070-ti-telegraf.xml")),
        [] as [f64; 0]
    );
    let worn = a100.replace(
        "<replay_counter>0</replay_counter>",
        "<replay_counter>1234</replay_counter>",
    );
    assert_eq!(replays(&worn), [1234.0]);
}

fn apps_of(text: &str) -> Vec<(String, f64, f64)> {
    let out = parse(text);
    let mut rows: Vec<(String, f64, f64)> = out
        .samples
        .iter()
        .filter(|s| s.name == "nvidia_gpu_process_memory_bytes")
        .map(|s| {
            let count = out
                .samples
                .iter()
                .find(|c| c.name == "nvidia_gpu_processes" && c.labels == s.labels)
                .map_or(0.0, |c| c.value);
            (format!("{}", s.labels), s.value, count)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Issue 18: who uses each GPU, summed per user and container, from the real capture
/// (more columns than the probe asks for: read by name) and as the script extends it.
#[test]
fn compute_apps_sum_per_user_and_container() {
    let capture = fixture("query-compute-apps-h100-80gb-hbm3-590.48.01-linux-load.csv");
    let gpu_csv = fixture("query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv");
    // The raw capture: no user or container columns; the masked UUID maps to GPU 0.
    let raw = apps_of(&format!(
        "\n==dcmon== csv\n{gpu_csv}\n==dcmon== apps\n{capture}\n==dcmon== end\n"
    ));
    assert_eq!(
        raw,
        [(
            r#"{container="",gpu="0",user="unknown"}"#.to_string(),
            (2566.0 + 1542.0 + 15690.0) * 1048576.0,
            3.0
        )]
    );
    // As the script prints it: the pids' users and containers added.
    let mut lines = capture.lines();
    let header = format!("{}, user, container", lines.next().unwrap());
    let extended: String = lines
        .zip([", alice, ", ", alice, ", ", bob, 3f2a9c1b7d4e"])
        .map(|(l, add)| format!("{l}{add}\n"))
        .collect();
    let rows = apps_of(&format!(
        "\n==dcmon== csv\n{gpu_csv}\n==dcmon== apps\n{header}\n{extended}\n==dcmon== end\n"
    ));
    assert_eq!(
        rows,
        [
            (
                r#"{container="",gpu="0",user="alice"}"#.to_string(),
                (2566.0 + 1542.0) * 1048576.0,
                2.0
            ),
            (
                r#"{container="3f2a9c1b7d4e",gpu="0",user="bob"}"#.to_string(),
                15690.0 * 1048576.0,
                1.0
            ),
        ]
    );
    // nvidia-smi's own complaint, and a short row: warnings with their line.
    let mut out = ProbeOutput::default();
    apps::parse(
        "gpu_uuid, pid, process_name, used_gpu_memory [MiB], user, container\nGPU-1, 12, x\nFailed to initialize NVML: Driver/library version mismatch\n",
        &Default::default(),
        &mut out,
    );
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
}

/// The script's awk names a process's user from /proc and /etc/passwd: a real process
/// of this test, behind a shim nvidia-smi listing it.
#[test]
fn the_script_names_the_user_of_each_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    let shim = dir.path().join("nvidia-smi");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n--query-compute-apps=*) printf 'gpu_uuid, pid, process_name, used_gpu_memory [MiB]\\nGPU-1, {pid}, sleep, 100\\n' ;;\n*) exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let text = crate::test_support::run_script(SCRIPT, &[("PATH", path.as_ref())]);
    child.kill().ok();
    child.wait().ok();
    let apps = Sections::split(&text).get("apps").unwrap().to_string();
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8(me.stdout).unwrap().trim().to_string();
    let row = apps.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("GPU-1, {pid}, sleep, 100, {me}, ")),
        "{apps}"
    );
    // The container: empty on a host, the 12-hex id inside a container (CI may be one).
    let container = row.rsplit(", ").next().unwrap();
    assert!(
        container.is_empty()
            || (container.len() == 12 && container.chars().all(|c| c.is_ascii_hexdigit())),
        "{row}"
    );
}
