//! `[fleet]`: which fleet robot blocks drive and, for the simulator, its robots, speed,
//! operation time, map file and strictness. `VWED_FLEET` overrides `kind`. Only the simulator
//! runs in this version: `kind = "rdscore"` (or `VWED_FLEET_URL`) is refused with a message
//! saying so, rather than accepted and ignored.

use super::{full_key, ConfigError, FileValues};
use crate::fleet::sim::{Map, SimConfig, SIM_ROBOTS_MAX};
use std::path::PathBuf;

pub(super) const FLEET_KEYS: &[&str] = &[
    "kind",
    "robots",
    "speed_m_per_s",
    "operation_ms",
    "map",
    "strict",
];

/// The fleet settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Robots of the simulator, 1..=`SIM_ROBOTS_MAX`.
    pub robots: usize,
    pub speed_m_per_s: f64,
    pub operation_ms: i64,
    /// A map file (`{"locations": {"name": [x, y]}}`); none: the embedded demo map.
    pub map: Option<PathBuf>,
    /// Refuse locations the map does not know (as a real core would).
    pub strict: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        let sim = SimConfig::default();
        FleetConfig {
            robots: sim.robots,
            speed_m_per_s: sim.speed_m_per_s,
            operation_ms: sim.operation_ms,
            map: None,
            strict: sim.strict,
        }
    }
}

impl FleetConfig {
    /// The simulator's settings, with the map file read and checked; the error names the file.
    pub fn sim_config(&self) -> Result<SimConfig, String> {
        let map = match &self.map {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("fleet map {}: {e}", path.display()))?;
                Map::from_json(&text).map_err(|e| format!("fleet map {}: {e}", path.display()))?
            }
            None => Map::demo(),
        };
        let config = SimConfig {
            robots: self.robots,
            speed_m_per_s: self.speed_m_per_s,
            operation_ms: self.operation_ms,
            strict: self.strict,
            map,
            ..SimConfig::default()
        };
        config.validate().map_err(|e| format!("fleet.{e}"))?;
        Ok(config)
    }
}

/// Checks a fleet kind: only `sim` runs in this version.
pub(super) fn check_kind(kind: &str) -> Result<(), String> {
    match kind {
        "sim" => Ok(()),
        "rdscore" => Err(
            "the rdscore fleet adapter is not available in this version; \
             only \"sim\" (the built-in simulated fleet) runs"
                .into(),
        ),
        other => Err(format!("unknown fleet kind \"{other}\" (sim)")),
    }
}

impl FileValues<'_> {
    pub(super) fn apply_fleet(
        &self,
        t: &toml::Table,
        f: &mut FleetConfig,
    ) -> Result<(), ConfigError> {
        let p = "fleet";
        if let Some(kind) = self.string(t, "kind")? {
            check_kind(&kind).map_err(|m| self.invalid(&full_key(p, "kind"), m))?;
        }
        if let Some(v) = self.int(t, p, "robots", 1, SIM_ROBOTS_MAX as i64)? {
            f.robots = v;
        }
        if let Some(v) = t.get("speed_m_per_s") {
            let key = full_key(p, "speed_m_per_s");
            let speed = match v {
                toml::Value::Float(x) => *x,
                toml::Value::Integer(n) => *n as f64,
                other => return Err(self.wrong_type(&key, "a number", other)),
            };
            if !(speed.is_finite() && speed > 0.0 && speed <= 100.0) {
                return Err(self.invalid(&key, format!("{speed} is outside (0, 100] m/s")));
            }
            f.speed_m_per_s = speed;
        }
        let op_max = crate::fleet::sim::SIM_OPERATION_MS_MAX;
        if let Some(v) = self.int(t, p, "operation_ms", 0, op_max)? {
            f.operation_ms = v;
        }
        if let Some(map) = self.string(t, "map")? {
            f.map = Some(PathBuf::from(map));
        }
        if let Some(strict) = self.boolean(t, "strict")? {
            f.strict = strict;
        }
        Ok(())
    }
}
