//! Which resources a Redfish read fetches. The service's layout (which chassis, which
//! of Thermal/Power or their successors each has, which systems and managers) is found
//! once and kept; each round then fetches just those resources, inlining the members
//! of the newer schemas' collections as `$expand` would, and hands each to the parser.
//!
//! Only paths on the BMC itself (`/redfish/v1/...`) are followed: a link to another
//! host (DMTF's mockup links a PDU outlet) is never fetched.

use super::{RedfishError, Service};
use dcmon_probes::ProbeOutput;
use dcmon_probes::redfish::Reader;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long a found layout is kept (chassis and links change with hardware only).
const LAYOUT_TTL: Duration = Duration::from_secs(600);

/// Most members taken from a collection: chassis and systems (a blade enclosure lists
/// a few dozen), managers, and a collection's members inlined (fans, PSUs, sensors).
const MAX_CHASSIS: usize = 32;
const MAX_SYSTEMS: usize = 32;
const MAX_MANAGERS: usize = 8;
const MAX_MEMBERS: usize = 512;
/// Log services read per system or manager, pages of entries followed per service, and
/// entries fetched one by one per service (when a BMC lists links only).
const MAX_LOG_SERVICES: usize = 8;
const MAX_LOG_PAGES: usize = 4;
const MAX_LOG_FETCHES: usize = 256;

#[derive(Debug)]
pub(super) struct Layout {
    found: Instant,
    targets: Vec<Target>,
    /// The `FirmwareInventory` collection, read on its own schedule.
    firmware: Option<String>,
    /// Supermicro's fan mode (`Oem.Supermicro.FanMode` of a manager), where offered.
    pub fan_mode: Option<String>,
    /// How many levels `$expand` takes (the service root's `ProtocolFeaturesSupported`),
    /// 0 when the BMC does not: collections then cost a request a member.
    expand_levels: u64,
    /// A target answered 404: the layout changed; find it again next round.
    stale: bool,
}

/// Resources a walk fetched (chassis, systems, managers): the read that walked reads
/// them from here instead of asking again; no later read does (they would be old).
type Walked = HashMap<String, Value>;

#[derive(Debug, Clone)]
struct Target {
    path: String,
    inline: Inline,
}

/// What of a target's links is fetched and put in place before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inline {
    Nothing,
    /// ThermalSubsystem: its `Fans` (unless the Sensors collection gives them).
    Fans,
    /// PowerSubsystem: its `PowerSupplies`, each with its `Metrics`.
    PowerSupplies,
    /// A collection (Sensors): its members.
    Members,
    /// A log service's entries: the first pages, members new since the cursor.
    Entries,
}

/// Finds the service's layout again when it is old or a target moved; what that walk
/// fetched, for the caller's read.
pub(super) async fn ensure_layout(
    s: &mut Service,
    password: &str,
    until: Instant,
) -> Result<Walked, RedfishError> {
    let fresh = s
        .layout
        .as_ref()
        .is_some_and(|l| !l.stale && l.found.elapsed() < LAYOUT_TTL);
    if fresh {
        return Ok(Walked::new());
    }
    s.layout = None;
    let (layout, walked) = discover(s, password, until).await?;
    s.layout = Some(layout);
    Ok(walked)
}

/// What a read takes in: everything (a probe run), or the readings alone (a fan
/// status asked for by an operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Readings,
}

