//! The type of every known key, checked on the parsed document before serde reads it.
//! serde stops at its first type error, which hid every other problem of the file: here
//! each wrong value is a problem at its own `LINE:COL`, and is then removed from the text
//! serde reads, so the rest of the file is still checked.

use crate::location::Seg;
use toml_edit::{Item, Value};

/// What a key's value must be.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    Str,
    Bool,
    /// `u16`.
    Port,
    /// `u32`.
    Count,
    /// `i64`: range checks come later, with their own messages.
    Int,
    StrList,
    /// A table of strings (`labels`).
    StrTable,
    /// `[warning, critical]`: two numbers.
    Pair,
    /// One number, whole or not.
    Num,
    Table(&'static [(&'static str, Want)]),
    /// A table whose every value is a table of these keys (`[groups.NAME]`).
    TableOf(&'static [(&'static str, Want)]),
    /// An array of tables of these keys (`[[hosts]]`).
    ArrayOf(&'static [(&'static str, Want)]),
}

use Want::*;

const BMC: &[(&str, Want)] = &[
    ("address", Str),
    ("port", Port),
    ("user", Str),
    ("password_file", Str),
    ("cipher_suite", Int),
];

const ENTRY: &[(&str, Want)] = &[
    ("name", Str),
    ("address", Str),
    ("groups", StrList),
    ("hosts", StrList),
    ("transport", Str),
    ("user", Str),
    ("port", Port),
    ("identity", Str),
    ("passphrase_file", Str),
    ("certificate", Str),
    ("jump", Str),
    ("ssh_config", Str),
    ("known_hosts", Str),
    ("accept_new_host_keys", Bool),
    ("timeout", Str),
    ("interval", Str),
    ("offline_after", Count),
    ("connect_timeout", Str),
    ("become", Bool),
    ("probes", StrList),
    ("labels", StrTable),
    ("log_files", StrList),
    ("custom_scripts", StrList),
    ("expected_gpus", Count),
    ("fan_profile", Str),
    ("shell", Str),
    ("bmc", Table(BMC)),
];

const SCHEDULE: &[(&str, Want)] = &[("interval", Str), ("schedule", Str), ("timeout", Str)];

const RETENTION: &[(&str, Want)] = &[("samples", Str), ("logs", Str)];

const THRESHOLDS: &[(&str, Want)] = &[
    ("cpu", Pair),
    ("memory", Pair),
    ("gpu_temp", Pair),
    ("bmc_temp", Pair),
    ("nvme_wear", Pair),
];

const WEB: &[(&str, Want)] = &[
    ("listen", Str),
    ("view", Str),
    ("admin_token_file", Str),
    ("viewer_token_file", Str),
    ("tls_cert", Str),
    ("tls_key", Str),
    ("trusted_proxies", StrList),
    ("thresholds", Table(THRESHOLDS)),
];

const ALERTING: &[(&str, Want)] = &[
    ("evaluation_interval", Str),
    ("builtin", Bool),
    ("disable", StrList),
];

const ALERT: &[(&str, Want)] = &[
    ("name", Str),
    ("expr", Str),
    ("for", Str),
    ("keep_firing_for", Str),
    ("severity", Str),
    ("labels", StrTable),
    ("annotations", StrTable),
];

const SMTP: &[(&str, Want)] = &[
    ("server", Str),
    ("from", Str),
    ("to", StrList),
    ("user", Str),
    ("password_file", Str),
    ("tls", Str),
];

const NOTIFY: &[(&str, Want)] = &[
    ("name", Str),
    ("alertmanager", Str),
    ("smtp", Table(SMTP)),
    ("webhook", Str),
    ("slack", Str),
    ("match", StrTable),
    ("group_by", StrList),
    ("group_wait", Str),
    ("group_interval", Str),
    ("repeat_interval", Str),
    ("send_resolved", Bool),
];

const ALERTS_DEFAULTS: &[(&str, Want)] = &[
    ("cpu", Num),
    ("memory", Num),
    ("filesystem", Num),
    ("gpu_temp", Num),
    ("nvme_wear", Num),
    ("probe_failures", Count),
];

const CLUSTER: &[(&str, Want)] = &[("shard", Str), ("replicas", Count)];

const BASIC_AUTH: &[(&str, Want)] = &[("username", Str), ("password_file", Str)];

const REMOTE_TLS: &[(&str, Want)] = &[("ca_file", Str), ("cert_file", Str), ("key_file", Str)];

const REMOTE_QUEUE: &[(&str, Want)] = &[
    ("capacity", Str),
    ("max_samples_per_send", Count),
    ("batch_send_deadline", Str),
    ("min_backoff", Str),
    ("max_backoff", Str),
    ("timeout", Str),
];

