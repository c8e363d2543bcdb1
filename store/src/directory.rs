//! The inventory's view of each host (groups, labels), replaced whole by the poller
//! on every (re)load: the dashboard filters by it and lists hosts not polled yet.

use crate::{Store, StoreError, sql};
use serde::Serialize;
use std::collections::BTreeMap;

/// One host as the inventory lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Listed {
    pub host: String,
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Store {
    /// Replaces the directory with `hosts`, in one transaction.
    pub fn set_directory(&mut self, hosts: &[Listed]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin directory"))?;
        tx.execute("DELETE FROM directory", [])
            .map_err(sql("clear directory"))?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO directory (host, groups, labels) VALUES (?1, ?2, ?3)")
                .map_err(sql("prepare directory"))?;
            for h in hosts {
                // Serializing strings and maps of strings cannot fail.
                let groups = serde_json::to_string(&h.groups).unwrap_or_default();
                let labels = serde_json::to_string(&h.labels).unwrap_or_default();
                insert
                    .execute((&h.host, groups, labels))
                    .map_err(sql("write directory"))?;
            }
        }
        tx.commit().map_err(sql("commit directory"))
    }

    /// The directory, or one host of it.
    pub fn directory(&self, host: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT host, groups, labels FROM directory WHERE {} ORDER BY host",
                crate::host_clause(host, "host")
            ))
            .map_err(sql("prepare directory read"))?;
        let rows = stmt
            .query_map([host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read directory"))?;
        let mut out = Vec::new();
        for row in rows {
            let (host, groups, labels) = row.map_err(sql("read directory row"))?;
            // Written by set_directory only; a damaged row reads as empty, not as an error.
            out.push(Listed {
                host,
                groups: serde_json::from_str(&groups).unwrap_or_default(),
                labels: serde_json::from_str(&labels).unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Listed;

    #[test]
    fn the_directory_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::Store::open(&dir.path().join("d.db")).unwrap();
        let host = |name: &str, group: &str| Listed {
            host: name.into(),
            groups: vec![group.into()],
            labels: [("rack".to_string(), "<b>r1</b>".to_string())].into(),
        };
        store
            .set_directory(&[host("a", "gpu"), host("b", "cpu")])
            .unwrap();
        store.set_directory(&[host("b", "storage")]).unwrap();
        assert_eq!(store.directory(None).unwrap(), vec![host("b", "storage")]);
        assert_eq!(store.directory(Some("a")).unwrap(), vec![]);
    }
}
