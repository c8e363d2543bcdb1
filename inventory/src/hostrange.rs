//! Host range expansion: `gpu[01-16].dc1`, `10.0.0.[1-50]`, `node[1,3,7-9]`.
//!
//! The syntax is pdsh/ClusterShell's: each `[...]` holds comma-separated numbers or
//! `start-end` ranges; several brackets multiply. A start with a leading zero sets the
//! width, so `[08-10]` gives `08 09 10`.

use thiserror::Error;

/// The most names one pattern may expand to: a typo like `[1-1000000]` must not eat memory.
pub const MAX_EXPANSION: usize = 100_000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("unclosed `[` in host pattern `{0}`")]
    Unclosed(String),
    #[error("`]` without `[` in host pattern `{0}`")]
    StrayClose(String),
    #[error("empty `[]` in host pattern `{0}`")]
    Empty(String),
    #[error("`{item}` in host pattern `{pattern}` is not a number or a `start-end` range")]
    NotNumeric { pattern: String, item: String },
    #[error("range `{item}` in host pattern `{pattern}` runs backwards (start > end)")]
    Backwards { pattern: String, item: String },
    #[error("host pattern `{0}` expands to more than {MAX_EXPANSION} names")]
    TooMany(String),
}

/// Expands one host pattern into names, in order. A pattern without brackets is itself.
pub fn expand(pattern: &str) -> Result<Vec<String>, RangeError> {
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while !rest.is_empty() {
        let open = rest.find('[');
        let close = rest.find(']');
        match (open, close) {
            (None, None) => {
                append_literal(&mut names, rest);
                break;
            }
            (None, Some(_)) => return Err(RangeError::StrayClose(pattern.to_string())),
            (Some(o), Some(c)) if c < o => return Err(RangeError::StrayClose(pattern.to_string())),
            (Some(_), None) => return Err(RangeError::Unclosed(pattern.to_string())),
            (Some(o), Some(c)) => {
                append_literal(&mut names, &rest[..o]);
                let body = &rest[o + 1..c];
                if body.contains('[') {
                    return Err(RangeError::Unclosed(pattern.to_string()));
                }
                let values = bracket_values(pattern, body)?;
                if names.len().saturating_mul(values.len()) > MAX_EXPANSION {
                    return Err(RangeError::TooMany(pattern.to_string()));
                }
                names = names
                    .iter()
                    .flat_map(|prefix| values.iter().map(move |v| format!("{prefix}{v}")))
                    .collect();
                rest = &rest[c + 1..];
            }
        }
    }
    Ok(names)
}

fn append_literal(names: &mut [String], literal: &str) {
    for name in names.iter_mut() {
        name.push_str(literal);
    }
}

/// The values of one bracket body such as `01-03,07`.
fn bracket_values(pattern: &str, body: &str) -> Result<Vec<String>, RangeError> {
    if body.trim().is_empty() {
        return Err(RangeError::Empty(pattern.to_string()));
    }
    let mut values = Vec::new();
    for item in body.split(',') {
        let item = item.trim();
        let not_numeric = || RangeError::NotNumeric {
            pattern: pattern.to_string(),
            item: item.to_string(),
        };
        let (start, end) = item.split_once('-').unwrap_or((item, item));
        let is_number =
            |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
        if !is_number(start) || !is_number(end) {
            return Err(not_numeric());
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        let (from, to): (u64, u64) = (
            start.parse().map_err(|_| not_numeric())?,
            end.parse().map_err(|_| not_numeric())?,
        );
        if from > to {
            return Err(RangeError::Backwards {
                pattern: pattern.to_string(),
                item: item.to_string(),
            });
        }
        if (to - from) as usize >= MAX_EXPANSION
            || values.len() + (to - from) as usize >= MAX_EXPANSION
        {
            return Err(RangeError::TooMany(pattern.to_string()));
        }
        values.extend((from..=to).map(|n| format!("{n:0width$}")));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_name_is_itself() {
        assert_eq!(expand("db1.dc1").unwrap(), vec!["db1.dc1"]);
    }

    #[test]
    fn zero_padded_range_keeps_width() {
        let names = expand("gpu[08-11].dc1").unwrap();
        assert_eq!(
            names,
            vec!["gpu08.dc1", "gpu09.dc1", "gpu10.dc1", "gpu11.dc1"]
        );
    }

    #[test]
    fn address_range_and_lists() {
        assert_eq!(
            expand("10.0.0.[1-3]").unwrap(),
            vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(expand("n[1,3,7-8]").unwrap(), vec!["n1", "n3", "n7", "n8"]);
    }

    #[test]
    fn brackets_multiply_in_order() {
        assert_eq!(
            expand("r[1-2]n[1-2]").unwrap(),
            vec!["r1n1", "r1n2", "r2n1", "r2n2"]
        );
    }

    #[test]
    fn bad_patterns_are_named() {
        assert!(matches!(
            expand("gpu[01-16.dc1"),
            Err(RangeError::Unclosed(_))
        ));
        assert!(matches!(expand("gpu01]"), Err(RangeError::StrayClose(_))));
        assert!(matches!(expand("gpu[]"), Err(RangeError::Empty(_))));
        assert!(matches!(
            expand("gpu[a-b]"),
            Err(RangeError::NotNumeric { .. })
        ));
        assert!(matches!(
            expand("gpu[16-01]"),
            Err(RangeError::Backwards { .. })
        ));
        assert!(matches!(
            expand("gpu[1-1000000]"),
            Err(RangeError::TooMany(_))
        ));
        assert!(matches!(
            expand("a[1-1000]b[1-1000]"),
            Err(RangeError::TooMany(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(s in "[a-z0-9\\[\\]\\-,.]{0,40}") {
            let _ = expand(&s);
        }
    }
}
