//! logs probe tests: journal and dmesg fixtures, file offsets, and the real script run
//! with sh over a file that grows, ends mid-line and is rotated.

use super::*;
use crate::output::LogEntry;
use crate::registry::ProbeInputs;
use std::collections::BTreeMap;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/journal/", $name))
    };
}

fn dmesg_of(text: &str) -> Vec<LogEntry> {
    let mut out = ProbeOutput::default();
    dmesg::parse(text, &mut out);
    out.logs
}

#[test]
fn journal_json() {
    let mut out = ProbeOutput::default();
    journal::parse(
        fixture!("journalctl-o-json-imx6ul-stdout-lnav.json"),
        &mut out,
    );
    assert_eq!(out.warnings, []);
    assert_eq!(out.logs.len(), 2);
    let first = &out.logs[0];
    assert_eq!(first.ts_ms, Some(1_534_860_261_221));
    assert_eq!(first.priority, 1);
    assert_eq!(first.unit.as_deref(), Some("medusa-GpsLocator.service"));
    assert_eq!(first.message, "GPS Reference longitude: 7.358143333");
    assert!(
        first
            .cursor
            .as_deref()
            .unwrap()
            .starts_with("s=e991dd5775894620914f2f7126aae6c1;i=372a;")
    );
}

#[test]
fn journal_binary_message_and_complaints() {
    let mut out = ProbeOutput::default();
    journal::parse(
        "{\"MESSAGE\":[104,105,255],\"PRIORITY\":\"3\",\"__CURSOR\":\"c1\"}\nNo journal files were found.\n",
        &mut out,
    );
    assert_eq!(out.logs[0].message, "hi\u{fffd}");
    assert_eq!(out.logs[0].priority, 3);
    assert!(
        matches!(&out.warnings[..], [crate::output::ParseError::ToolFailed { message, .. }] if message == "No journal files were found.")
    );
}

#[test]
fn dmesg_ctime_has_wall_time() {
    let logs = dmesg_of(fixture!("dmesg-ctime-blk-update-request.txt"));
    assert_eq!(logs.len(), 2, "blank lines are not entries");
    assert_eq!(logs[0].ts_ms, Some(1_627_644_371_000)); // 2021-07-30T11:26:11Z
    assert_eq!(logs[0].unit.as_deref(), Some("blk_update_request"));
    assert!(logs[1].message.contains("sector 2719104"));
    let shpchp = dmesg_of(fixture!("dmesg-ctime-shpchp.txt"));
    assert_eq!(shpchp.len(), 2);
    assert_eq!(
        shpchp[1].message,
        "shpchp 0000:01:00.0: Slot initialization failed"
    );
    assert_eq!(shpchp[1].ts_ms, Some(1_778_040_796_000)); // Wed May  6 04:13:16 2026
}

