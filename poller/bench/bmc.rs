//! (h) One BMC read over the network: dcmon's `bmc` reader (ipmi-rs, RMCP+, in process:
//! power, every sensor, the SEL) against ipmitool -I lanplus doing the same reads the
//! usual way, as three processes (`sdr elist`, `chassis status`, `sel elist`), each
//! against OpenIPMI's ipmi_sim on loopback. Wall time and client CPU per read.

use crate::testbed::ipmi_sim::{IpmiSim, PASSWORD, USER};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// This process's own CPU seconds (user + system).
fn own_cpu() -> f64 {
    crate::cpu_of(std::process::id()).0
}

fn children_cpu() -> f64 {
    crate::cpu_of(std::process::id()).1
}

pub fn bmc_reads(reads: usize) {
    let sim = IpmiSim::start();
    let login = dcmon_poller::bmc::BmcLogin {
        address: "127.0.0.1",
        port: sim.port,
        user: USER,
        password: PASSWORD.as_bytes(),
    };
    let timeout = Duration::from_secs(3);
    // The first read fills the SDR cache; the rest reuse it while the repository stands.
    let started = Instant::now();
    let first = dcmon_poller::bmc::read(&login, timeout, None).expect("the bmc reader answers");
    let cold = started.elapsed();
    let sensors = first
        .samples
        .iter()
        .filter(|s| s.name == "ipmi_sensor_status")
        .count();
    // Ten times the reads: CPU time is counted in 10 ms ticks.
    let (mut ours, cpu_before) = (Vec::new(), own_cpu());
    for _ in 0..reads * 10 {
        let started = Instant::now();
        let out = dcmon_poller::bmc::read(&login, timeout, None).unwrap();
        assert_eq!(out.samples.len(), first.samples.len());
        ours.push(started.elapsed());
    }
    let our_cpu = (own_cpu() - cpu_before) / (reads * 10) as f64;

    let args = sim.ipmitool_args();
    let (mut theirs, cpu_before) = (Vec::new(), children_cpu());
    for _ in 0..reads {
        let started = Instant::now();
        for command in [
            &["sdr", "elist"][..],
            &["chassis", "status"],
            &["sel", "elist"],
        ] {
            let status = Command::new("ipmitool")
                .args(&args)
                .args(command)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "ipmitool {command:?}");
        }
        theirs.push(started.elapsed());
    }
    let their_cpu = (children_cpu() - cpu_before) / reads as f64;
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "\n(h) one BMC read ({sensors} sensors, power, SEL) over RMCP+ from ipmi_sim, median of {reads}:"
    );
    println!(
        "    dcmon bmc reader: first read {:.1} ms (SDRs fetched), then {:.2} ms wall, {:.3} ms CPU;  ipmitool lanplus x3: {:.1} ms wall, {:.2} ms CPU",
        cold.as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e3,
        our_cpu * 1e3,
        theirs.as_secs_f64() * 1e3,
        their_cpu * 1e3
    );
    println!(
        "    => {:.1}x less wall time, {:.1}x less CPU",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        their_cpu / our_cpu.max(1e-6)
    );
}
