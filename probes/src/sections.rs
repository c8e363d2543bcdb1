//! Probe scripts print one `==dcmon== NAME` line before each section and
//! `==dcmon== end` last; this splits such output. A probe whose tool is missing prints
//! an `absent` section saying which tool, so "not installed" stays distinct from "failed".

use crate::output::{ParseError, ProbeOutput};

pub const MARKER: &str = "==dcmon== ";

/// The sections of a probe's output, in order, with their bodies.
pub struct Sections<'a> {
    list: Vec<(&'a str, &'a str)>,
}

impl<'a> Sections<'a> {
    pub fn split(text: &'a str) -> Sections<'a> {
        let mut list = Vec::new();
        let mut current: Option<(&str, usize)> = None;
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_end_matches(['\n', '\r']);
            if let Some(name) = trimmed.strip_prefix(MARKER) {
                if let Some((prev, start)) = current {
                    list.push((prev, &text[start..offset]));
                }
                current = Some((name.trim(), offset + line.len()));
            }
            offset += line.len();
        }
        if let Some((prev, start)) = current {
            list.push((prev, &text[start..]));
        }
        Sections { list }
    }

    /// The body of the first section with this name.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.list
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| *body)
    }

    /// Every section with this name (a probe may print one per device).
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.list
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, body)| *body)
    }

    /// Sections whose name starts with `prefix`, as (rest of the name, body).
    pub fn with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 's {
        self.list
            .iter()
            .filter_map(move |(n, body)| n.strip_prefix(prefix).map(|rest| (rest, *body)))
    }

    /// Records `Truncated` when the end marker is missing and `absent` when the script
    /// said its tool is not installed. Returns true when the probe's tool is absent.
    pub fn finish(&self, out: &mut ProbeOutput) -> bool {
        if self.get("end").is_none() {
            out.warnings.push(ParseError::Truncated);
        }
        match self.get("absent") {
            Some(why) => {
                out.absent = Some(why.trim().to_string());
                true
            }
            None => false,
        }
    }
}

/// A section reader's verdict: `Err((line within the section, reason))` for a bad line.
pub type SectionResult = Result<(), (usize, String)>;

/// Reads a section's body with `read`: a bad line becomes a `Malformed` warning naming
/// the section and the line, a missing body a `MissingSection` warning where `required`.
pub fn read_section(
    name: &str,
    body: Option<&str>,
    required: bool,
    out: &mut ProbeOutput,
    read: impl FnOnce(&str, &mut ProbeOutput) -> SectionResult,
) {
    match body {
        Some(body) => {
            if let Err((line, reason)) = read(body, out) {
                out.warnings.push(ParseError::Malformed {
                    section: name.to_string(),
                    line,
                    reason,
                });
            }
        }
        None if required => out.warnings.push(ParseError::MissingSection {
            section: name.to_string(),
        }),
        None => {}
    }
}
