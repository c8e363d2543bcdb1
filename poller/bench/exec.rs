//! (g) `dcmon exec` of `true` on every host while `dcmon serve` holds their sessions
//! (through its control socket), against parallel-ssh (which connects each time), and
//! dcmon's own connections (`--standalone`) as the cold case.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall time of one command, and how many hosts its output reports ok.
fn timed(mut cmd: Command, ok_marker: &str) -> (Duration, usize) {
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let wall = started.elapsed();
    (
        wall,
        String::from_utf8_lossy(&out.stdout)
            .matches(ok_marker)
            .count(),
    )
}

/// CPU seconds of a process, and of the children it has reaped.
fn cpu_of(pid: u32) -> f64 {
    crate::cpu_of(pid).0
}

fn children_cpu() -> f64 {
    crate::cpu_of(std::process::id()).1
}

pub fn exec_true(n: usize) {
    let bed = crate::testbed::Sshd::start();
    let addrs = crate::testbed::addresses(n);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    // Probes every hour: the sessions stay open, and no round runs while we measure.
    let mut text = bed.defaults(&known_hosts, "60s").replacen(
        "[defaults]\n",
        "[defaults]\ninterval = \"1h\"\n",
        1,
    );
    for a in &addrs {
        text.push_str(&format!("\n[[hosts]]\nname = \"{a}\"\n"));
    }
    let inv = bed.write("inventory.toml", &text);
    let db = bed.dir.path().join("bench.db");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args([
            "serve",
            "--listen",
            "off",
            "--inventory",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Serve connects every host at start.
    let deadline = Instant::now() + Duration::from_secs(120);
    while bed.log().matches("Accepted publickey").count() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let exec = |standalone: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcmon"));
        cmd.args([
            "exec",
            "-i",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "127.0.*",
            "--json",
        ]);
        if standalone {
            cmd.arg("--standalone");
        }
        cmd.args(["--", "true"]);
        cmd
    };
    let serve_cpu0 = cpu_of(serve.id());
    let kids0 = children_cpu();
    let (warm_wall, warm_ok) = timed(exec(false), "\"status\":\"ok\"");
    let warm_client = children_cpu() - kids0;
    let warm_serve = cpu_of(serve.id()) - serve_cpu0;
    let kids0 = children_cpu();
    let (cold_wall, cold_ok) = timed(exec(true), "\"status\":\"ok\"");
    let cold_client = children_cpu() - kids0;

    let hosts_file = bed.write("pssh-hosts", &addrs.join("\n"));
    let pssh = crate::pssh_command(&bed, &hosts_file, &known_hosts, false, "true");
    let kids0 = children_cpu();
    let (peer_wall, peer_ok) = timed(pssh, "[SUCCESS]");
    let peer_client = children_cpu() - kids0;
    let _ = serve.kill();
    let _ = serve.wait();

    println!("\n(g) exec of `true` on {n} hosts");
    let line = |label: &str, wall: Duration, cpu: f64, ok: usize| {
        println!(
            "  {label:<44} wall {:>6.2}s  client CPU {:>6.2}s  ok {ok}/{n}",
            wall.as_secs_f64(),
            cpu
        );
    };
    line(
        "dcmon exec through serve (warm sessions)",
        warm_wall,
        warm_client,
        warm_ok,
    );
    println!("  {:<44} serve's CPU for it {warm_serve:.2}s", "");
    line(
        "dcmon exec --standalone (connects)",
        cold_wall,
        cold_client,
        cold_ok,
    );
    line("parallel-ssh -p 200", peer_wall, peer_client, peer_ok);
    println!(
        "  ratios vs parallel-ssh: wall {:.1}x shorter warm ({:.1}x standalone); client+serve CPU {:.1}x less warm",
        peer_wall.as_secs_f64() / warm_wall.as_secs_f64(),
        peer_wall.as_secs_f64() / cold_wall.as_secs_f64(),
        peer_client / (warm_client + warm_serve).max(0.001)
    );
}
