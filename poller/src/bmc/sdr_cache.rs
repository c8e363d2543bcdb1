//! SDR repositories already read, per BMC. A real BMC's repository takes hundreds of
//! round trips to read (a record in chunks of 16 bytes) and changes only with its
//! firmware or hardware: each read first asks for the repository's counts and change
//! times (one round trip) and reuses the records while those stay the same, for at most
//! an hour (some BMCs never stamp their changes).

use super::{BmcError, Session};
use ipmi_rs::storage::sdr::record::Record;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AT_MOST: Duration = Duration::from_secs(3600);

struct Cached {
    /// Record count, free space, last addition and last erase time, as the BMC gave them.
    stamp: Vec<u8>,
    read_at: Instant,
    records: Arc<Vec<Record>>,
}

static CACHE: Mutex<Option<HashMap<String, Cached>>> = Mutex::new(None);

/// The BMC's SDR records, from the cache while its repository is unchanged.
pub(super) fn records(s: &mut Session) -> Result<Arc<Vec<Record>>, BmcError> {
    // Get SDR Repository Info: version, count (2), free (2), addition (4), erase (4), ...
    let stamp = s
        .raw("get SDR repository info", 0x0A, 0x20, vec![])
        .ok()
        .and_then(|info| info.get(1..13).map(<[u8]>::to_vec));
    if let Some(stamp) = &stamp
        && let Ok(cache) = CACHE.lock()
        && let Some(hit) = cache.as_ref().and_then(|c| c.get(&s.addr))
        && &hit.stamp == stamp
        && hit.read_at.elapsed() < AT_MOST
    {
        return Ok(hit.records.clone());
    }
    let records = Arc::new(s.sdrs()?);
    if let Some(stamp) = stamp
        && let Ok(mut cache) = CACHE.lock()
    {
        cache.get_or_insert_with(HashMap::new).insert(
            s.addr.clone(),
            Cached {
                stamp,
                read_at: Instant::now(),
                records: records.clone(),
            },
        );
    }
    Ok(records)
}
