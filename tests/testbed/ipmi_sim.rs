//! OpenIPMI's `ipmi_sim`, a real simulated BMC, on a private loopback UDP port.
//!
//! The configuration follows ../shared/testbed/ipmi_sim (lan.conf and gen_emu.py),
//! ported here so the tests need neither ../shared nor Python: 3 temperatures, 2 fans,
//! 2 PSU input powers, each with a Full Sensor Record. Sensors with a `poll` file change
//! live when the test rewrites that file (ASCII raw value, read once a second).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "adminpass";

/// One threshold sensor of the simulated BMC; its reading is `m * raw`.
struct Sensor {
    number: u8,
    name: &'static str,
    sensor_type: u8,
    entity: u8,
    base_unit: u8,
    m: u16,
    raw: u8,
    /// Raw thresholds: unr, ucr, unc, lnr, lcr, lnc.
    thresholds: [u8; 6],
    /// A state file the sim polls every second, so a test can change the reading.
    poll_file: Option<&'static str>,
}

const SENSORS: &[Sensor] = &[
    Sensor {
        number: 1,
        name: "CPU1 Temp",
        sensor_type: 0x01,
        entity: 0x03,
        base_unit: 1,
        m: 1,
        raw: 45,
        thresholds: [100, 95, 90, 0, 0, 0],
        poll_file: Some("cpu1_temp.raw"),
    },
    Sensor {
        number: 2,
        name: "CPU2 Temp",
        sensor_type: 0x01,
        entity: 0x03,
        base_unit: 1,
        m: 1,
        raw: 47,
        thresholds: [100, 95, 90, 0, 0, 0],
        poll_file: None,
    },
    Sensor {
        number: 3,
        name: "System Temp",
        sensor_type: 0x01,
        entity: 0x07,
        base_unit: 1,
        m: 1,
        raw: 30,
        thresholds: [90, 85, 80, 0, 0, 0],
        poll_file: None,
    },
    Sensor {
        number: 4,
        name: "FAN1",
        sensor_type: 0x04,
        entity: 0x1d,
        base_unit: 18,
        m: 50,
        raw: 96,
        thresholds: [255, 254, 253, 4, 6, 8],
        poll_file: Some("fan1.raw"),
    }, // 4800 RPM
    Sensor {
        number: 5,
        name: "FAN2",
        sensor_type: 0x04,
        entity: 0x1d,
        base_unit: 18,
        m: 50,
        raw: 98,
        thresholds: [255, 254, 253, 4, 6, 8],
        poll_file: None,
    }, // 4900 RPM
    Sensor {
        number: 6,
        name: "PS1 Input Power",
        sensor_type: 0x08,
        entity: 0x0a,
        base_unit: 6,
        m: 4,
        raw: 80,
        thresholds: [255, 250, 240, 0, 0, 0],
        poll_file: None,
    }, // 320 W
    Sensor {
        number: 7,
        name: "PS2 Input Power",
        sensor_type: 0x08,
        entity: 0x0a,
        base_unit: 6,
        m: 4,
        raw: 77,
        thresholds: [255, 250, 240, 0, 0, 0],
        poll_file: None,
    }, // 308 W
];

pub struct IpmiSim {
    pub port: u16,
    pub state: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl IpmiSim {
    pub fn start() -> IpmiSim {
        let dir = tempfile::Builder::new()
            .prefix("dcmon-ipmisim-")
            .tempdir()
            .unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("cpu1_temp.raw"), "45\n").unwrap();
        std::fs::write(state.join("fan1.raw"), "96\n").unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lan = dir.path().join("lan.conf");
        std::fs::write(&lan, lan_conf(port)).unwrap();
        let emu = dir.path().join("bmc.emu");
        std::fs::write(&emu, emu_commands(&state)).unwrap();
        let child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(&lan)
            .arg("-f")
            .arg(&emu)
            .arg("-s")
            .arg(&state)
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ipmi_sim (Debian package openipmi) is installed: run tests/run.sh");
        let sim = IpmiSim {
            port,
            state,
            _dir: dir,
            child,
        };
        sim.wait_ready();
        sim
    }