/// Reads the BMC by `until`; `log_cursor` is the saved `redfish` log cursor. Readings
/// first: a log or firmware inventory that fails or runs out of time afterwards is a
/// warning, and the readings still count.
pub(super) async fn read(
    s: &mut Service,
    password: &str,
    until: Instant,
    log_cursor: Option<&str>,
    scope: Scope,
) -> Result<ProbeOutput, RedfishError> {
    let mut walked = ensure_layout(s, password, until).await?;
    let targets = s
        .layout
        .as_ref()
        .map(|l| l.targets.clone())
        .unwrap_or_default();
    let (logs, readings): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|t| t.inline == Inline::Entries);
    let mut reader = Reader::default();
    for target in readings {
        fetch(s, &target, None, &mut walked, password, until, &mut reader).await?;
    }
    if scope == Scope::Readings {
        return Ok(reader.out);
    }
    let saved = dcmon_probes::redfish::logs::saved_keys(log_cursor);
    for target in logs {
        let service = dcmon_probes::redfish::logs::service_of(&target.path);
        let after = saved.get(&service).copied();
        if let Err(e) = fetch(s, &target, after, &mut walked, password, until, &mut reader).await {
            warn(&mut reader, "redfish log", e);
        }
    }
    let firmware = s.layout.as_ref().and_then(|l| l.firmware.clone());
    if let Some(path) = firmware
        && s.firmware_read
            .is_none_or(|at| at.elapsed() >= s.firmware_interval)
    {
        // Tried again after its interval even when it failed: a BMC that is always
        // too slow for it costs one attempt an interval, not one a round.
        s.firmware_read = Some(Instant::now());
        let target = Target {
            path,
            inline: Inline::Members,
        };
        if let Err(e) = fetch(s, &target, None, &mut walked, password, until, &mut reader).await {
            warn(&mut reader, "redfish firmware inventory", e);
        }
    }
    let mut out = reader.out;
    out.fact("bmc_protocol", "redfish");
    Ok(out)
}

/// Fetches one target, puts in place what it inlines, and reads it.
async fn fetch(
    s: &mut Service,
    target: &Target,
    after: Option<u64>,
    walked: &mut Walked,
    password: &str,
    until: Instant,
    reader: &mut Reader,
) -> Result<(), RedfishError> {
    let path = match target.inline {
        Inline::Members => expanded(s, &target.path, 1),
        _ => target.path.clone(),
    };
    let value = match walked.remove(&path) {
        Some(v) => Some(v),
        None => json(s, &path, password, until, reader).await?,
    };
    let Some(mut value) = value else {
        if let Some(l) = s.layout.as_mut() {
            l.stale = true;
        }
        return Ok(());
    };
    match target.inline {
        Inline::Nothing => {}
        Inline::Fans => inline(s, &mut value, "Fans", None, password, until, reader).await?,
        Inline::PowerSupplies => {
            let metrics = Some("Metrics");
            inline(
                s,
                &mut value,
                "PowerSupplies",
                metrics,
                password,
                until,
                reader,
            )
            .await?
        }
        Inline::Members => members(s, &mut value, None, password, until, reader).await?,
        Inline::Entries => entries(s, &mut value, after, password, until, reader).await?,
    }
    reader.read(&target.path, &value);
    Ok(())
}

fn warn(reader: &mut Reader, tool: &str, e: RedfishError) {
    reader
        .out
        .warnings
        .push(dcmon_probes::ParseError::ToolFailed {
            tool: tool.to_string(),
            message: e.to_string(),
        });
}

