//! Silence matchers as operators type them (`host=gpu01,alertname=~"Gpu.*"`, the syntax
//! of `amtool silence add`), checked and compiled; which alerts a silence covers.
//! Regular expressions are anchored at both ends, as in Alertmanager.

use dcmon_store::silences::{Matcher, Silence};
use std::collections::BTreeMap;

/// Longest silence (a forgotten silence must end on its own): one year.
pub const MAX_SILENCE_MS: i64 = 366 * 24 * 3600 * 1000;

/// A matcher ready to test labels.
#[derive(Debug, Clone)]
pub struct Compiled {
    matcher: Matcher,
    regex: Option<regex::Regex>,
}

impl Compiled {
    pub fn new(matcher: Matcher) -> Result<Compiled, String> {
        if !is_label_name(&matcher.name) {
            return Err(format!(
                "`{}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                matcher.name
            ));
        }
        let regex = match matcher.op.as_str() {
            "=" | "!=" => None,
            "=~" | "!~" => Some(
                regex::Regex::new(&format!("^(?:{})$", matcher.value))
                    .map_err(|e| format!("`{}`: bad regular expression: {e}", matcher.value))?,
            ),
            op => return Err(format!("unknown operator `{op}` (use =, !=, =~, !~)")),
        };
        Ok(Compiled { matcher, regex })
    }

    /// A missing label counts as the empty value, as in Alertmanager.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.matcher.name).map_or("", String::as_str);
        match (self.matcher.op.as_str(), &self.regex) {
            ("=", _) => value == self.matcher.value,
            ("!=", _) => value != self.matcher.value,
            ("=~", Some(r)) => r.is_match(value),
            ("!~", Some(r)) => !r.is_match(value),
            _ => false,
        }
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads `name OP value` items separated by commas; a value may be double-quoted (then
/// it may hold commas; `\"` and `\\` inside). Braces around the whole list are allowed.
pub fn parse(text: &str) -> Result<Vec<Matcher>, String> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(trimmed);
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| after.starts_with(op))
            .ok_or_else(|| {
                format!(
                    "matcher {} at `{}`: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX",
                    out.len() + 1,
                    rest.chars().take(30).collect::<String>()
                )
            })?;
        let after = after[op.len()..].trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("matcher `{name}`: unterminated quote"))?;
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim_end().to_string(), &after[end..])
        };
        let matcher = Matcher {
            name: name.to_string(),
            op: op.to_string(),
            value,
        };
        Compiled::new(matcher.clone()).map_err(|e| format!("matcher `{name}`: {e}"))?;
        out.push(matcher);
        let tail = tail.trim_start();
        rest = match tail.strip_prefix(',') {
            Some(t) => t.trim_start(),
            None if tail.is_empty() => tail,
            None => {
                return Err(format!(
                    "after matcher `{name}`: expected `,` at `{}`",
                    tail.chars().take(30).collect::<String>()
                ));
            }
        };
    }
    if out.is_empty() {
        return Err("a silence needs at least one matcher (`host=gpu01`)".into());
    }
    // A silence that matches every alert (only `=~".*"`-like matchers) hides everything:
    // refused as Alertmanager does.
    let empty = BTreeMap::new();
    let all = out
        .iter()
        .map(|m| Compiled::new(m.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    if all.iter().all(|m| m.matches(&empty)) {
        return Err(
            "these matchers also match alerts without those labels: at least one must need a value (`host=gpu01`)"
                .into(),
        );
    }
    Ok(out)
}

/// Active silences, compiled once per evaluation.
#[derive(Debug, Default)]
pub struct Silences {
    list: Vec<(Silence, Vec<Compiled>)>,
}

impl Silences {
    /// The silences in force at `now` (stored ones that no longer compile are skipped:
    /// they were checked when written).
    pub fn active(stored: Vec<Silence>, now: i64) -> Silences {
        let list = stored
            .into_iter()
            .filter(|s| s.starts_at <= now && now < s.ends_at)
            .filter_map(|s| {
                let compiled = s
                    .matchers
                    .iter()
                    .map(|m| Compiled::new(m.clone()).ok())
                    .collect::<Option<Vec<_>>>()?;
                Some((s, compiled))
            })
            .collect();
        Silences { list }
    }

    /// The first silence covering these labels.
    pub fn silencing(&self, labels: &BTreeMap<String, String>) -> Option<&Silence> {
        self.list
            .iter()
            .find(|(_, m)| m.iter().all(|m| m.matches(labels)))
            .map(|(s, _)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.list.iter().map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_matchers_are_read_as_amtool_writes_them() {
        let m = parse(r#"host=gpu01, alertname=~"Gpu.*",team!="a,b\"c""#).unwrap();
        let shown: Vec<(&str, &str, &str)> = m
            .iter()
            .map(|m| (m.name.as_str(), m.op.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("host", "=", "gpu01"),
                ("alertname", "=~", "Gpu.*"),
                ("team", "!=", "a,b\"c")
            ]
        );
        assert_eq!(parse("{host=gpu01}").unwrap().len(), 1);
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (text, expect) in [
            ("", "at least one matcher"),
            ("host", "expected NAME=VALUE"),
            ("host=a,,b=c", "expected NAME=VALUE"),
            ("9x=a", "not a label name"),
            ("alertname=~\"(\"", "bad regular expression"),
            ("host=\"gpu", "unterminated quote"),
            ("host=~\".*\"", "also match alerts without"),
            ("host!=gpu01", "also match alerts without"),
            ("host=\"a\" x", "expected `,`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let silence = |text: &str| Silences {
            list: vec![(
                Silence {
                    id: 1,
                    matchers: parse(text).unwrap(),
                    starts_at: 0,
                    ends_at: 10,
                    comment: String::new(),
                    created_by: String::new(),
                    mirrored: BTreeMap::new(),
                },
                parse(text)
                    .unwrap()
                    .into_iter()
                    .map(|m| Compiled::new(m).unwrap())
                    .collect(),
            )],
        };
        let s = silence("alertname=~Gpu.*");
        assert!(s.silencing(&labels(&[("alertname", "GpuHot")])).is_some());
        assert!(s.silencing(&labels(&[("alertname", "HotGpu")])).is_none());
        let s = silence("host=gpu01,team!=gpu");
        assert!(s.silencing(&labels(&[("host", "gpu01")])).is_some());
        assert!(
            s.silencing(&labels(&[("host", "gpu01"), ("team", "gpu")]))
                .is_none()
        );
        assert!(s.silencing(&labels(&[("host", "gpu011")])).is_none());
        // Only silences in force count.
        let stored = s.list[0].0.clone();
        assert_eq!(Silences::active(vec![stored.clone()], 5).iter().count(), 1);
        assert_eq!(Silences::active(vec![stored], 10).iter().count(), 0);
    }
}
