//! The latest value of every series, in memory, for the dashboard: what the last round
//! read, before (and whether or not) it reached the disk.

use dcmon_probes::{Labels, Sample};
use std::collections::HashMap;
use std::sync::RwLock;

/// (host, series name, labels) → (ms since the epoch, value)
type Key = (String, String, Labels);

#[derive(Default)]
pub struct Live {
    latest: RwLock<HashMap<Key, (i64, f64)>>,
}

impl Live {
    pub fn update<'a>(&self, host: &str, ts_ms: i64, samples: impl Iterator<Item = &'a Sample>) {
        let mut latest = self.latest.write().unwrap_or_else(|e| e.into_inner());
        for s in samples {
            latest.insert(
                (host.to_string(), s.name.clone(), s.labels.clone()),
                (ts_ms, s.value),
            );
        }
    }

    pub fn get(&self, host: &str, name: &str, labels: &Labels) -> Option<(i64, f64)> {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        latest
            .get(&(host.to_string(), name.to_string(), labels.clone()))
            .copied()
    }

    /// Forgets a host that left the inventory.
    pub fn forget(&self, host: &str) {
        self.latest
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(h, _, _), _| h != host);
    }

    pub fn len(&self) -> usize {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
