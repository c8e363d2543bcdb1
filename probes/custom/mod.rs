//! The `custom` probe: the host's own scripts, named in the inventory, printing
//! Prometheus text format. Malformed lines are reported with their line numbers; the
//! good lines still count.

pub mod text_format;

use crate::output::{ParseError, ProbeOutput};
use crate::registry::{Probe, ProbeInputs, all_logs_new, sh_quote};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("custom.sh");

pub const PROBE: Probe = Probe {
    name: "custom",
    description: "the host's scripts named in custom_scripts, printing Prometheus text format",
    script: SCRIPT,
    commands: &["each script named in custom_scripts"],
    parse,
    default_interval: Duration::from_secs(60),
    default_timeout: Duration::from_secs(30),
    privileges: "whatever the scripts need",
    new_logs: all_logs_new,
    inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

pub fn inputs(given: &ProbeInputs) -> String {
    format!(
        "DCMON_CUSTOM_SCRIPTS={}\n",
        sh_quote(&given.custom_scripts.join("\n"))
    )
}

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    for (header, body) in sections.with_prefix("script ") {
        let (status, path) = header.split_once(' ').unwrap_or(("?", header));
        let lines: String = body
            .lines()
            .filter_map(|l| l.strip_prefix('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        text_format::parse(&lines, path, &[("script", path)], &mut out);
        if status != "0" {
            out.warnings.push(ParseError::ToolFailed {
                tool: path.to_string(),
                message: format!("exited with status {status}"),
            });
        }
    }
    for (path, _) in sections.with_prefix("missing ") {
        out.warnings.push(ParseError::ToolFailed {
            tool: path.to_string(),
            message: "not found or not executable on the host".to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Kind;

    const TEXT: &str = "# HELP raid_disks_failed Failed member disks per array.\n# TYPE raid_disks_failed gauge\nraid_disks_failed{array=\"md0\"} 0\nraid_disks_failed{array=\"md1\",note=\"say \\\"hi\\\"\\n\"} 1 1700000000000\n# TYPE backup_runs_total counter\nbackup_runs_total 42\nbroken{array=\"md2\" 3\n9bad 1\nup 1 2 3\nbackup_age_seconds +Inf\n";

    #[test]
    fn exposition_lines_become_samples_and_errors_have_line_numbers() {
        let mut out = ProbeOutput::default();
        text_format::parse(
            TEXT,
            "/usr/local/bin/raid.sh",
            &[("script", "/usr/local/bin/raid.sh")],
            &mut out,
        );
        let names: Vec<(&str, Option<&str>)> = out
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.labels.get("array")))
            .collect();
        assert_eq!(
            names,
            [
                ("raid_disks_failed", Some("md0")),
                ("raid_disks_failed", Some("md1")),
                ("backup_runs_total", None)
            ],
            "+Inf is not stored"
        );
        assert_eq!(out.samples[1].value, 1.0);
        assert_eq!(out.samples[1].labels.get("note"), Some("say \"hi\"\n"));
        assert_eq!(
            out.samples[1].labels.get("script"),
            Some("/usr/local/bin/raid.sh")
        );
        assert_eq!(out.samples[2].kind, Kind::Counter);
        let lines: Vec<usize> = out
            .warnings
            .iter()
            .map(|w| match w {
                ParseError::Malformed { line, .. } => *line,
                _ => 0,
            })
            .collect();
        assert_eq!(lines, [7, 8, 9]);
        assert_eq!(
            out.warnings[0].to_string(),
            "section `/usr/local/bin/raid.sh` line 7: label set is not closed with `}`"
        );
    }

    /// The script run with sh against real scripts on this machine.
    #[test]
    fn script_runs_each_custom_script() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.sh");
        std::fs::write(
            &good,
            "#!/bin/sh\necho 'gpu_jobs_running{queue=\"a\"} 3'\necho '==dcmon== end'\n",
        )
        .unwrap();
        let failing = dir.path().join("failing.sh");
        std::fs::write(&failing, "#!/bin/sh\necho 'half_done 1'\nexit 3\n").unwrap();
        for f in [&good, &failing] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let scripts = [
            good.display().to_string(),
            failing.display().to_string(),
            "/nonexistent/x.sh".to_string(),
        ];
        let prelude = inputs(&ProbeInputs {
            cursors: &Default::default(),
            log_files: &[],
            custom_scripts: &scripts,
            expected_gpus: None,
        });
        let run = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude}{SCRIPT}"))
            .output()
            .unwrap();
        let out = parse(&String::from_utf8_lossy(&run.stdout));
        let values: Vec<(&str, f64)> = out
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        assert_eq!(values, [("gpu_jobs_running", 3.0), ("half_done", 1.0)]);
        assert_eq!(out.warnings.len(), 3, "{:?}", out.warnings);
        assert!(
            out.warnings[0].to_string().contains("line 2"),
            "a forged marker is a malformed line: {:?}",
            out.warnings
        );
        assert!(
            out.warnings[1]
                .to_string()
                .ends_with("exited with status 3")
        );
        assert_eq!(
            out.warnings[2].to_string(),
            "/nonexistent/x.sh: not found or not executable on the host"
        );
    }

    #[test]
    fn no_scripts_is_absent_and_garbage_never_panics() {
        let prelude = inputs(&ProbeInputs {
            cursors: &Default::default(),
            log_files: &[],
            custom_scripts: &[],
            expected_gpus: None,
        });
        let run = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude}{SCRIPT}"))
            .output()
            .unwrap();
        assert!(
            parse(&String::from_utf8_lossy(&run.stdout))
                .absent
                .is_some()
        );
        for text in [
            "{",
            "a{",
            "a{b",
            "a{b=",
            "a{b=\"",
            "a{b=\"\\",
            "a{b=\"c\"",
            "a{b=\"c\"}",
            "a{=\"c\"} 1",
            "a 1e999",
            "\u{0} 1",
        ] {
            let mut out = ProbeOutput::default();
            text_format::parse(text, "t", &[], &mut out);
            assert!(out.samples.iter().all(|s| s.value.is_finite()));
        }
    }
}