    /// `ipmitool -I lanplus ...` against this BMC. Always `-C 3`: the sim lacks Get
    /// Channel Cipher Suites, and ipmitool stalls 10 s without it.
    pub fn ipmitool_args(&self) -> Vec<String> {
        [
            "-I",
            "lanplus",
            "-H",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            USER,
            "-P",
            PASSWORD,
            "-C",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = Command::new("ipmitool")
                .args(self.ipmitool_args())
                .args(["-N", "1", "-R", "1", "mc", "info"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "ipmi_sim did not answer on UDP port {} within 10s",
            self.port
        );
    }

    /// Sets a polled sensor's raw value (the sim rereads it within a second).
    pub fn set_raw(&self, file: &str, raw: u8) {
        std::fs::write(self.state.join(file), format!("{raw}\n")).unwrap();
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SEL system records after their timestamp: generator (BMC, LUN 0), event message
/// revision 2.0, sensor type, sensor number, direction | event type, event data 1–3.
const SEL: &[[u8; 9]] = &[
    // CPU1 Temp: upper critical going high (reading 96, threshold 95), asserted.
    [0x20, 0x00, 0x04, 0x01, 1, 0x01, 0x59, 96, 95],
    // FAN1: lower critical going low (raw 5, threshold 6), asserted, then deasserted.
    [0x20, 0x00, 0x04, 0x04, 4, 0x01, 0x52, 5, 6],
    [0x20, 0x00, 0x04, 0x04, 4, 0x81, 0x52, 5, 6],
    // Power supply 0x30 (no SDR): failure detected, asserted.
    [0x20, 0x00, 0x04, 0x08, 0x30, 0x6f, 0x01, 0xff, 0xff],
];

fn lan_conf(port: u16) -> String {
    format!(
        "name \"testbmc\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n\
         \x20   allowed_auths_callback none md2 md5 straight\n    allowed_auths_user none md2 md5 straight\n\
         \x20   allowed_auths_operator none md2 md5 straight\n    allowed_auths_admin none md2 md5 straight\n\
         \x20   guid a123456789abcdefa123456789abcdef\n  endlan\n\
         \x20 user 1 true  \"\"        \"test\"      user   10  none md2 md5 straight\n\
         \x20 user 2 true  \"{USER}\"   \"{PASSWORD}\" admin  32  none md2 md5 straight\n"
    )
}

/// The ipmi_sim command file: an MC with a SEL, a watchdog sensor and the SENSORS above,
/// each with `scanning` enabled (without it a sensor reads as `ns`) and its SDR.
fn emu_commands(state: &std::path::Path) -> String {
    let mut out = vec![
        "mc_setbmc 0x20".to_string(),
        // addr devid sdrs devrev fw-major fw-minor devsupport manufacturer(Supermicro) product
        "mc_add 0x20 0 no-device-sdrs 0x01 1 2 0x9f 0x002a7c 0x0001".to_string(),
        "sel_enable 0x20 1000 0x0a".to_string(),
        "sensor_add 0x20 0 0 35 0x6f event-only".to_string(),
        "sensor_set_event_support 0x20 0 0 enable scanning per-state 000000000001111 000000000000000 000000000001111 000000000000000".to_string(),
    ];
    for sensor in SENSORS {
        let (num, stype, raw) = (sensor.number, sensor.sensor_type, sensor.raw);
        match sensor.poll_file {
            Some(f) => out.push(format!(
                "sensor_add 0x20 0 {num} 0x{stype:02x} 0x01 poll 1000 file \"{}\"",
                state.join(f).display()
            )),
            None => out.push(format!("sensor_add 0x20 0 {num} 0x{stype:02x} 0x01")),
        }
        out.push(format!("sensor_set_value 0x20 0 {num} {raw} 0"));
        let t: Vec<String> = sensor.thresholds.iter().map(u8::to_string).collect();
        out.push(format!(
            "sensor_set_threshold 0x20 0 {num} settable 111111 {}",
            t.join(" ")
        ));
        out.push(format!("sensor_set_event_support 0x20 0 {num} enable scanning per-state 000111111000000 000111111000000 000111111000000 000111111000000"));
        out.push(format!("main_sdr_add 0x20 {}", full_sdr(sensor)));
    }
    // The SEL: a CPU over its upper critical threshold, a fan under its lower critical one
    // and back, and a power supply failure (a sensor with no SDR). ipmi_sim stamps system
    // records with its own clock as they are added (seconds since boot: "Pre-Init").
    for record in SEL {
        let mut bytes = vec![0u8; 4];
        bytes.extend_from_slice(record);
        let bytes: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
        out.push(format!("sel_add 0x20 0x02 {}", bytes.join(" ")));
    }
    out.push("mc_enable 0x20".to_string());
    out.join("\n") + "\n"
}

/// A Full Sensor Record (SDR type 0x01), reading = M * raw.
fn full_sdr(sensor: &Sensor) -> String {
    let (num, entity, stype, unit, m) = (
        sensor.number,
        sensor.entity,
        sensor.sensor_type,
        sensor.base_unit,
        sensor.m,
    );
    let id = &sensor.name.as_bytes()[..sensor.name.len().min(16)];
    let mut body = vec![
        0x20,
        0x00,
        num, // owner id, owner lun, sensor number
        entity,
        0x01, // entity id, instance
        0x67,
        0x48, // init (scanning, events, thresholds, type), caps
        stype,
        0x01, // sensor type, event/reading type = threshold
        0x00,
        0x00,
        0x00,
        0x00, // event masks
        0x3f,
        0x3f, // readable, settable threshold masks
        0x00,
        unit,
        0x00, // units1 unsigned, base unit, modifier
        0x00, // linear
        (m & 0xff) as u8,
        ((m >> 2) & 0xc0) as u8, // M, tolerance
        0x00,
        0x00,
        0x00,
        0x00, // B, accuracy, exponents
        0x00,
        0x00,
        0x00,
        0x00, // analog flags, nominal, normal max/min
        0xff,
        0x00, // sensor max/min reading
    ];
    body.extend_from_slice(&sensor.thresholds);
    body.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00]); // hysteresis, reserved, OEM
    body.push(0xc0 | id.len() as u8);
    body.extend_from_slice(id);
    let mut record = vec![0x00, 0x00, 0x51, 0x01, body.len() as u8];
    record.extend(body);
    record
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