/// Quirk 4: `dmesg -H` prints `[Feb 7 03:34]` (`[Feb14 03:36]` for two-digit days) when
/// the minute changes and `[  +2.127036]` offsets from the line before in between.
#[test]
fn dmesg_human_format_gets_times_from_the_collection_year() {
    // Collected 2024-03-01T00:00:00Z.
    let logs = dmesg_of(&format!(
        "now=1709251200\n{}",
        fixture!("dmesg-human-relative-v1.txt")
    ));
    assert!(logs.len() >= 7);
    let feb7 = 1_707_276_840_000; // 2024-02-07T03:34:00Z
    assert_eq!(logs[0].ts_ms, Some(feb7));
    assert_eq!(logs[1].ts_ms, Some(feb7), "+0.000000");
    assert_eq!(logs[2].ts_ms, Some(feb7 + 2_127), "+2.127036");
    assert_eq!(logs[3].ts_ms, Some(feb7 + 2_127), "+0.000050 (under a ms)");
    assert_eq!(logs[4].ts_ms, Some(feb7 + 2_127 + 123), "+0.123673");
    assert!(logs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    let v2 = dmesg_of(&format!(
        "now=1709251200\n{}",
        fixture!("dmesg-human-relative-v2.txt")
    ));
    assert_eq!(
        v2[0].ts_ms,
        Some(1_707_881_760_000),
        "[Feb14 03:36]: 2024-02-14T03:36Z"
    );
    assert_eq!(v2[1].ts_ms, Some(1_707_881_760_000 + 2_141));
    // Collected 2024-01-15: a February date is last year's.
    let january = dmesg_of(&format!(
        "now=1705276800\n{}",
        fixture!("dmesg-human-relative-v1.txt")
    ));
    assert_eq!(
        january[0].ts_ms,
        Some(1_675_740_840_000),
        "2023-02-07T03:34Z"
    );
    // A New Year's Eve line read just after midnight; double spaces before a one-digit day.
    let eve = dmesg_of("now=1704067260\n[Dec 31 23:59] a\n[  +1.500000] b\n[Jan  1 00:00] c\n");
    let times: Vec<Option<i64>> = eve.iter().map(|l| l.ts_ms).collect();
    assert_eq!(
        times,
        [
            Some(1_704_067_140_000),
            Some(1_704_067_141_500),
            Some(1_704_067_200_000)
        ]
    );
    for text in [
        fixture!("dmesg-human-relative-v1.txt"),
        fixture!("dmesg-human-relative-v2.txt"),
    ] {
        // Without a collection time the dates have no year: no times, said once.
        let mut out = ProbeOutput::default();
        dmesg::parse(text, &mut out);
        assert!(out.logs.iter().all(|l| l.ts_ms.is_none()));
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(
            out.warnings[0].to_string().contains("line 1: this and"),
            "{}",
            out.warnings[0]
        );
        assert!(
            out.logs
                .iter()
                .any(|l| l.message == "sd 3:0:0:0: [sdb] Asking for cache data failed")
        );
    }
    // Offsets before any date line: no time, stated.
    let mut out = ProbeOutput::default();
    dmesg::parse(
        "now=1709251200\n[  +0.5] early\n[Feb 7 03:34] dated\n",
        &mut out,
    );
    assert_eq!(out.logs[0].ts_ms, None);
    assert_eq!(out.logs[1].ts_ms, Some(1_707_276_840_000));
    assert!(
        out.warnings[0].to_string().contains("line 2"),
        "{:?}",
        out.warnings
    );
    // Collection times at the i64 bounds date nothing and break nothing.
    for now in [i64::MAX, i64::MIN, -1] {
        let mut out = ProbeOutput::default();
        dmesg::parse(
            &format!("now={now}\n[Feb 7 03:34] a\n[  +1.0] b\n"),
            &mut out,
        );
        assert!(
            out.logs.iter().all(|l| l.ts_ms.is_none() || now == -1),
            "{now}"
        );
        assert_eq!(out.logs.len(), 2);
    }
    // An offset of 1e300 seconds or a negative one is no time.
    let logs = dmesg_of("now=1709251200\n[Feb 7 03:34] a\n[  +1e300] b\n[  +-5.0] c\n");
    assert_eq!(logs[1].ts_ms, None);
    assert_eq!(logs[2].ts_ms, None);
    // A stamp of no known form is a warning with its line.
    let mut out = ProbeOutput::default();
    dmesg::parse("[Fooday 99] what\n", &mut out);
    assert!(
        out.warnings[0]
            .to_string()
            .contains("line 1: unknown time stamp")
    );
    let rcu = dmesg_of(fixture!("dmesg-rcu-stall-with-blank-lines.txt"));
    assert_eq!(rcu.len(), 1);
    assert!(
        rcu[0]
            .message
            .starts_with("INFO: rcu_sched detected stalls on CPUs/tasks")
    );
}

/// Quirk 10: SCSI lines name their disk (`[sdb]`) or their `driver H:C:T:L`.
#[test]
fn dmesg_scsi_lines_have_their_device_as_unit() {
    let logs = dmesg_of(
        "<3>[    2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed\n\
         <5>[    2.200000] sd 4:0:0:0: [sdc] Attached SCSI disk\n\
         <5>[    1.900000] scsi 2:0:0:0: Direct-Access     ATA      ST4000NM0035-1V4 TN03 PQ: 0 ANSI: 5\n\
         <6>[    1.950000] sd 2:0:0:0: Attached scsi generic sg0 type 0\n\
         <6>[    3.000000] ses 0:0:8:0: Attached Enclosure device\n\
         <3>[   99.000000] sd 10:2:0:0: [sdaa] tag#12 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE\n\
         <6>[    3.100000] sd 2:0:0: not an address\n\
         <6>[    4.000000] eth0: link up\n",
    );
    let units: Vec<Option<&str>> = logs.iter().map(|l| l.unit.as_deref()).collect();
    assert_eq!(
        units,
        [
            Some("sdb"),
            Some("sdc"),
            Some("scsi 2:0:0:0"),
            Some("sd 2:0:0:0"),
            Some("ses 0:0:8:0"),
            Some("sdaa"),
            None,
            Some("eth0")
        ]
    );
}

#[test]
fn dmesg_raw_gives_priority_time_and_cursor() {
    let logs = dmesg_of(
        "boot_id=0dc874d3\nbtime=1700000000\n<3>[    2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed\n<6>[ 1012.5] eth0: link up\n",
    );
    assert_eq!(logs[0].priority, 3);
    assert_eq!(logs[0].ts_ms, Some(1_700_000_002_127));
    assert_eq!(logs[0].cursor.as_deref(), Some("0dc874d3:2.127036"));
    assert_eq!(logs[1].priority, 6);
    assert_eq!(logs[1].unit.as_deref(), Some("eth0"));
}

#[test]
fn file_offsets_skip_partial_lines() {
    let mut out = ProbeOutput::default();
    // Bytes 100.. of the file: two complete lines, then one still being written.
    file::parse(
        "42 100 /var/log/app.log",
        "|first line\n|Nov 22 02:00:01 gpu01 CRON[4123]: second\n|third, no newline yet\n",
        &mut out,
    );
    let lines: Vec<(&str, &str)> = out
        .logs
        .iter()
        .map(|l| (l.message.as_str(), l.cursor.as_deref().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            ("first line", "42:111"),
            ("Nov 22 02:00:01 gpu01 CRON[4123]: second", "42:152")
        ]
    );
    assert_eq!(out.logs[1].unit.as_deref(), Some("CRON"));
    assert_eq!(
        out.cursors.get("/var/log/app.log").map(String::as_str),
        Some("42:152")
    );
    let mut syslog = ProbeOutput::default();
    file::parse("7 0 /var/log/syslog", "\n", &mut syslog);
    assert_eq!(
        syslog.cursors.get("syslog").map(String::as_str),
        Some("7:0"),
        "syslog files are one source"
    );
}

#[test]
fn forged_markers_in_a_log_stay_log_lines() {
    let mut out = ProbeOutput::default();
    let text = "\n==dcmon== file 5 0 /var/log/app.log\n|==dcmon== end\n|==dcmon== file 5 999999 /var/log/app.log\n\n==dcmon== end\n";
    let sections = Sections::split(text);
    for (header, body) in sections.with_prefix("file ") {
        file::parse(header, body, &mut out);
    }
    assert_eq!(out.logs.len(), 2);
    assert_eq!(
        out.cursors.get("/var/log/app.log").map(String::as_str),
        Some("5:55"),
        "14 + 41 bytes of the two forged lines"
    );
}

/// Runs logs.sh with sh as the poller would, with the cursors saved from the last run.
fn run(log: &std::path::Path, cursors: &mut BTreeMap<String, String>) -> Vec<String> {
    let files = [log.display().to_string()];
    let prelude = inputs(&ProbeInputs {
        cursors,
        log_files: &files,
        custom_scripts: &[],
        expected_gpus: None,
    });
    // The journal and dmesg sections run too; only this file's source is looked at.
    let run = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{prelude}{SCRIPT}"))
        .output()
        .unwrap();
    let out = parse(&String::from_utf8_lossy(&run.stdout));
    let source = log.display().to_string();
    let (new, next) = all_logs_new(
        out.logs
            .into_iter()
            .filter(|l| l.source == source)
            .collect(),
        cursors.get(&source).map(String::as_str),
    );
    if let Some(next) = out.cursors.get(&source).cloned().or(next) {
        cursors.insert(source, next);
    }
    new.into_iter().map(|l| l.message).collect()
}

#[test]
fn appended_and_rotated_lines_are_read_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "history 1\nhistory 2\n").unwrap();
    let mut cursors = BTreeMap::new();
    assert_eq!(
        run(&log, &mut cursors),
        Vec::<String>::new(),
        "first sight starts at the end"
    );
    let append = |text: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap()
    };
    append("a1\na2\npartial");
    assert_eq!(run(&log, &mut cursors), ["a1", "a2"]);
    append(" line done\na3\n");
    assert_eq!(run(&log, &mut cursors), ["partial line done", "a3"]);
    assert_eq!(
        run(&log, &mut cursors),
        Vec::<String>::new(),
        "nothing new, nothing twice"
    );
    // logrotate: lines land in the old file, it is renamed, a new file starts.
    append("b1 before rotation\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&log, "c1 after rotation\n").unwrap();
    assert_eq!(
        run(&log, &mut cursors),
        ["b1 before rotation", "c1 after rotation"]
    );
    append("c2\n");
    assert_eq!(run(&log, &mut cursors), ["c2"]);
    // copytruncate: the same inode shrinks.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append("d1 after truncate\n");
    assert_eq!(run(&log, &mut cursors), ["d1 after truncate"]);
}

