//! (l) One Redfish read of a BMC with a warm session: dcmon's reader (Chassis, Thermal,
//! Power, System, Manager and the new entries of two log services, parsed into samples)
//! against curl fetching the same resources with the same session token, each from
//! DMTF's Redfish Mockup Server over HTTPS on loopback. Wall time and client CPU per
//! read, and how many BMCs one core reads in 30 s at that CPU cost.

use crate::testbed::redfish::{Certs, Mockup};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn redfish_reads(reads: usize) {
    one_read(reads, false);
    one_read(reads, true);
}

/// One read, against the server as shipped (a connection a request) or speaking
/// HTTP/1.1 with keep-alive, as BMCs do.
fn one_read(reads: usize, keepalive: bool) {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let mockup = if keepalive {
        Mockup::start_keepalive(dir.path(), &certs.cert, &certs.key)
    } else {
        Mockup::start(dir.path(), &certs.cert, &certs.key)
    };
    let pass = dir.path().join("bmc.pass");
    std::fs::write(&pass, "x\n").unwrap();
    let bmc = dcmon_inventory::Bmc {
        address: "127.0.0.1".into(),
        port: 623,
        user: "admin".into(),
        password_file: pass,
        protocol: dcmon_inventory::BmcProtocol::Redfish,
        redfish_port: mockup.port,
        tls: dcmon_inventory::BmcTls {
            ca_file: Some(certs.ca.clone()),
            ..Default::default()
        },
        firmware_interval: Duration::from_secs(3600),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let service = dcmon_poller::redfish::service("bench", &bmc, Duration::from_secs(5)).unwrap();
    let read = || {
        runtime.block_on(async {
            let until = tokio::time::Instant::now() + Duration::from_secs(10);
            service.lock().await.read("x", until, None).await
        })
    };
    // The first read logs in and walks the service (and reads the firmware inventory).
    let started = Instant::now();
    let first = read().expect("the Redfish reader answers");
    let cold = started.elapsed();
    let warm_first = read().unwrap();
    let (mut ours, cpu_before) = (Vec::new(), crate::cpu_of(std::process::id()).0);
    for _ in 0..reads {
        let started = Instant::now();
        let out = read().unwrap();
        assert_eq!(out.samples.len(), warm_first.samples.len());
        ours.push(started.elapsed());
    }
    let our_cpu = (crate::cpu_of(std::process::id()).0 - cpu_before) / reads as f64;
    // End the session and close the kept connection: the server serves one at a time.
    runtime.block_on(dcmon_poller::redfish::logout_all(Duration::from_secs(5)));
    drop(service);
    // Its tasks (the pooled connection's among them) end with the runtime.
    drop(runtime);

    // curl: the same resources with a session token, one process per read.
    let base = format!("https://127.0.0.1:{}", mockup.port);
    let paths = [
        "/redfish/v1/Chassis/1U",
        "/redfish/v1/Chassis/1U/Thermal",
        "/redfish/v1/Chassis/1U/Power",
        "/redfish/v1/Systems/437XR1138R2",
        "/redfish/v1/Managers/BMC",
        "/redfish/v1/Systems/437XR1138R2/LogServices/Log1/Entries",
        "/redfish/v1/Managers/BMC/LogServices/Log/Entries",
    ];
    let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
    let (mut theirs, cpu_before) = (Vec::new(), crate::cpu_of(std::process::id()).1);
    for _ in 0..reads {
        let started = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(&certs.ca)
            .args(["-H", "X-Auth-Token: 1234567890ABCDEF", "-o", "/dev/null"])
            .args(&urls)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "curl");
        theirs.push(started.elapsed());
    }
    let their_cpu = (crate::cpu_of(std::process::id()).1 - cpu_before) / reads as f64;
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "\n(l) one Redfish read ({} samples, {} log lines and {} facts at first) over HTTPS from DMTF's mockup server {}, median of {reads}:",
        first.samples.len(),
        first.logs.len(),
        first.facts.len(),
        if keepalive {
            "with HTTP/1.1 keep-alive (as BMCs)"
        } else {
            "as shipped (HTTP/1.0: a connection a request)"
        }
    );
    println!(
        "    dcmon Redfish reader: first read {:.1} ms (login, walk, firmware), then {:.2} ms wall, {:.3} ms CPU;  curl (same {} resources, one process): {:.1} ms wall, {:.2} ms CPU",
        cold.as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e3,
        our_cpu * 1e3,
        paths.len(),
        theirs.as_secs_f64() * 1e3,
        their_cpu * 1e3
    );
    println!(
        "    => {:.1}x less wall time, {:.1}x less CPU; targets 20 ms wall ({:.2}x), 2 ms CPU ({:.2}x); one core reads {:.0} BMCs per 30 s at this CPU (target 1,000)",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        their_cpu / our_cpu.max(1e-6),
        0.020 / ours.as_secs_f64(),
        0.002 / our_cpu.max(1e-6),
        30.0 / our_cpu.max(1e-6)
    );
}