/// Walks the service root to the resources that hold readings.
async fn discover(
    s: &mut Service,
    password: &str,
    until: Instant,
) -> Result<(Layout, Walked), RedfishError> {
    let mut scratch = Reader::default();
    let root_path = "/redfish/v1/";
    let Some(root) = json(s, root_path, password, until, &mut scratch).await? else {
        return Err(RedfishError::Unreachable(format!(
            "{}{root_path}: not found (404): no Redfish service here",
            s.conn.base
        )));
    };
    if !root.is_object() {
        return Err(RedfishError::Answer(format!(
            "{}{root_path}: the service root is not a JSON object",
            s.conn.base
        )));
    }
    let mut targets = Vec::new();
    let mut walked = Walked::new();
    let mut push = |path: String, inline: Inline| targets.push(Target { path, inline });
    for chassis in collection(s, &root, "Chassis", MAX_CHASSIS, password, until).await? {
        let Some(c) = json(s, &chassis, password, until, &mut scratch).await? else {
            continue;
        };
        push(chassis.clone(), Inline::Nothing);
        let sensors = link(&c, "Sensors");
        match (link(&c, "Thermal"), link(&c, "ThermalSubsystem")) {
            (Some(thermal), _) => push(thermal, Inline::Nothing),
            (None, subsystem) => {
                // Fans from the subsystem, unless the Sensors collection lists them.
                if let Some(subsystem) = subsystem {
                    let fans = if sensors.is_some() {
                        Inline::Nothing
                    } else {
                        Inline::Fans
                    };
                    push(subsystem, fans);
                }
                if let Some(sensors) = sensors {
                    push(sensors, Inline::Members);
                }
            }
        }
        match (link(&c, "Power"), link(&c, "PowerSubsystem")) {
            (Some(power), _) => push(power, Inline::Nothing),
            (None, subsystem) => {
                if let Some(subsystem) = subsystem {
                    push(subsystem, Inline::PowerSupplies);
                }
                if let Some(environment) = link(&c, "EnvironmentMetrics") {
                    push(environment, Inline::Nothing);
                }
            }
        }
        walked.insert(chassis, c);
    }
    let systems = collection(s, &root, "Systems", MAX_SYSTEMS, password, until).await?;
    let managers = collection(s, &root, "Managers", MAX_MANAGERS, password, until).await?;
    let mut fan_mode = None;
    // `$expand` as the service root says it takes it (`Levels` and `MaxLevels`).
    let expand = &root["ProtocolFeaturesSupported"]["ExpandQuery"];
    let expand_levels = if expand["Levels"] == Value::Bool(true) {
        expand["MaxLevels"].as_u64().unwrap_or(1).min(2)
    } else {
        0
    };
    for owner in systems.into_iter().chain(managers) {
        let Some(o) = json(s, &owner, password, until, &mut scratch).await? else {
            continue;
        };
        if let Some(oem) = o.get("Oem").and_then(|oem| oem.get("Supermicro")) {
            fan_mode = fan_mode.or(link(oem, "FanMode"));
        }
        push(owner.clone(), Inline::Nothing);
        for service in collection(s, &o, "LogServices", MAX_LOG_SERVICES, password, until).await? {
            let Some(l) = json(s, &service, password, until, &mut scratch).await? else {
                continue;
            };
            if l["ServiceEnabled"] == Value::Bool(false) {
                continue;
            }
            if let Some(entries) = link(&l, "Entries") {
                push(entries, Inline::Entries);
            }
        }
        walked.insert(owner, o);
    }
    let mut firmware = None;
    if let Some(update) = link(&root, "UpdateService")
        && let Some(u) = json(s, &update, password, until, &mut scratch).await?
    {
        firmware = link(&u, "FirmwareInventory");
    }
    let layout = Layout {
        found: Instant::now(),
        targets,
        firmware,
        fan_mode,
        expand_levels,
        stale: false,
    };
    Ok((layout, walked))
}

/// The member paths of the collection `key` links to (none when there is none).
async fn collection(
    s: &mut Service,
    parent: &Value,
    key: &str,
    limit: usize,
    password: &str,
    until: Instant,
) -> Result<Vec<String>, RedfishError> {
    let Some(path) = link(parent, key) else {
        return Ok(Vec::new());
    };
    let mut scratch = Reader::default();
    let Some(c) = json(s, &path, password, until, &mut scratch).await? else {
        return Ok(Vec::new());
    };
    Ok(member_links(&c).take(limit).collect())
}

/// Fetches the collection `key` links to, with its members (and each member's
/// `member_link`), and puts it in place of the link.
async fn inline(
    s: &mut Service,
    value: &mut Value,
    key: &str,
    member_link: Option<&str>,
    password: &str,
    until: Instant,
    reader: &mut Reader,
) -> Result<(), RedfishError> {
    let Some(path) = link(value, key) else {
        return Ok(());
    };
    // Members, and their own link (a PSU's Metrics) where one is wanted.
    let levels = if member_link.is_some() { 2 } else { 1 };
    let path = expanded(s, &path, levels);
    let Some(mut c) = json(s, &path, password, until, reader).await? else {
        return Ok(());
    };
    members(s, &mut c, member_link, password, until, reader).await?;
    value[key] = c;
    Ok(())
}

/// `path?$expand=.($levels=N)` where the BMC expands that deep (members inline in one
/// answer instead of a request each), else `path`.
fn expanded(s: &Service, path: &str, levels: u64) -> String {
    match s.layout.as_ref().map_or(0, |l| l.expand_levels) {
        n if n >= levels => format!("{path}?$expand=.($levels={levels})"),
        _ => path.to_string(),
    }
}