const REMOTE_WRITE: &[(&str, Want)] = &[
    ("name", Str),
    ("url", Str),
    ("bearer_token_file", Str),
    ("basic_auth", Table(BASIC_AUTH)),
    ("tls", Table(REMOTE_TLS)),
    ("external_labels", StrTable),
    ("queue", Table(REMOTE_QUEUE)),
];

/// The whole file.
pub const TOP: &[(&str, Want)] = &[
    ("cluster", Table(CLUSTER)),
    ("remote_write", ArrayOf(REMOTE_WRITE)),
    ("alerting", Table(ALERTING)),
    ("alerts_defaults", Table(ALERTS_DEFAULTS)),
    ("alerts", ArrayOf(ALERT)),
    ("notify", ArrayOf(NOTIFY)),
    ("defaults", Table(ENTRY)),
    ("groups", TableOf(ENTRY)),
    ("hosts", ArrayOf(ENTRY)),
    ("probes", TableOf(SCHEDULE)),
    ("retention", Table(RETENTION)),
    ("web", Table(WEB)),
];

/// A value of the wrong type: where, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistyped {
    pub path: Vec<Seg>,
    pub message: String,
}

/// Every value of a known key whose type is wrong, in document order of the schema walk.
pub fn check(root: &Item) -> Vec<Mistyped> {
    let mut found = Vec::new();
    if let Some(table) = root.as_table_like() {
        check_keys(table, TOP, &mut Vec::new(), &mut found);
    }
    found
}

fn check_keys(
    table: &dyn toml_edit::TableLike,
    keys: &[(&str, Want)],
    at: &mut Vec<Seg>,
    found: &mut Vec<Mistyped>,
) {
    for (key, item) in table.iter() {
        // Unknown keys are reported by the loader with a suggestion.
        let Some((_, want)) = keys.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        at.push(Seg::Key(key.to_string()));
        check_item(key, item, *want, at, found);
        at.pop();
    }
}

fn check_item(key: &str, item: &Item, want: Want, at: &mut Vec<Seg>, found: &mut Vec<Mistyped>) {
    let wrong = |what: String, at: &[Seg], found: &mut Vec<Mistyped>| {
        found.push(Mistyped {
            path: at.to_vec(),
            message: format!("`{key}`: {what}, expected {}", expected(want)),
        })
    };
    match want {
        Table(keys) => match item.as_table_like() {
            Some(table) => check_keys(table, keys, at, found),
            None => wrong(found_text(item), at, found),
        },
        TableOf(keys) => match item.as_table_like() {
            Some(table) => {
                for (name, inner) in table.iter() {
                    at.push(Seg::Key(name.to_string()));
                    check_item(name, inner, Table(keys), at, found);
                    at.pop();
                }
            }
            None => wrong(found_text(item), at, found),
        },
        ArrayOf(keys) => {
            if let Some(tables) = item.as_array_of_tables() {
                for (i, table) in tables.iter().enumerate() {
                    at.push(Seg::Index(i));
                    check_keys(table, keys, at, found);
                    at.pop();
                }
            } else if let Some(array) = item.as_array() {
                for (i, value) in array.iter().enumerate() {
                    at.push(Seg::Index(i));
                    match value.as_inline_table() {
                        Some(table) => check_keys(table, keys, at, found),
                        None => found.push(Mistyped {
                            path: at.clone(),
                            message: format!(
                                "`{key}` entry {}: invalid type: {}, expected a table",
                                i + 1,
                                describe(value)
                            ),
                        }),
                    }
                    at.pop();
                }
            } else {
                wrong(found_text(item), at, found);
            }
        }
        _ => match item.as_value() {
            None => wrong(found_text(item), at, found),
            Some(value) => {
                if let Some(what) = scalar_problem(key, value, want, at, found) {
                    wrong(what, at, found);
                }
            }
        },
    }
}