#[test]
fn inputs_are_quoted() {
    let mut cursors = BTreeMap::new();
    cursors.insert("journal".to_string(), "s=1;i=2';rm -rf /;'".to_string());
    let prelude = inputs(&ProbeInputs {
        cursors: &cursors,
        log_files: &[],
        custom_scripts: &[],
        expected_gpus: None,
    });
    assert!(
        prelude.contains("DCMON_JOURNAL_CURSOR='s=1;i=2'\\'';rm -rf /;'\\'''\n"),
        "{prelude}"
    );
    let run = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{prelude}printf %s \"$DCMON_JOURNAL_CURSOR\""))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "s=1;i=2';rm -rf /;'");
}

/// A host printed a cursor with a NUL or a newline in it: it is not sent back (no
/// shell reads a NUL as written), so that source is read afresh; a clean one goes.
#[test]
fn a_cursor_with_a_control_character_is_not_sent_back() {
    let mut cursors = BTreeMap::new();
    cursors.insert("journal".to_string(), "s=1;i=2\0x".to_string());
    cursors.insert("dmesg".to_string(), "12\n34".to_string());
    cursors.insert("syslog".to_string(), "5:100".to_string());
    let prelude = inputs(&ProbeInputs {
        cursors: &cursors,
        log_files: &[],
        custom_scripts: &[],
        expected_gpus: None,
    });
    assert!(!prelude.contains('\0'), "{prelude:?}");
    assert!(prelude.contains("DCMON_JOURNAL_CURSOR=''\n"), "{prelude}");
    assert!(prelude.contains("DCMON_DMESG_CURSOR=''\n"), "{prelude}");
    assert!(prelude.contains("/var/log/syslog\t5:100\n"), "{prelude}");
}

