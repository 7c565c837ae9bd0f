//! `[fleet]`: which fleet robot blocks drive — `kind = "sim"` (the built-in simulator: robots,
//! speed, operation time, map file, strictness) or `kind = "rdscore"` (Seer's RDSCore at `url`,
//! polled every `poll_ms`, each request bounded by `connect_timeout_ms`/`timeout_ms`).
//! `VWED_FLEET` and `VWED_FLEET_URL` override `kind` and `url`.

use super::{full_key, ConfigError, FileValues};
use crate::fleet::sim::{Map, SimConfig, SIM_ROBOTS_MAX};
use std::path::PathBuf;

pub(super) const FLEET_KEYS: &[&str] = &[
    "kind",
    "url",
    "poll_ms",
    "connect_timeout_ms",
    "timeout_ms",
    "robots",
    "speed_m_per_s",
    "operation_ms",
    "map",
    "strict",
    "group",
];

/// Which fleet robot blocks drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetKind {
    /// The built-in simulated fleet.
    Sim,
    /// Seer's RDSCore dispatcher over HTTP.
    RdsCore,
}

/// Shortest RDSCore poll interval (`fleet.poll_ms`): the rate a waiting robot block may look
/// at its order.
pub const FLEET_POLL_MS_MIN: u64 = 100;

/// The fleet settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub kind: FleetKind,
    /// RDSCore's base URL (`http://host:port`), required with `kind = "rdscore"`.
    pub url: Option<String>,
    /// How often a waiting robot block reads its order from RDSCore.
    pub poll_ms: u64,
    /// Time to connect to RDSCore, and for a whole request.
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// Robots of the simulator, 1..=`SIM_ROBOTS_MAX`.
    pub robots: usize,
    pub speed_m_per_s: f64,
    pub operation_ms: i64,
    /// A map file (`{"locations": {"name": [x, y]}}`); none: the embedded demo map.
    pub map: Option<PathBuf>,
    /// Refuse locations the map does not know (as a real core would).
    pub strict: bool,
    /// The group the simulated robots are in (what `CSelectAgvBp`'s `group` may ask for).
    pub group: String,
}

impl Default for FleetConfig {
    fn default() -> Self {
        let sim = SimConfig::default();
        let core = crate::fleet::rdscore::RdsCoreConfig::default();
        FleetConfig {
            kind: FleetKind::Sim,
            url: None,
            poll_ms: core.poll_ms,
            connect_timeout_ms: core.limits.connect_timeout_ms,
            timeout_ms: core.limits.total_timeout_ms,
            robots: sim.robots,
            speed_m_per_s: sim.speed_m_per_s,
            operation_ms: sim.operation_ms,
            map: None,
            strict: sim.strict,
            group: sim.group,
        }
    }
}

impl FleetConfig {
    /// The RDSCore adapter's settings (`url` must be set).
    pub fn rdscore_config(&self) -> Result<crate::fleet::rdscore::RdsCoreConfig, String> {
        let url = self
            .url
            .clone()
            .ok_or("fleet.url: kind = \"rdscore\" needs the core's URL (or VWED_FLEET_URL)")?;
        let mut core = crate::fleet::rdscore::RdsCoreConfig {
            url,
            poll_ms: self.poll_ms,
            ..Default::default()
        };
        core.limits.connect_timeout_ms = self.connect_timeout_ms;
        core.limits.total_timeout_ms = self.timeout_ms;
        Ok(core)
    }

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
            group: self.group.clone(),
            map,
            ..SimConfig::default()
        };
        config.validate().map_err(|e| format!("fleet.{e}"))?;
        Ok(config)
    }
}

/// A fleet kind by name.
pub(super) fn parse_kind(kind: &str) -> Result<FleetKind, String> {
    match kind {
        "sim" => Ok(FleetKind::Sim),
        "rdscore" => Ok(FleetKind::RdsCore),
        other => Err(format!("unknown fleet kind \"{other}\" (sim, rdscore)")),
    }
}

/// A core URL: `http://host:port[/prefix]` (the adapter speaks plain HTTP).
pub(super) fn check_url(url: &str) -> Result<(), String> {
    match url.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(format!(
            "{url:?} is not an http:// URL such as \"http://127.0.0.1:8088\""
        )),
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
            f.kind = parse_kind(&kind).map_err(|m| self.invalid(&full_key(p, "kind"), m))?;
        }
        if let Some(url) = self.string(t, "url")? {
            check_url(&url).map_err(|m| self.invalid(&full_key(p, "url"), m))?;
            f.url = Some(url);
        }
        if let Some(v) = self.int(t, p, "poll_ms", FLEET_POLL_MS_MIN as i64, 60_000)? {
            f.poll_ms = v;
        }
        if let Some(v) = self.int(t, p, "connect_timeout_ms", 1, 600_000)? {
            f.connect_timeout_ms = v;
        }
        if let Some(v) = self.int(t, p, "timeout_ms", 1, 600_000)? {
            f.timeout_ms = v;
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
        if let Some(group) = self.string(t, "group")? {
            f.group = group;
        }
        Ok(())
    }
}