/// What is wrong with a plain value, if anything; list and table entries are reported
/// on their own (the returned text is then `None`).
fn scalar_problem(
    key: &str,
    value: &Value,
    want: Want,
    at: &mut Vec<Seg>,
    found: &mut Vec<Mistyped>,
) -> Option<String> {
    let int_in = |low: i64, high: i64| match value {
        Value::Integer(n) if (low..=high).contains(n.value()) => None,
        Value::Integer(n) => Some(format!("invalid value: integer `{}`", n.value())),
        v => Some(format!("invalid type: {}", describe(v))),
    };
    match want {
        Str => (!value.is_str()).then(|| format!("invalid type: {}", describe(value))),
        Bool => (!value.is_bool()).then(|| format!("invalid type: {}", describe(value))),
        Port => int_in(0, u16::MAX.into()),
        Count => int_in(0, u32::MAX.into()),
        Int => int_in(i64::MIN, i64::MAX),
        Num => (!(value.is_integer() || value.is_float()))
            .then(|| format!("invalid type: {}", describe(value))),
        StrList | Pair => {
            let Some(array) = value.as_array() else {
                return Some(format!("invalid type: {}", describe(value)));
            };
            if let Pair = want
                && array.len() != 2
            {
                return Some(format!("invalid length {}", array.len()));
            }
            for (i, v) in array.iter().enumerate() {
                let fits = match want {
                    Pair => v.is_integer() || v.is_float(),
                    _ => v.is_str(),
                };
                if !fits {
                    at.push(Seg::Index(i));
                    found.push(Mistyped {
                        path: at.clone(),
                        message: format!(
                            "`{key}` entry {}: invalid type: {}, expected {}",
                            i + 1,
                            describe(v),
                            if let Pair = want {
                                "a number"
                            } else {
                                "a string"
                            }
                        ),
                    });
                    at.pop();
                }
            }
            None
        }
        StrTable => {
            let Some(table) = value.as_inline_table() else {
                return Some(format!("invalid type: {}", describe(value)));
            };
            for (name, v) in table.iter() {
                if !v.is_str() {
                    at.push(Seg::Key(name.to_string()));
                    found.push(Mistyped {
                        path: at.clone(),
                        message: format!(
                            "`{key}.{name}`: invalid type: {}, expected a string",
                            describe(v)
                        ),
                    });
                    at.pop();
                }
            }
            None
        }
        Table(_) | TableOf(_) | ArrayOf(_) => None,
    }
}

fn expected(want: Want) -> &'static str {
    match want {
        Str => "a string",
        Bool => "true or false",
        Port => "a whole number from 0 to 65535",
        Count => "a whole number from 0 to 4294967295",
        Int => "a whole number",
        StrList => "an array of strings",
        StrTable => "a table of strings",
        Pair => "an array of two numbers",
        Num => "a number",
        Table(_) => "a table",
        TableOf(_) => "a table of tables",
        ArrayOf(_) => "an array of tables",
    }
}

fn found_text(item: &Item) -> String {
    match item {
        Item::Value(v) => format!("invalid type: {}", describe(v)),
        Item::Table(_) => "invalid type: a table".to_string(),
        Item::ArrayOfTables(_) => "invalid type: an array of tables".to_string(),
        Item::None => "missing value".to_string(),
    }
}

/// A value as serde's messages name one: `string "22"`, ``integer `5` ``.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {:?}", s.value()),
        Value::Integer(n) => format!("integer `{}`", n.value()),
        Value::Float(f) => format!("floating point `{}`", f.value()),
        Value::Boolean(b) => format!("boolean `{}`", b.value()),
        Value::Datetime(_) => "a date-time".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::InlineTable(_) => "a table".to_string(),
    }
}

/// `text` without the values at `paths` (each a key in a table), for serde to read the
/// rest. A path it cannot follow is left alone.
pub fn without(text: &str, paths: &[Vec<Seg>]) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().ok()?;
    for path in paths {
        // An entry of a list is removed with its whole key.
        let key_path: Vec<Seg> = match path.iter().rposition(|s| matches!(s, Seg::Key(_))) {
            Some(last_key) => path[..=last_key].to_vec(),
            None => continue,
        };
        remove(doc.as_item_mut(), &key_path);
    }
    Some(doc.to_string())
}

fn remove(item: &mut Item, path: &[Seg]) {
    match path {
        [Seg::Index(i), rest @ ..] => {
            if let Some(tables) = item.as_array_of_tables_mut() {
                if let Some(table) = tables.get_mut(*i) {
                    remove_in(table, rest);
                }
            } else if let Some(array) = item.as_array_mut()
                && let Some(Value::InlineTable(table)) = array.get_mut(*i)
            {
                remove_in(table, rest);
            }
        }
        path => {
            if let Some(table) = item.as_table_like_mut() {
                remove_in(table, path);
            }
        }
    }
}

fn remove_in(table: &mut dyn toml_edit::TableLike, path: &[Seg]) {
    match path {
        [Seg::Key(k)] => {
            table.remove(k);
        }
        [Seg::Key(k), rest @ ..] => {
            if let Some(next) = table.get_mut(k) {
                remove(next, rest);
            }
        }
        _ => {}
    }
}