#[test]
fn unavailable_sources_are_a_fact_not_a_failure() {
    let out = parse(
        "\n==dcmon== unavailable dmesg\ndmesg: read kernel buffer failed: Operation not permitted\n\n==dcmon== unavailable /var/log/app.log\nnot readable by monitor\n\n==dcmon== end\n",
    );
    assert_eq!(out.warnings, []);
    assert!(out.logs.is_empty());
    assert_eq!(
        out.facts[0].value,
        "dmesg: dmesg: read kernel buffer failed: Operation not permitted; /var/log/app.log: not readable by monitor"
    );
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "==dcmon== file\n",
        "==dcmon== file x y\n|a\n",
        "==dcmon== dmesg\n<99999999999>[\n[]\n[1e999] x\n<7>",
        "==dcmon== journal\n{\"__REALTIME_TIMESTAMP\":\"-1\"}\n[1,2]\n",
    ] {
        let _ = parse(text);
    }
}

/// NVIDIA Xid lines in the kernel ring and in the journal's kernel lines get their
/// labels and priority; a user process logging the same words does not.
#[test]
fn xid_lines_are_labelled_events() {
    let logs = dmesg_of(
        "boot_id=b1\nbtime=1700000000\n\
         <4>[ 5012.345678] NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.\n\
         <4>[ 5012.345700] NVRM: GPU at PCI:0000:3b:00: GPU-5a8f0d2e-0c6e-3d2a-8a51-2f1e0b9d7c11\n\
         <6>[ 5013.000000] NVRM: Xid (PCI:0000:18:00): 13, pid=4242, name=python3, Graphics Exception: ESR 0x405840=0x3c\n",
    );
    assert_eq!(logs[0].labels.get("xid"), Some("79"));
    assert_eq!(logs[0].labels.get("pci"), Some("0000:3b:00"));
    assert_eq!(logs[0].priority, 2, "79 is in the critical set");
    assert!(logs[1].labels.is_empty(), "a GPU naming line is no event");
    assert_eq!(logs[2].labels.get("process"), Some("python3"));
    assert_eq!(logs[2].labels.get("pid"), Some("4242"));
    assert_eq!(logs[2].priority, 3, "an application's fault: error");
    let mut out = ProbeOutput::default();
    journal::parse(
        "{\"MESSAGE\":\"NVRM: Xid (PCI:0000:3b:00): 48, pid=7, name=train, Ch 00000010\",\"PRIORITY\":\"4\",\"_TRANSPORT\":\"kernel\",\"__CURSOR\":\"c1\",\"__REALTIME_TIMESTAMP\":\"1700000000000000\"}\n\
         {\"MESSAGE\":\"NVRM: Xid (PCI:0000:3b:00): 48, pid=7, name=train\",\"PRIORITY\":\"6\",\"_TRANSPORT\":\"stdout\",\"__CURSOR\":\"c2\"}\n",
        &mut out,
    );
    assert_eq!(out.logs[0].labels.get("xid"), Some("48"));
    assert_eq!(out.logs[0].priority, 2);
    assert!(out.logs[1].labels.is_empty(), "not the kernel's line");
    // Which source counts: the ring when it was read, else the journal.
    let both =
        parse("\n==dcmon== journal\n\n==dcmon== dmesg\nboot_id=b\nbtime=1\n\n==dcmon== end\n");
    assert_eq!(both.kernel_log.as_deref(), Some("dmesg"));
    let journal_only = parse(
        "\n==dcmon== journal\n\n==dcmon== unavailable dmesg\ndmesg: read kernel buffer failed: Operation not permitted\n\n==dcmon== end\n",
    );
    assert_eq!(journal_only.kernel_log.as_deref(), Some("journal"));
}

