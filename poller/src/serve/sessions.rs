//! The live SSH session of every host `dcmon serve` polls, for commands run between
//! probe runs (dashboard actions): they open channels of their own on the same
//! connection, so they need no new handshake (sshd allows 10 channels a connection).

use crate::ssh::SshSession;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct Sessions {
    by_host: Arc<RwLock<HashMap<String, Arc<SshSession>>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.by_host.read().unwrap_or_else(|e| e.into_inner());
        write!(f, "Sessions({} hosts)", map.len())
    }
}

impl Sessions {
    /// The host's session, if it is up.
    pub fn get(&self, host: &str) -> Option<Arc<SshSession>> {
        let map = self.by_host.read().unwrap_or_else(|e| e.into_inner());
        map.get(host).filter(|s| !s.is_closed()).cloned()
    }

    pub(crate) fn set(&self, host: &str, session: Arc<SshSession>) {
        let mut map = self.by_host.write().unwrap_or_else(|e| e.into_inner());
        map.insert(host.to_string(), session);
    }

    pub(crate) fn remove(&self, host: &str) {
        let mut map = self.by_host.write().unwrap_or_else(|e| e.into_inner());
        map.remove(host);
    }
}
