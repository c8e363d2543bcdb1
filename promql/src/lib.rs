//! PromQL over dcmon's store: the subset real alert rules use, parsed by `promql-parser`
//! and evaluated at one instant, with Prometheus's semantics and the series names and
//! labels `/metrics` exposes (`host` the host, a probe's own `host` label renamed
//! `exported_host`). Used by alert rules and by `/api/query`.
//!
//! `parse` refuses, with the reason, anything outside the subset, so a rule never fails
//! later at evaluation for a construct we do not have.

mod check;
mod eval;
pub mod functions;
mod source;

pub use eval::{Sample, Value, eval};
pub use source::{Memo, RawSeries, Source};

use std::collections::BTreeMap;
use thiserror::Error;

/// A series' labels, `__name__` included where the series still has its name.
pub type Labels = BTreeMap<String, String>;

/// How far back an instant selector looks for a series' latest sample (Prometheus's
/// default lookback delta).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// A query that parsed and stays inside the supported subset.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub(crate) expr: promql_parser::parser::Expr,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("PromQL syntax: {0}")]
    Syntax(String),
    #[error("not supported by dcmon: {0}")]
    Unsupported(String),
    #[error("evaluation: {0}")]
    Eval(String),
}

/// Most operators, parentheses and set words one query may hold. They bound how deep
/// its syntax tree is, and parsing, checking, evaluating and dropping a tree all recurse:
/// thousands deep overflow a worker thread's stack. Real rules use a handful.
pub const MAX_NESTING: usize = 256;

/// Parses `text` and checks it stays inside what the evaluator implements.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let nesting = nesting_tokens(text);
    if nesting > MAX_NESTING {
        return Err(QueryError::Unsupported(format!(
            "{nesting} operators and parentheses (at most {MAX_NESTING})"
        )));
    }
    let expr = promql_parser::parser::parse(text).map_err(|e| QueryError::Syntax(one_line(&e)))?;
    check::supported(&expr)?;
    Ok(Query {
        text: text.to_string(),
        expr,
    })
}

/// An upper bound of the syntax tree's depth: every `(`, operator character and set word
/// outside string literals.
fn nesting_tokens(text: &str) -> usize {
    let mut count = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word = String::new();
    let end_word = |word: &mut String, count: &mut usize| {
        if matches!(word.to_ascii_lowercase().as_str(), "and" | "or" | "unless") {
            *count += 1;
        }
        word.clear();
    };
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        end_word(&mut word, &mut count);
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' => count += 1,
            _ => {}
        }
    }
    end_word(&mut word, &mut count);
    count
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