/// R525+ drivers report a GPU lost at probe time in one record of three lines, which
/// dmesg prints with indented continuations (a fleet's capture in NVIDIA/NVSentinel#155);
/// a journal may hold the words as two records. Either way the line that carries them
/// is one `fallen_off_bus` event of that GPU, and the lines around it are none.
#[test]
fn a_gpu_fallen_off_the_bus_at_probe_time_is_one_event() {
    let logs = dmesg_of(&format!(
        "boot_id=b1\nbtime=1700000000\n{}",
        fixture!("dmesg-nvrm-fallen-off-bus-r570.txt")
    ));
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(logs[0].labels.get("event"), Some("fallen_off_bus"));
    assert_eq!(logs[0].labels.get("pci"), Some("0000:b3:00"));
    assert_eq!(logs[0].priority, 2);
    assert!(logs[0].message.ends_with("not responding to commands."));
    assert_eq!(logs[0].ts_ms, Some(1_700_001_843_308));
    assert!(logs[1].labels.is_empty() && logs[2].labels.is_empty());
    let mut out = ProbeOutput::default();
    journal::parse(
        "{\"MESSAGE\":\"NVRM: The NVIDIA GPU 0000:01:00.0 (PCI ID: 10de:2d04) installed in this system has\",\"PRIORITY\":\"3\",\"_TRANSPORT\":\"kernel\",\"__CURSOR\":\"c1\"}\n\
         {\"MESSAGE\":\"NVRM: fallen off the bus and is not responding to commands.\",\"PRIORITY\":\"3\",\"_TRANSPORT\":\"kernel\",\"__CURSOR\":\"c2\"}\n\
         {\"MESSAGE\":\"NVRM: fallen off the bus and is not responding to commands.\",\"PRIORITY\":\"3\",\"_TRANSPORT\":\"kernel\",\"__CURSOR\":\"c3\"}\n",
        &mut out,
    );
    assert!(out.logs[0].labels.is_empty());
    assert_eq!(out.logs[1].labels.get("pci"), Some("0000:01:00"));
    assert_eq!(out.logs[1].labels.get("event"), Some("fallen_off_bus"));
    assert!(out.logs[2].labels.is_empty(), "no address before it");
}

/// gpud's capture of an HGX guest losing a GPU: the Xid 79 line and the
/// `GPU ... has fallen off the bus` line after it are events of GPU 0000:91:00; of the
/// NVSwitches' SXid lines, the four `Fatal` ones are events (one per error), the
/// `Severity`/`Data` lines that follow each are not.
#[test]
fn an_xid_79_with_its_nvswitch_sxids() {
    let logs = dmesg_of(&format!(
        "boot_id=b1\nbtime=1700000000\n{}",
        fixture!("dmesg-xid79-sxid-nvswitch-gpud.txt")
    ));
    assert_eq!(logs.len(), 13);
    let labelled: Vec<(usize, Option<&str>, Option<&str>)> = logs
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.labels.is_empty())
        .map(|(i, l)| {
            (
                i,
                l.labels.get("xid").or(l.labels.get("event")),
                l.labels.get("pci"),
            )
        })
        .collect();
    assert_eq!(
        labelled,
        [
            (2, Some("79"), Some("0000:91:00")),
            (3, Some("fallen_off_bus"), Some("0000:91:00")),
            (5, Some("sxid"), Some("0000:06:00")),
            (6, Some("sxid"), Some("0000:05:00")),
            (9, Some("sxid"), Some("0000:07:00")),
            (10, Some("sxid"), Some("0000:05:00")),
        ]
    );
    assert_eq!(logs[10].labels.get("link"), Some("62"));
    assert!(
        logs.iter()
            .filter(|l| !l.labels.is_empty())
            .all(|l| l.priority == 2)
    );
}
