//! Sensor readings over RMCP+: each full sensor record's reading, converted with the
//! record's own factors, and its threshold status on the in-band probe's scale.

use super::Session;
use ipmi_rs::sensor_event::{GetSensorReading, ThresholdReading};
use ipmi_rs::storage::sdr::record::{
    DataFormat, EntityInstance, IdentifiableSensor, InstancedSensor, Record, WithSensorRecordCommon,
};
use ipmi_rs::storage::sdr::{SensorType, Unit};

/// One sensor as read.
pub(super) struct Reading {
    pub sensor: String,
    /// `entity id.instance`, as ipmitool prints it.
    pub entity: String,
    pub number: u8,
    /// 0 ok, 1 non-critical, 2 critical, 3 non-recoverable, 4 no reading (the ipmi
    /// probe's `ipmi_sensor_status`).
    pub status: f64,
    /// (series, unit, value) when the sensor has a reading in a unit we store.
    pub value: Option<(&'static str, &'static str, f64)>,
    /// The unit as ipmitool writes it after a value (`RPM`, `degrees C`).
    pub ipmitool_unit: &'static str,
}

/// Every full sensor's reading (only those of type `only`, when given). A sensor that
/// does not answer reads as "no reading"; the others still count.
pub(super) fn readings(
    s: &mut Session,
    records: &[Record],
    only: Option<SensorType>,
) -> Vec<Reading> {
    let mut out = Vec::new();
    for record in records {
        let Some(full) = record.full_sensor() else {
            continue;
        };
        if only.is_some_and(|t| full.common().ty != t) {
            continue;
        }
        let instance = match full.entity_instance() {
            EntityInstance::Physical {
                instance_number, ..
            }
            | EntityInstance::LogicalContainer {
                instance_number, ..
            } => *instance_number,
        };
        let units = &full.common().sensor_units;
        let kind = series_of(&units.base_unit, units.is_percentage);
        let mut reading = Reading {
            sensor: full.id_string().to_string(),
            entity: format!("{}.{}", full.entity_id(), instance),
            number: full.key_data().sensor_number.get(),
            status: 4.0,
            value: None,
            ipmitool_unit: kind.map_or("", |k| k.2),
        };
        let answer = s
            .ipmi
            .send_recv(GetSensorReading::for_sensor_key(full.key_data()))
            .map(|raw| ThresholdReading::from(&raw));
        if let Ok(answer) = answer {
            reading.status = match (&answer.reading, &answer.threshold_status) {
                (None, _) => 4.0,
                (Some(_), Some(t))
                    if t.at_or_above_non_recoverable || t.at_or_below_lower_non_recoverable =>
                {
                    3.0
                }
                (Some(_), Some(t))
                    if t.at_or_above_upper_critical || t.at_or_below_lower_critical =>
                {
                    2.0
                }
                (Some(_), Some(t))
                    if t.at_or_above_upper_non_critical || t.at_or_below_lower_non_critical =>
                {
                    1.0
                }
                _ => 0.0,
            };
            if let (Some(raw), Some(format), Some((series, unit, _))) =
                (answer.reading, full.analog_data_format, kind)
            {
                let x = match format {
                    DataFormat::Unsigned => f64::from(raw),
                    // Negative numbers have the high bit set, and are the bits inverted.
                    DataFormat::OnesComplement if raw & 0x80 != 0 => -f64::from(!raw),
                    DataFormat::OnesComplement => f64::from(raw),
                    DataFormat::TwosComplement => f64::from(raw as i8),
                };
                // The SDR's linear conversion: (M × raw + B × 10^Bexp) × 10^Rexp.
                let value = (f64::from(full.m) * x
                    + f64::from(full.b) * 10f64.powi(i32::from(full.b_exponent)))
                    * 10f64.powi(i32::from(full.result_exponent));
                reading.value = Some((series, unit, value));
            }
        }
        out.push(reading);
    }
    out
}

/// What a unit is stored as: (series, unit, ipmitool's word for it).
fn series_of(unit: &Unit, percent: bool) -> Option<(&'static str, &'static str, &'static str)> {
    if percent {
        return Some(("ipmi_percent", "percent", "percent"));
    }
    match unit {
        Unit::DegreesCelsius => Some(("ipmi_temperature_celsius", "celsius", "degrees C")),
        Unit::RevolutionsPerMinute => Some(("ipmi_fan_speed_rpm", "rpm", "RPM")),
        Unit::Volt => Some(("ipmi_voltage_volts", "volts", "Volts")),
        Unit::Amp => Some(("ipmi_current_amperes", "amperes", "Amps")),
        Unit::Watt => Some(("ipmi_power_watts", "watts", "Watts")),
        _ => None,
    }
}
