//! Hardware tools on test hosts: shims that print real captures from tests/fixtures.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Writes an executable shim that answers by its arguments; `cases` are sh `case` arms.
pub fn shim(dir: &Path, tool: &str, cases: &str) {
    let path = dir.join(tool);
    std::fs::write(&path, format!("#!/bin/sh\ncase \"$*\" in\n{cases}\n*) echo \"shim {tool}: unexpected arguments: $*\" >&2; exit 1 ;;\nesac\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn fixture(path: &str) -> String {
    format!("{FIXTURES}/{path}")
}

/// A Dell-style GPU server: ipmitool, nvidia-smi and nvme all print captures.
pub fn dell_gpu_server(root: &Path) -> PathBuf {
    let dir = root.join("dell-h100");
    std::fs::create_dir_all(&dir).unwrap();
    shim(
        &dir,
        "ipmitool",
        &format!(
            "'sdr elist') cat {} ;;\n'dcmi power reading') cat {} ;;\n'chassis status') cat {} ;;\n'sel elist last 200') cat {} ;;",
            fixture("ipmitool/sdr-elist-dell-curated-telegraf-v2.txt"),
            fixture("ipmitool/dcmi-power-reading-telegraf.txt"),
            fixture("ipmitool/ipmi-sim-openipmi-2.0.33-chassis-status.txt"),
            fixture("ipmitool/sel-elist-chassis-intrusion-psu.txt"),
        ),
    );
    shim(
        &dir,
        "nvidia-smi",
        &format!(
            "--query-gpu=*) cat {} ;;\n--query-compute-apps=*) cat {} ;;",
            fixture("nvidia-smi/query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv"),
            fixture("nvidia-smi/query-compute-apps-h100-80gb-hbm3-590.48.01-linux-load.csv")
        ),
    );
    shim(
        &dir,
        "nvme",
        &format!(
            "'list -o json') cat {} ;;\n'smart-log /dev/nvme0n1 -o json') cat {} ;;\n'smart-log /dev/nvme1n1 -o json') cat {} ;;",
            fixture("nvme/list-2x-seagate-firecuda530-nvmecli-2.3-netdata.json"),
            fixture("nvme/smart-log-seagate-firecuda530-nvmecli-2.3-netdata.json"),
            fixture("nvme/smart-log-seagate-firecuda530-nvmecli-2.11-netdata.json"),
        ),
    );
    dir
}

/// An `ipmitool` that is the real one, talking lanplus to a simulated BMC (`args`).
pub fn ipmitool_via(dir: &Path, args: &[String]) {
    let path = dir.join("ipmitool");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec /usr/bin/ipmitool {} \"$@\"\n",
            args.join(" ")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An `ipmitool` that appends its arguments to `log` and answers like a Supermicro BMC
/// in optimal mode, with the fan lines of a real Dell capture.
pub fn recording_ipmitool(dir: &Path, log: &Path) {
    let fans: String =
        std::fs::read_to_string(fixture("ipmitool/sdr-elist-dell-curated-telegraf-v2.txt"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("RPM"))
            .map(|l| format!("{l}\n"))
            .collect();
    let fans_file = dir.join("fans.txt");
    std::fs::write(&fans_file, fans).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in\n'raw 0x30 0x45 0x00') echo ' 02' ;;\n'sdr type Fan') cat {fans} ;;\n'mc info') echo 'Device ID                 : 32' ;;\nraw*) ;;\n*) echo \"shim ipmitool: unexpected $*\" >&2; exit 1 ;;\nesac\n",
        log = log.display(),
        fans = fans_file.display()
    );
    let path = dir.join("ipmitool");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Makes `dir` (readable by the login user) hold `sh` -> bash: a host with it first on
/// its PATH gets bash as its `sh`, as RHEL and its kin do; other hosts keep dash.
pub fn bash_as_sh(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("/bin/bash", dir.join("sh")).unwrap();
}
