//! The realistic mix (issue 19): one simulated host's ~150 series, with the shapes and
//! resolutions real ones have, for measuring what a sample costs to store. Deterministic
//! (a seeded splitmix64), so two runs and two engines see the same values.
//!
//! Per host, every 30 s (the default probe interval):
//! - 20 constants: memory and disk totals, CPU count, power limits, link speeds (facts that
//!   are series: they never change);
//! - 30 temperatures drifting slowly (a random walk of ±0.25 °C steps, kept in 20–90 °C),
//!   printed at the sensor's resolution: 0.25 °C (23.75), 0.5 °C, 1 °C;
//! - 10 fans in rpm, moving in the BMC's 60/120 rpm steps;
//! - 40 counters: network and disk bytes (thousands to millions a second, noisy), CPU
//!   seconds at 0.01 s, packets, errors that rarely move; each restarts from 0 at a
//!   simulated reboot every ~5 days;
//! - 20 noisy percentages: CPU busy and GPU utilisation with one decimal, integer
//!   utilisation, memory in use;
//! - 10 loads: load averages at 0.01 that wander, 0.1-step loads;
//! - 20 electrical readings: voltages at 0.01 V around their rail (12.05, 3.31), watts as
//!   integers that follow a load, currents at 0.1 A.

/// splitmix64: a tiny, good enough generator for bench data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of four uniforms), mean 0, deviation ~1.
    pub fn noise(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.73
    }
}

/// What one series is, and its state between samples.
enum Shape {
    Constant(f64),
    Temperature {
        value: f64,
        step: f64,
    },
    Fan {
        value: f64,
        step: f64,
    },
    /// `per_second` mean rate, `resolution` of the printed value.
    Counter {
        value: f64,
        per_second: f64,
        resolution: f64,
    },
    Percent {
        base: f64,
        spread: f64,
        decimals: u32,
    },
    Load {
        value: f64,
        resolution: f64,
    },
    Electrical {
        centre: f64,
        spread: f64,
        resolution: f64,
    },
}

/// One host's series.
pub struct Host {
    rng: Rng,
    series: Vec<Shape>,
    /// Samples until the next simulated reboot (counters restart).
    until_reboot: u64,
}

/// Rounds to `resolution` without the float noise a plain multiply leaves (23.75, not
/// 23.750000000000004): what a tool prints, parsed back.
fn quantize(v: f64, resolution: f64) -> f64 {
    let steps = (v / resolution).round();
    let decimals = (-resolution.log10()).ceil().max(0.0) as i32;
    let scale = 10f64.powi(decimals);
    ((steps * resolution) * scale).round() / scale
}

impl Host {
    pub fn new(seed: u64) -> Host {
        let mut rng = Rng::new(seed);
        let mut series = Vec::with_capacity(150);
        for i in 0..20 {
            let v = [
                1.0e12, 2.0e12, 128.0, 700.0, 400.0, 3.84e12, 64.0, 1.6e10, 25.0e9, 80.0,
            ][i % 10];
            series.push(Shape::Constant(v * (1 + i / 10) as f64));
        }
        for i in 0..30 {
            let step = [0.25, 0.5, 1.0][i % 3];
            series.push(Shape::Temperature {
                value: 30.0 + rng.unit() * 40.0,
                step,
            });
        }
        for i in 0..10 {
            let step = if i % 2 == 0 { 60.0 } else { 120.0 };
            series.push(Shape::Fan {
                value: 3000.0 + (rng.unit() * 6000.0 / step).round() * step,
                step,
            });
        }
        for i in 0..40 {
            let (per_second, resolution): (f64, f64) = match i % 5 {
                0 => (2.0e6, 1.0),   // bytes
                1 => (3.0e4, 1.0),   // packets
                2 => (0.35, 0.01),   // CPU seconds
                3 => (5.0e5, 512.0), // disk bytes in sectors
                _ => (0.0005, 1.0),  // errors: rarely move
            };
            series.push(Shape::Counter {
                value: rng.unit() * 1e9 * per_second.min(1.0),
                per_second: per_second * (0.5 + rng.unit()),
                resolution,
            });
        }
        for i in 0..20 {
            series.push(Shape::Percent {
                base: rng.unit() * 80.0,
                spread: 2.0 + rng.unit() * 10.0,
                decimals: if i % 2 == 0 { 1 } else { 0 },
            });
        }
        for i in 0..10 {
            series.push(Shape::Load {
                value: rng.unit() * 8.0,
                resolution: if i % 2 == 0 { 0.01 } else { 0.1 },
            });
        }
        for i in 0..20 {
            let (centre, spread, resolution) = match i % 4 {
                0 => (12.05, 0.03, 0.01),
                1 => (3.31, 0.01, 0.01),
                2 => (450.0, 60.0, 1.0),
                _ => (18.5, 2.0, 0.1),
            };
            series.push(Shape::Electrical {
                centre,
                spread,
                resolution,
            });
        }
        let until_reboot = 10_000 + rng.next_u64() % 10_000;
        Host {
            rng,
            series,
            until_reboot,
        }
    }

    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Whether series `i` is a counter (stored as one, so rates apply).
    pub fn is_counter(&self, i: usize) -> bool {
        matches!(self.series.get(i), Some(Shape::Counter { .. }))
    }

    /// The next sample of every series (one 30 s round), into `out`.
    pub fn round(&mut self, out: &mut Vec<f64>) {
        out.clear();
        let reboot = self.until_reboot == 0;
        self.until_reboot = if reboot {
            10_000 + self.rng.next_u64() % 10_000
        } else {
            self.until_reboot - 1
        };
        let rng = &mut self.rng;
        for s in &mut self.series {
            let v = match s {
                Shape::Constant(v) => *v,
                Shape::Temperature { value, step } => {
                    if rng.unit() < 0.3 {
                        let dir = if rng.unit() < 0.5 { -0.25 } else { 0.25 };
                        *value = (*value + dir).clamp(20.0, 90.0);
                    }
                    quantize(*value, *step)
                }
                Shape::Fan { value, step } => {
                    if rng.unit() < 0.2 {
                        let dir = if rng.unit() < 0.5 { -*step } else { *step };
                        *value = (*value + dir).clamp(1200.0, 16000.0);
                    }
                    *value
                }
                Shape::Counter {
                    value,
                    per_second,
                    resolution,
                } => {
                    if reboot {
                        *value = 0.0;
                    }
                    let grown = (*per_second * 30.0 * (1.0 + 0.3 * rng.noise())).max(0.0);
                    *value += grown;
                    quantize(*value, *resolution)
                }
                Shape::Percent {
                    base,
                    spread,
                    decimals,
                } => {
                    let v = (*base + *spread * rng.noise()).clamp(0.0, 100.0);
                    quantize(v, 10f64.powi(-(*decimals as i32)))
                }
                Shape::Load { value, resolution } => {
                    *value = (*value + 0.2 * rng.noise()).clamp(0.0, 64.0);
                    quantize(*value, *resolution)
                }
                Shape::Electrical {
                    centre,
                    spread,
                    resolution,
                } => quantize(*centre + *spread * rng.noise() * 0.3, *resolution),
            };
            out.push(v);
        }
    }
}
