//! Redfish resources (JSON over HTTPS from a BMC) read into the `ipmi` probe's series,
//! labelled `path="redfish"`: the poller's Redfish client fetches the resources and
//! hands each one here, so the readings are the same whichever way a BMC was reached.
//!
//! Pure: a resource's text in, samples, facts and warnings out. Which parser reads a
//! resource is told by its `@odata.type`, so `dcmon parse redfish FILE` reads any saved
//! resource exactly as the poller does. A collection or a link whose target is given
//! inline (what `$expand` answers, or what the client put there) is read member by
//! member.

use crate::output::{Labels, ParseError, ProbeOutput};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

pub mod logs;
mod power;
mod sensor;
mod system;
#[cfg(test)]
mod tests;
mod thermal;

pub use sensor::{LEVELS as THRESHOLD_LEVELS, Status};

/// The `path` label of every sample read over Redfish.
pub const PATH: &str = "redfish";

/// One BMC read: everything its resources gave, with each sensor name claimed once so
/// that two sensors of one name (two chassis, a vendor's repeated names) stay apart.
#[derive(Debug, Default)]
pub struct Reader {
    pub out: ProbeOutput,
    /// How many sensors took each name so far.
    names: HashMap<String, u32>,
}

impl Reader {
    /// Reads one resource's text (`source` names it in warnings: its URL path).
    pub fn read_text(&mut self, source: &str, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => self.read(source, &value),
            Err(e) => self.warn(
                source,
                "",
                format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
            ),
        }
    }

    /// Reads one resource by its `@odata.type`. Types that hold no reading dcmon keeps
    /// are passed over; an object with no type at all is a warning.
    pub fn read(&mut self, source: &str, resource: &Value) {
        let Some(kind) = odata_type(resource) else {
            if resource.is_object() {
                self.warn(source, "", "no @odata.type: not a Redfish resource".into());
            } else {
                self.warn(source, "", "not a JSON object".into());
            }
            return;
        };
        let at = Resource {
            source: Cow::Borrowed(resource["@odata.id"].as_str().unwrap_or(source)),
            value: resource,
        };
        match kind {
            "Thermal" => thermal::thermal(self, &at),
            "ThermalSubsystem" => thermal::subsystem(self, &at),
            "Fan" => thermal::fan(self, &at),
            "Power" => power::power(self, &at),
            "PowerSubsystem" => power::subsystem(self, &at),
            "PowerSupply" => power::supply(self, &at),
            "PowerSupplyMetrics" => power::supply_metrics(self, &at, None),
            "EnvironmentMetrics" => power::environment(self, &at),
            "Sensor" => sensor::sensor(self, &at),
            "ComputerSystem" => system::computer_system(self, &at),
            "Manager" => system::manager(self, &at),
            "Chassis" => system::chassis(self, &at),
            "LogEntry" => logs::entry(self, &at),
            "SoftwareInventory" => system::firmware(self, &at),
            k if k.ends_with("Collection") => self.members(&at),
            _ => {}
        }
    }

    /// A collection's members given inline (links alone are the client's to follow).
    fn members(&mut self, at: &Resource<'_>) {
        for member in at.members("Members") {
            if odata_type(member.value).is_some() {
                self.read(&member.source, member.value);
            }
        }
    }

    /// Labels for a sensor of this name: `sensor`, `path`, its `entity` (the Redfish
    /// PhysicalContext) when given, and `instance` from the second sensor of one name on.
    fn claim(&mut self, name: &str, entity: Option<&str>) -> Labels {
        let count = self.names.entry(name.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        self.labels_of(name, entity)
    }

    /// The labels of the sensor that claimed `name` last (a second reading of it).
    fn labels_of(&self, name: &str, entity: Option<&str>) -> Labels {
        let mut labels = Labels::new([("sensor", name), ("path", PATH)]);
        if let Some(entity) = entity.filter(|e| !e.is_empty()) {
            labels = labels.with("entity", entity);
        }
        match self.names.get(name) {
            Some(&count) if count > 1 => labels.with("instance", &count.to_string()),
            _ => labels,
        }
    }

    fn warn(&mut self, resource: &str, pointer: &str, reason: String) {
        self.out.warnings.push(ParseError::Json {
            resource: resource.to_string(),
            pointer: pointer.to_string(),
            reason,
        });
    }
}

