//! `dcmon parse FORMAT FILE`: one captured tool output read by exactly the parser its
//! probe uses, printed as samples, facts, log lines and warnings, so an operator can see
//! what dcmon makes of odd vendor output and attach both to a bug report.

use crate::args::ParseArgs;
use crate::table;
use anyhow::Result;
use dcmon_probes::{ProbeOutput, formats};
use std::io::{Read as _, Write as _};
use std::process::ExitCode;

/// Exit statuses: parsed cleanly, parsed with warnings, not parsed at all.
const CLEAN: u8 = 0;
const WARNINGS: u8 = 1;
const UNPARSED: u8 = 2;

pub fn parse(args: ParseArgs) -> Result<ExitCode> {
    if args.list {
        return Ok(list(args.json));
    }
    let (Some(format), Some(file)) = (&args.format, &args.file) else {
        return Ok(refuse(
            "give a FORMAT and a FILE (`-` reads standard input); `dcmon parse --list` names the formats",
        ));
    };
    if !formats::all().iter().any(|(name, _, _)| name == format) {
        return Ok(refuse(&format!(
            "unknown format `{format}`; known: {}",
            formats::all()
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let shown = if file == "-" { "standard input" } else { file };
    let bytes = match read(file) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(refuse(&format!("cannot read {shown}: {e}"))),
    };
    let text = match as_text(&bytes) {
        Ok(text) => text,
        Err(why) => {
            return Ok(refuse(&format!(
                "{shown} {why}: capture the tool's text output"
            )));
        }
    };
    if text.trim().is_empty() {
        return Ok(refuse(&format!("{shown} is empty: nothing to parse")));
    }
    let at = args.at.unwrap_or_else(std::time::SystemTime::now);
    let collected_s = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let Some(out) = formats::parse(format, text, file, collected_s) else {
        return Ok(refuse(&format!("unknown format `{format}`")));
    };
    print(&out, args.json);
    let nothing = out.samples.is_empty()
        && out.facts.is_empty()
        && out.logs.is_empty()
        && out.absent.is_none();
    for w in &out.warnings {
        eprintln!("dcmon parse: warning: {w}");
    }
    Ok(ExitCode::from(match (nothing, out.warnings.first()) {
        (true, Some(first)) => {
            eprintln!("dcmon parse: {shown} could not be parsed as {format}: {first}");
            UNPARSED
        }
        (false, Some(_)) => WARNINGS,
        (_, None) => CLEAN,
    }))
}

fn refuse(why: &str) -> ExitCode {
    eprintln!("dcmon parse: {why}");
    ExitCode::from(UNPARSED)
}

fn read(file: &str) -> std::io::Result<Vec<u8>> {
    if file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(file)
    }
}

/// Tool output is text: a NUL byte or bytes that are not UTF-8 mean a wrong file.
fn as_text(bytes: &[u8]) -> Result<&str, String> {
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(format!("is binary (a NUL byte at offset {at})"));
    }
    std::str::from_utf8(bytes)
        .map_err(|e| format!("is not UTF-8 text (at byte {})", e.valid_up_to()))
}

fn list(json: bool) -> ExitCode {
    let all = formats::all();
    if json {
        for (name, description, probe) in all {
            let line =
                serde_json::json!({"format": name, "probe": probe, "description": description});
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|(n, d, p)| vec![n.to_string(), p.to_string(), d.to_string()])
            .collect();
        table::print(&["FORMAT", "PROBE", "READS"], &rows);
    }
    ExitCode::SUCCESS
}

pub fn labels_object(labels: &dcmon_probes::Labels) -> serde_json::Value {
    labels
        .pairs()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The JSON objects for a parsed output: one per sample (`name`, `labels`, `value`,
/// `unit`), per fact (`fact`, `value`), per log line (`log`, ...), and `absent`.
pub fn json_objects(out: &ProbeOutput) -> Vec<serde_json::Value> {
    let mut objects = Vec::new();
    for s in &out.samples {
        objects.push(serde_json::json!({
            "name": s.name, "labels": labels_object(&s.labels), "value": s.value, "unit": s.unit,
        }));
    }
    for f in &out.facts {
        objects.push(serde_json::json!({"fact": f.key, "value": f.value}));
    }
    for l in &out.logs {
        let mut object = serde_json::json!({
            "log": l.message, "source": l.source, "ts_ms": l.ts_ms,
            "priority": l.priority, "unit": l.unit, "cursor": l.cursor,
        });
        // What the line says, as keys of its own (`"xid": "79"`); never over ours.
        if let Some(map) = object.as_object_mut() {
            for (k, v) in l.labels.pairs() {
                map.entry(k.clone())
                    .or_insert_with(|| serde_json::Value::String(v.clone()));
            }
        }
        objects.push(object);
    }
    if let Some(why) = &out.absent {
        objects.push(serde_json::json!({"absent": why}));
    }
    objects
}

pub fn print(out: &ProbeOutput, json: bool) {
    if json {
        let mut stdout = std::io::stdout().lock();
        for object in json_objects(out) {
            let _ = writeln!(stdout, "{object}");
        }
        return;
    }
    if let Some(why) = &out.absent {
        let _ = writeln!(std::io::stdout(), "absent: {why}");
    }
    if !out.samples.is_empty() {
        let rows: Vec<Vec<String>> = out
            .samples
            .iter()
            .map(|s| {
                vec![
                    format!("{}{}", s.name, s.labels),
                    s.value.to_string(),
                    s.unit.to_string(),
                ]
            })
            .collect();
        table::print(&["SAMPLE", "VALUE", "UNIT"], &rows);
    }
    if !out.facts.is_empty() {
        let rows: Vec<Vec<String>> = out
            .facts
            .iter()
            .map(|f| vec![f.key.clone(), f.value.clone()])
            .collect();
        let _ = writeln!(std::io::stdout());
        table::print(&["FACT", "VALUE"], &rows);
    }
    if !out.logs.is_empty() {
        let rows: Vec<Vec<String>> = out
            .logs
            .iter()
            .map(|l| {
                vec![
                    l.source.clone(),
                    l.ts_ms.map_or_else(|| "–".to_string(), |t| t.to_string()),
                    l.priority.to_string(),
                    l.unit.clone().unwrap_or_default(),
                    l.message.clone(),
                ]
            })
            .collect();
        let _ = writeln!(std::io::stdout());
        table::print(&["LOG", "TS_MS", "PRIO", "UNIT", "MESSAGE"], &rows);
    }
    let counts = format!(
        "{} samples, {} facts, {} log lines, {} warnings",
        out.samples.len(),
        out.facts.len(),
        out.logs.len(),
        out.warnings.len()
    );
    eprintln!("dcmon parse: {counts}");
}
