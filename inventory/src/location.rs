//! Where in `inventory.toml` a problem is: a key path resolved to `LINE:COL` through
//! toml_edit's spans, so every message can point an operator at the exact spot.

use std::fmt;
use std::ops::Range;

/// One step of a path into the TOML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Self {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// Builds a path: `path!["hosts", 3, "name"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { [$($crate::location::Seg::from($seg)),*] };
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Converts a byte offset in `text` to a line and column.
pub fn line_col(text: &str, offset: usize) -> LineCol {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    LineCol {
        line,
        col: before[line_start..].chars().count() + 1,
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Finds the span of the item a path names. For the last key of a path it gives the
/// value (what is wrong is usually the value); `key_only` asks for the key itself (an
/// unknown key). Falls back to the nearest ancestor that exists.
pub fn span_of(
    doc: &toml_edit::Document<&str>,
    path: &[Seg],
    key_only: bool,
) -> Option<Range<usize>> {
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = None;
    for (i, seg) in path.iter().enumerate() {
        let next = match seg {
            Seg::Key(k) => {
                if let Some(span) = key_span(item, k) {
                    best = Some(span);
                }
                if key_only && i + 1 == path.len() {
                    return best;
                }
                item.get(k.as_str())
            }
            Seg::Index(n) => item.get(*n),
        };
        let Some(next) = next else { return best };
        item = next;
        if let Some(span) = item.span() {
            best = Some(span);
        }
    }
    best
}

fn key_span(item: &toml_edit::Item, key: &str) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::Table(t) => t.key(key)?.span(),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => t.key(key)?.span(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), LineCol { line: 1, col: 1 });
        assert_eq!(line_col(text, 6), LineCol { line: 2, col: 1 });
        assert_eq!(line_col(text, 11), LineCol { line: 2, col: 6 });
    }

    #[test]
    fn spans_point_at_values_and_keys() {
        let text = "[defaults]\nport = 22\n\n[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"b\"\nlabels = { rack = 1 }\n";
        let doc = toml_edit::Document::parse(text).unwrap();
        let at = |p: &[Seg], k| line_col(text, span_of(&doc, p, k).unwrap().start);
        assert_eq!(
            at(&path!["defaults", "port"], false),
            LineCol { line: 2, col: 8 }
        );
        assert_eq!(
            at(&path!["defaults", "port"], true),
            LineCol { line: 2, col: 1 }
        );
        assert_eq!(
            at(&path!["hosts", 1, "name"], false),
            LineCol { line: 7, col: 8 }
        );
        assert_eq!(
            at(&path!["hosts", 1, "labels", "rack"], true),
            LineCol { line: 8, col: 12 }
        );
    }
}