/// The `bmc` probe's log reading: Redfish's log lines by their services' keys, the
/// SEL's (over IPMI) by record id. Each call holds one source's lines.
pub fn new_logs(
    entries: Vec<crate::LogEntry>,
    saved: Option<&str>,
) -> (Vec<crate::LogEntry>, Option<String>) {
    if entries.first().is_some_and(|e| e.source == logs::SOURCE) {
        logs::after_cursor(entries, saved)
    } else {
        crate::ipmi::sel::after_cursor(entries, saved)
    }
}

/// Reads one resource's text on its own (`dcmon parse redfish`, the `bmc` probe's
/// registered parser).
pub fn parse(text: &str) -> ProbeOutput {
    let mut reader = Reader::default();
    reader.read_text("input", text);
    reader.out
}

/// `#Thermal.v1_7_1.Thermal` → `Thermal`.
fn odata_type(v: &Value) -> Option<&str> {
    let t = v.get("@odata.type")?.as_str()?;
    t.rsplit('.').next().filter(|k| !k.is_empty())
}

/// A resource (or a member of one) being read, and where it is for warnings.
#[derive(Clone)]
struct Resource<'a> {
    /// Its `@odata.id`, else where it sits in the resource it came in.
    source: Cow<'a, str>,
    value: &'a Value,
}

impl<'a> Resource<'a> {
    /// The members of the array at `key` (none when absent or null), each a resource
    /// of its own: `Thermal#/Fans/0` in warnings when it has no `@odata.id`.
    fn members(&self, key: &str) -> Vec<Resource<'a>> {
        let array = self
            .value
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        array
            .iter()
            .enumerate()
            .map(|(i, value)| Resource {
                source: match value.get("@odata.id").and_then(Value::as_str) {
                    Some(id) => Cow::Borrowed(id),
                    None => Cow::Owned(format!("{}#/{key}/{i}", self.source)),
                },
                value,
            })
            .collect()
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.value.get(key)?.as_str()
    }

    /// The object at `key` as a resource of its own (`Parent/key` in warnings).
    fn object(&self, key: &str) -> Option<Resource<'a>> {
        let value = self.value.get(key).filter(|v| v.is_object())?;
        Some(Resource {
            source: match value.get("@odata.id").and_then(Value::as_str) {
                Some(id) => Cow::Borrowed(id),
                None => Cow::Owned(format!("{} {key}", self.source)),
            },
            value,
        })
    }

    /// An object property given inline with its type (not only as a link).
    fn inline(&self, key: &str) -> Option<Resource<'a>> {
        self.object(key).filter(|r| odata_type(r.value).is_some())
    }

    /// The resource's name for people: `Name`, else the older `FanName`, else `Id`.
    fn name(&self) -> Option<&'a str> {
        ["Name", "FanName", "MemberId", "Id"]
            .iter()
            .find_map(|k| self.str(k).filter(|s| !s.trim().is_empty()))
    }

    /// A number at `key`: None when absent or null (never 0); a warning when the value
    /// is there but not a number.
    fn number(&self, reader: &mut Reader, key: &str) -> Option<f64> {
        number_at(reader, &self.source, key, self.value.get(key)?)
    }

    /// `{ "Reading": n }` at `key` (the newer schemas' excerpts).
    fn reading(&self, reader: &mut Reader, key: &str) -> Option<f64> {
        let excerpt = self.value.get(key)?;
        number_at(reader, &self.source, key, excerpt.get("Reading")?)
    }
}

fn number_at(reader: &mut Reader, source: &str, key: &str, v: &Value) -> Option<f64> {
    match v {
        Value::Null => None,
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        other => {
            let mut shown: String = other.to_string().chars().take(60).collect();
            if other.to_string().chars().count() > 60 {
                shown.push('…');
            }
            reader.warn(source, key, format!("{shown} is not a number"));
            None
        }
    }
}