/// `bmcs` BMCs read at once (each its own service: session, layout), over `servers`
/// mockup servers, on one core (a current-thread runtime): a cold round, then a warm
/// one. Wall time and the poller's CPU for each.
pub fn many_reads(bmcs: usize, servers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let mockups: Vec<Mockup> = (0..servers)
        .map(|i| {
            let d = dir.path().join(format!("m{i}"));
            std::fs::create_dir(&d).unwrap();
            Mockup::start(&d, &certs.cert, &certs.key)
        })
        .collect();
    let pass = dir.path().join("bmc.pass");
    std::fs::write(&pass, "x\n").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let services: Vec<_> = (0..bmcs)
        .map(|i| {
            let bmc = dcmon_inventory::Bmc {
                address: "127.0.0.1".into(),
                port: 623,
                user: "admin".into(),
                password_file: pass.clone(),
                protocol: dcmon_inventory::BmcProtocol::Redfish,
                redfish_port: mockups[i % servers].port,
                tls: dcmon_inventory::BmcTls {
                    ca_file: Some(certs.ca.clone()),
                    ..Default::default()
                },
                firmware_interval: Duration::from_secs(3600),
            };
            dcmon_poller::redfish::service(&format!("bmc{i}"), &bmc, Duration::from_secs(30))
                .unwrap()
        })
        .collect();
    let round = |label: &str| {
        let cpu_before = crate::cpu_of(std::process::id()).0;
        let started = Instant::now();
        let failed = runtime.block_on(async {
            // Eight reads at a time per server: Python's HTTPServer listens with a
            // backlog of 5, and more drops connections (the poller's own limit is 256).
            let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(8 * servers));
            let mut set = tokio::task::JoinSet::new();
            for s in &services {
                let (s, limit) = (s.clone(), limit.clone());
                set.spawn(async move {
                    let _slot = limit.acquire().await;
                    let until = tokio::time::Instant::now() + Duration::from_secs(60);
                    s.lock().await.read("x", until, None).await.is_err()
                });
            }
            let mut failed = 0;
            while let Some(r) = set.join_next().await {
                failed += usize::from(r.unwrap_or(true));
            }
            failed
        });
        let wall = started.elapsed();
        let cpu = crate::cpu_of(std::process::id()).0 - cpu_before;
        println!(
            "    {label}: {bmcs} BMCs over {servers} mockup servers in {:.1} s wall, {:.2} s poller CPU ({:.2} ms a BMC), {failed} failed",
            wall.as_secs_f64(),
            cpu,
            cpu * 1e3 / bmcs as f64
        );
        (wall, cpu)
    };
    println!("\n(l) {bmcs} Redfish BMCs read at once on one core:");
    round("cold (login, walk)");
    let (wall, cpu) = round("warm");
    println!(
        "    => warm: {:.1}x the 30 s target's pace in wall time (the mockup servers share the 2 cores), {:.0} BMCs per 30 s of one core at this CPU (target 1,000)",
        30.0 / wall.as_secs_f64(),
        30.0 * bmcs as f64 / cpu.max(1e-6)
    );
    runtime.block_on(dcmon_poller::redfish::logout_all(Duration::from_secs(10)));
}