/// Replaces a collection's member links by the members themselves (those `$expand`
/// put inline already are kept), each with its `member_link` inline too.
async fn members(
    s: &mut Service,
    collection: &mut Value,
    member_link: Option<&str>,
    password: &str,
    until: Instant,
    reader: &mut Reader,
) -> Result<(), RedfishError> {
    let listed: Vec<Value> = collection["Members"]
        .as_array()
        .map(|m| m.iter().take(MAX_MEMBERS).cloned().collect())
        .unwrap_or_default();
    let mut fetched = Vec::with_capacity(listed.len());
    for member in listed {
        let mut m = if member.get("@odata.type").is_some() {
            member
        } else {
            let Some(path) = member
                .get("@odata.id")
                .and_then(Value::as_str)
                .and_then(on_service)
            else {
                continue;
            };
            let Some(m) = json(s, &path, password, until, reader).await? else {
                continue;
            };
            m
        };
        if let Some(key) = member_link
            && m[key].get("@odata.type").is_none()
            && let Some(sub) = link(&m, key)
            && let Some(x) = json(s, &sub, password, until, reader).await?
        {
            m[key] = x;
        }
        fetched.push(m);
    }
    collection["Members"] = Value::Array(fetched);
    Ok(())
}

/// A log service's entries new since `after` (its saved newest id): members given
/// inline are all kept (the parser's cursor rule picks the new ones); members given
/// as links are fetched only when their id is above `after`. Further pages are
/// followed while they bring members not seen yet.
async fn entries(
    s: &mut Service,
    collection: &mut Value,
    after: Option<u64>,
    password: &str,
    until: Instant,
    reader: &mut Reader,
) -> Result<(), RedfishError> {
    let mut all: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut page = collection.clone();
    let mut fetches = 0;
    for pages in 1.. {
        let mut added = 0;
        for m in page["Members"].as_array().cloned().unwrap_or_default() {
            let id = m["@odata.id"].as_str().unwrap_or("").to_string();
            if !id.is_empty() && !seen.insert(id.clone()) {
                continue;
            }
            added += 1;
            if m.get("@odata.type").is_some() {
                all.push(m);
                continue;
            }
            let key = id.rsplit('/').next().and_then(|k| k.parse::<u64>().ok());
            if after.is_some_and(|a| key.is_some_and(|k| k <= a)) || fetches >= MAX_LOG_FETCHES {
                continue;
            }
            let Some(path) = on_service(&id) else {
                continue;
            };
            fetches += 1;
            if let Some(entry) = json(s, &path, password, until, reader).await? {
                all.push(entry);
            }
        }
        let next = ["Members@odata.nextLink", "@odata.nextLink"]
            .iter()
            .find_map(|k| page[*k].as_str())
            .and_then(on_service_with_query);
        let Some(next) = next.filter(|_| added > 0 && pages < MAX_LOG_PAGES) else {
            break;
        };
        match json(s, &next, password, until, reader).await? {
            Some(p) => page = p,
            None => break,
        }
    }
    collection["Members"] = Value::Array(all);
    Ok(())
}

/// GETs a resource as JSON: None when it is not there (404), or when it is not JSON
/// (a warning naming it, through the reader).
async fn json(
    s: &mut Service,
    path: &str,
    password: &str,
    until: Instant,
    reader: &mut Reader,
) -> Result<Option<Value>, RedfishError> {
    let answer = s.conn.get(path, password, until).await?;
    if answer.status == hyper::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(&answer.body) {
        Ok(v) => Ok(Some(v)),
        Err(_) => {
            reader.read_text(path, &String::from_utf8_lossy(&answer.body));
            Ok(None)
        }
    }
}

/// The path a property links to (`{"@odata.id": ...}`), when it is on this service.
fn link(v: &Value, key: &str) -> Option<String> {
    let id = v.get(key)?.get("@odata.id")?.as_str()?;
    on_service(id)
}

fn member_links(c: &Value) -> impl Iterator<Item = String> + '_ {
    c.get("Members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| on_service(m.get("@odata.id")?.as_str()?))
}

/// A next-page link: a path on this service, its query kept (`?$skip=50`).
fn on_service_with_query(id: &str) -> Option<String> {
    let (path, query) = id.split_once('?').unwrap_or((id, ""));
    let path = on_service(path)?;
    let query_ok = !query.contains(char::is_whitespace) && !query.contains('#');
    query_ok.then(|| {
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    })
}

/// Only `/redfish/v1/...` paths on the BMC itself, without a fragment.
fn on_service(id: &str) -> Option<String> {
    let id = id.split('#').next()?;
    (id.starts_with("/redfish/v1/") && !id.contains("..") && !id.contains(char::is_whitespace))
        .then(|| id.to_string())
}
