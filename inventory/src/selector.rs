//! Selectors pick hosts on the command line: a name, a glob (`gpu*`), `group:NAME`,
//! `label:key=value`, or several of these joined by commas (their union).

use crate::model::{Host, Inventory};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("selector `{0}` is empty")]
    Empty(String),
    #[error("selector `{selector}`: no group `{group}` in the inventory (groups: {known})")]
    UnknownGroup {
        selector: String,
        group: String,
        known: String,
    },
    #[error("selector `{0}`: write labels as `label:key=value`")]
    BadLabel(String),
    #[error("selector `{selector}`: bad glob: {why}")]
    BadGlob { selector: String, why: String },
    #[error("selector `{0}` matches no host")]
    NoMatch(String),
}

/// The hosts a selector picks, in inventory order.
pub fn select<'a>(
    inventory: &'a Inventory,
    selector: &str,
) -> Result<Vec<&'a Host>, SelectorError> {
    let mut picked = vec![false; inventory.hosts.len()];
    for part in selector.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(SelectorError::Empty(selector.to_string()));
        }
        let matcher = Matcher::parse(inventory, part)?;
        let mut any = false;
        for (i, host) in inventory.hosts.iter().enumerate() {
            if matcher.matches(host) {
                picked[i] = true;
                any = true;
            }
        }
        if !any {
            return Err(SelectorError::NoMatch(part.to_string()));
        }
    }
    Ok(inventory
        .hosts
        .iter()
        .zip(picked)
        .filter_map(|(h, p)| p.then_some(h))
        .collect())
}

enum Matcher {
    Group(String),
    Label(String, String),
    Glob(glob::Pattern),
    Name(String),
}

impl Matcher {
    fn parse(inventory: &Inventory, part: &str) -> Result<Matcher, SelectorError> {
        if let Some(group) = part.strip_prefix("group:") {
            if !inventory.groups.iter().any(|g| g == group) {
                return Err(SelectorError::UnknownGroup {
                    selector: part.to_string(),
                    group: group.to_string(),
                    known: inventory.groups.join(", "),
                });
            }
            return Ok(Matcher::Group(group.to_string()));
        }
        if let Some(label) = part.strip_prefix("label:") {
            let (k, v) = label
                .split_once('=')
                .ok_or_else(|| SelectorError::BadLabel(part.to_string()))?;
            if k.is_empty() {
                return Err(SelectorError::BadLabel(part.to_string()));
            }
            return Ok(Matcher::Label(k.to_string(), v.to_string()));
        }
        if part.contains(['*', '?', '[']) {
            let pattern = glob::Pattern::new(part).map_err(|e| SelectorError::BadGlob {
                selector: part.to_string(),
                why: e.msg.to_string(),
            })?;
            return Ok(Matcher::Glob(pattern));
        }
        Ok(Matcher::Name(part.to_string()))
    }

    fn matches(&self, host: &Host) -> bool {
        match self {
            Matcher::Group(g) => host.groups.iter().any(|hg| hg == g),
            Matcher::Label(k, v) => host.labels.get(k) == Some(v),
            Matcher::Glob(p) => p.matches(&host.name),
            Matcher::Name(n) => &host.name == n,
        }
    }
}
