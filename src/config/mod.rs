//! The configuration: an optional TOML file plus `VWED_*` environment overrides, validated into
//! a [`Config`] whose every field has a default from `limits.rs`.
//!
//! Input comes in two stages: the file is parsed into a `toml::Table`, every key is checked
//! against the known ones (so an unknown key is named in full, `scheduler.run_active_max`,
//! which serde's `deny_unknown_fields` cannot do: its message lacks the table), then each value
//! is read with its type and bounds checked. The environment wins over the file.

use crate::limits;
use crate::scheduler;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address: loopback only, so a fresh box exposes nothing.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";

/// Default data directory (relative to the working directory) when neither the configuration
/// nor systemd's `STATE_DIRECTORY` names one.
pub const DATA_DIR_DEFAULT: &str = "data";

const TOP_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "token",
    "tokens",
    "insecure_open",
    "log",
    "scheduler",
    "http",
    "webhook",
    "fleet",
];
const SCHEDULER_KEYS: &[&str] = &[
    "runs_active_max",
    "backlog_max",
    "ready_ring_capacity",
    "aging_step_ms",
];
const HTTP_KEYS: &[&str] = &[
    "connections_max",
    "body_bytes_max",
    "header_timeout_ms",
    "handler_timeout_ms",
];

const WEBHOOK_KEYS: &[&str] = &["url", "events", "secret"];

/// Outbox event kinds a webhook may ask for.
pub const WEBHOOK_EVENT_KINDS: &[&str] =
    &["task", "block", "task-state", "task-event", "site", "robot"];

/// One `[[webhook]]`: where to POST outbox events, which kinds, and the HMAC secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// As configured, `http://host:port/path`; also the key of its stored cursor.
    pub url: String,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Kinds delivered, a subset of [`WEBHOOK_EVENT_KINDS`].
    pub events: Vec<String>,
    /// Key of the `X-Vwed-Signature` HMAC-SHA256, at least `WEBHOOK_SECRET_CHARS_MIN` characters.
    pub secret: String,
}

impl fmt::Debug for WebhookConfig {
    /// Never prints the secret: configurations end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Checks and splits a webhook; the error says what is wrong and the field it concerns
    /// (`url`, `events` or `secret`).
    pub fn new(
        url: &str,
        events: Option<&[String]>,
        secret: &str,
    ) -> Result<WebhookConfig, (&'static str, String)> {
        let (host, port, path) = parse_http_url(url).map_err(|m| ("url", m))?;
        let events = match events {
            None => WEBHOOK_EVENT_KINDS.iter().map(|k| k.to_string()).collect(),
            Some([]) => return Err(("events", "must name at least one kind".into())),
            Some(list) => {
                if let Some(bad) = list
                    .iter()
                    .find(|k| !WEBHOOK_EVENT_KINDS.contains(&k.as_str()))
                {
                    return Err((
                        "events",
                        format!("{bad:?} is not one of {}", WEBHOOK_EVENT_KINDS.join(", ")),
                    ));
                }
                list.to_vec()
            }
        };
        let chars = secret.chars().count();
        if chars < limits::WEBHOOK_SECRET_CHARS_MIN {
            return Err((
                "secret",
                format!(
                    "must have at least WEBHOOK_SECRET_CHARS_MIN ({}) characters; this one has {chars}",
                    limits::WEBHOOK_SECRET_CHARS_MIN
                ),
            ));
        }
        Ok(WebhookConfig {
            url: url.to_string(),
            host,
            port,
            path,
            events,
            secret: secret.to_string(),
        })
    }

    /// Whether events of `kind` go to this webhook.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|k| k == kind)
    }
}

/// Splits `http://host:port/path` (port defaults to 80, path to `/`). `https` is refused: the
/// binary has no TLS.
fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    if url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        return Err(format!(
            "{url:?}: https is not supported (the binary has no TLS); use http:// to a local \
             receiver or a TLS-terminating proxy"
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http://host:port/path URL"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let bad = || format!("{url:?} is not an http://host:port/path URL");
    if authority.contains('@') || path.contains(['#', ' ']) {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        ),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port, path))
}

/// The validated configuration of `vwed serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Bearer tokens, each at least `TOKEN_CHARS_MIN` characters; empty means none.
    pub tokens: Vec<String>,
    /// Serve a non-loopback address without any token (see [`Config::check_open`]).
    pub insecure_open: bool,
    /// An `env_logger` filter such as `info` or `vwed=debug`.
    pub log: Option<String>,
    pub scheduler: scheduler::Config,
    pub http: HttpConfig,
    /// `[[webhook]]` tables, at most `WEBHOOKS_MAX`, URLs distinct.
    pub webhooks: Vec<WebhookConfig>,
    /// `[fleet]`: the simulated fleet's settings.
    pub fleet: FleetConfig,
}

/// Bounds of the HTTP API (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    pub connections_max: usize,
    pub body_bytes_max: usize,
    pub header_timeout_ms: u64,
    pub handler_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connections_max: limits::HTTP_CONNECTIONS_MAX,
            body_bytes_max: limits::REQUEST_BODY_BYTES_MAX,
            header_timeout_ms: limits::HTTP_HEADER_TIMEOUT_MS,
            handler_timeout_ms: limits::HTTP_HANDLER_TIMEOUT_MS,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: LISTEN_DEFAULT
                .parse()
                .expect("the default listen address parses"),
            data_dir: PathBuf::from(DATA_DIR_DEFAULT),
            tokens: Vec::new(),
            insecure_open: false,
            log: None,
            scheduler: scheduler::Config::default(),
            http: HttpConfig::default(),
            webhooks: Vec::new(),
            fleet: FleetConfig::default(),
        }
    }
}

impl Config {
    /// Whether the listen address is loopback (IPv4-mapped loopback counts).
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().to_canonical().is_loopback()
    }

    /// Whether mutating API calls must carry a token: whenever the API is reachable from
    /// another machine.
    pub fn mutations_need_token(&self) -> bool {
        !self.is_loopback()
    }

    /// Refuses to serve a non-loopback address with no token unless `insecure_open` says so:
    /// an open API on a fleet network lets anyone move robots.
    pub fn check_open(&self) -> Result<(), ConfigError> {
        if self.is_loopback() || !self.tokens.is_empty() || self.insecure_open {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            path: None,
            key: "token".into(),
            message: format!(
                "listen address {} is not loopback, so a token is required \
                 (set `token` or VWED_TOKEN, or `insecure_open = true` to serve without one)",
                self.listen
            ),
        })
    }
}

/// Why the configuration was refused. Each variant names the file and/or the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Io { path: PathBuf, message: String },
    /// The file is not TOML (or not UTF-8).
    Parse { path: PathBuf, message: String },
    /// A key the loader does not know, named in full (`scheduler.run_active_max`).
    UnknownKey { path: PathBuf, key: String },
    /// A value of the wrong type or out of bounds. `path` is `None` when the value came from
    /// the environment (then `key` is the variable's name) or from no single place.
    Invalid {
        path: Option<PathBuf>,
        key: String,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "{}: cannot read: {message}", path.display())
            }
            ConfigError::Parse { path, message } => {
                write!(f, "{}: not valid TOML: {message}", path.display())
            }
            ConfigError::UnknownKey { path, key } => write!(
                f,
                "{}: unknown key `{key}` (known here: {})",
                path.display(),
                known_keys_beside(key).join(", ")
            ),
            ConfigError::Invalid {
                path: Some(path),
                key,
                message,
            } => write!(f, "{}: invalid `{key}`: {message}", path.display()),
            ConfigError::Invalid {
                path: None,
                key,
                message,
            } => write!(f, "invalid {key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The keys allowed in the table that holds `key`.
fn known_keys_beside(key: &str) -> &'static [&'static str] {
    match key.split_once('.') {
        Some(("scheduler", _)) => SCHEDULER_KEYS,
        Some(("http", _)) => HTTP_KEYS,
        Some(("webhook", _)) => WEBHOOK_KEYS,
        Some(("fleet", _)) => fleet::FLEET_KEYS,
        _ => TOP_KEYS,
    }
}

/// Loads the configuration: defaults, then `file` (when given), then the environment
/// (`VWED_LISTEN`, `VWED_DATA_DIR`, `VWED_TOKEN`, `VWED_LOG`), then the data directory falls
/// back to `STATE_DIRECTORY` (systemd) and `./data`. `env` reads one variable; an empty value
/// counts as unset.
pub fn load(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    let mut data_dir = None;
    if let Some(path) = file {
        let table = read_table(path)?;
        let file = FileValues {
            path,
            table: &table,
        };
        data_dir = file.apply(&mut config)?;
    }
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(dir) = env("VWED_DATA_DIR") {
        data_dir = Some(PathBuf::from(dir));
    }
    apply_env(&mut config, &env)?;
    config.data_dir = data_dir
        .or_else(|| {
            let state = env("STATE_DIRECTORY")?;
            state.split(':').find(|s| !s.is_empty()).map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
    Ok(config)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let io = |e: std::io::Error| ConfigError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(limits::CONFIG_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limits::CONFIG_FILE_BYTES_MAX {
        return Err(ConfigError::Io {
            path: path.to_path_buf(),
            message: format!(
                "larger than CONFIG_FILE_BYTES_MAX ({} bytes)",
                limits::CONFIG_FILE_BYTES_MAX
            ),
        });
    }
    let parse = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|_| parse("the file is not UTF-8".into()))?;
    text.parse::<toml::Table>()
        .map_err(|e| parse(e.to_string().trim_end().to_string()))
}

fn apply_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        path: None,
        key: key.into(),
        message,
    };
    if let Some(listen) = env("VWED_LISTEN") {
        config.listen = parse_listen(listen.trim()).map_err(|m| invalid("VWED_LISTEN", m))?;
    }
    if let Some(tokens) = env("VWED_TOKEN") {
        config.tokens = Vec::new();
        for token in tokens.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            check_token(token).map_err(|m| invalid("VWED_TOKEN", m))?;
            config.tokens.push(token.to_string());
        }
    }
    if let Some(log) = env("VWED_LOG") {
        config.log = Some(log.trim().to_string());
    }
    if let Some(kind) = env("VWED_FLEET") {
        config.fleet.kind = fleet::parse_kind(kind.trim()).map_err(|m| invalid("VWED_FLEET", m))?;
    }
    if let Some(url) = env("VWED_FLEET_URL") {
        fleet::check_url(url.trim()).map_err(|m| invalid("VWED_FLEET_URL", m))?;
        config.fleet.url = Some(url.trim().to_string());
    }
    if config.fleet.kind == FleetKind::RdsCore && config.fleet.url.is_none() {
        let m = "kind = \"rdscore\" needs the core's URL (fleet.url or VWED_FLEET_URL)";
        return Err(invalid("fleet.url", m.into()));
    }
    Ok(())
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a socket address such as \"127.0.0.1:8080\""))
}

/// Never echoes the token: error messages end up in logs.
fn check_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < limits::TOKEN_CHARS_MIN {
        return Err(format!(
            "a token must have at least TOKEN_CHARS_MIN ({}) characters; this one has {chars}",
            limits::TOKEN_CHARS_MIN
        ));
    }
    Ok(())
}

/// One parsed file, read key by key; every error names the file and the full key.
struct FileValues<'a> {
    path: &'a Path,
    table: &'a toml::Table,
}

impl FileValues<'_> {
    /// Applies the file to `config`; returns its `data_dir`, resolved later against the
    /// environment.
    fn apply(&self, config: &mut Config) -> Result<Option<PathBuf>, ConfigError> {
        self.check_keys(self.table, "", TOP_KEYS)?;
        let top = self.table;
        if let Some(listen) = self.string(top, "listen")? {
            config.listen = parse_listen(&listen).map_err(|m| self.invalid("listen", m))?;
        }
        let data_dir = self.string(top, "data_dir")?.map(PathBuf::from);
        if let Some(token) = self.string(top, "token")? {
            check_token(&token).map_err(|m| self.invalid("token", m))?;
            config.tokens.push(token);
        }
        for token in self.strings(top, "tokens")? {
            check_token(&token).map_err(|m| self.invalid("tokens", m))?;
            config.tokens.push(token);
        }
        if let Some(open) = self.boolean(top, "insecure_open")? {
            config.insecure_open = open;
        }
        config.log = self.string(top, "log")?;
        if let Some(table) = self.table_at("scheduler", SCHEDULER_KEYS)? {
            self.apply_scheduler(table, &mut config.scheduler)?;
        }
        if let Some(table) = self.table_at("http", HTTP_KEYS)? {
            self.apply_http(table, &mut config.http)?;
        }
        config.webhooks = self.webhooks()?;
        if let Some(table) = self.table_at("fleet", fleet::FLEET_KEYS)? {
            self.apply_fleet(table, &mut config.fleet)?;
        }
        Ok(data_dir)
    }

    fn apply_scheduler(
        &self,
        t: &toml::Table,
        s: &mut scheduler::Config,
    ) -> Result<(), ConfigError> {
        let p = "scheduler";
        if let Some(v) = self.int(
            t,
            p,
            "runs_active_max",
            1,
            limits::CONFIG_RUNS_ACTIVE_MAX as i64,
        )? {
            s.runs_active_max = v;
        }
        if let Some(v) = self.int(t, p, "backlog_max", 1, limits::CONFIG_BACKLOG_MAX as i64)? {
            s.backlog_max = v;
        }
        // A ring refills when it drains below half, so it needs room for two.
        let ring_max = limits::CONFIG_READY_RING_CAPACITY_MAX as i64;
        if let Some(v) = self.int(t, p, "ready_ring_capacity", 2, ring_max)? {
            s.ready_ring_capacity = v;
        }
        if let Some(v) = self.int(t, p, "aging_step_ms", 1, i64::MAX)? {
            s.aging_step_ms = v;
        }
        Ok(())
    }

    fn apply_http(&self, t: &toml::Table, h: &mut HttpConfig) -> Result<(), ConfigError> {
        let p = "http";
        if let Some(v) = self.int(
            t,
            p,
            "connections_max",
            1,
            limits::CONFIG_HTTP_CONNECTIONS_MAX as i64,
        )? {
            h.connections_max = v;
        }
        let body_max = limits::CONFIG_REQUEST_BODY_BYTES_MAX as i64;
        if let Some(v) = self.int(t, p, "body_bytes_max", 1, body_max)? {
            h.body_bytes_max = v;
        }
        if let Some(v) = self.int(t, p, "header_timeout_ms", 1, i64::MAX)? {
            h.header_timeout_ms = v;
        }
        if let Some(v) = self.int(t, p, "handler_timeout_ms", 1, i64::MAX)? {
            h.handler_timeout_ms = v;
        }
        Ok(())
    }

    fn webhooks(&self) -> Result<Vec<WebhookConfig>, ConfigError> {
        let Some(value) = self.table.get("webhook") else {
            return Ok(Vec::new());
        };
        let not_tables = || self.wrong_type("webhook", "an array of tables ([[webhook]])", value);
        let array = value.as_array().ok_or_else(not_tables)?;
        if array.len() > limits::WEBHOOKS_MAX {
            return Err(self.invalid(
                "webhook",
                format!(
                    "{} webhooks; at most WEBHOOKS_MAX ({})",
                    array.len(),
                    limits::WEBHOOKS_MAX
                ),
            ));
        }
        let mut out: Vec<WebhookConfig> = Vec::new();
        for item in array {
            let t = item.as_table().ok_or_else(not_tables)?;
            self.check_keys(t, "webhook", WEBHOOK_KEYS)?;
            let url = self
                .string(t, "url")
                .map_err(|e| self.rename(e, "webhook.url"))?
                .ok_or_else(|| self.invalid("webhook.url", "is required".into()))?;
            let events = match t.get("events") {
                None => None,
                Some(_) => Some(
                    self.strings(t, "events")
                        .map_err(|e| self.rename(e, "webhook.events"))?,
                ),
            };
            let secret = self
                .string(t, "secret")
                .map_err(|e| self.rename(e, "webhook.secret"))?
                .ok_or_else(|| self.invalid("webhook.secret", "is required".into()))?;
            let hook = WebhookConfig::new(&url, events.as_deref(), &secret)
                .map_err(|(field, m)| self.invalid(&format!("webhook.{field}"), m))?;
            if out.iter().any(|h| h.url == hook.url) {
                return Err(self.invalid("webhook.url", format!("{url:?} appears twice")));
            }
            out.push(hook);
        }
        Ok(out)
    }

    /// The same error about `key` (the full name) instead of the bare key.
    fn rename(&self, e: ConfigError, key: &str) -> ConfigError {
        match e {
            ConfigError::Invalid { message, .. } => self.invalid(key, message),
            other => other,
        }
    }

    fn check_keys(&self, t: &toml::Table, prefix: &str, known: &[&str]) -> Result<(), ConfigError> {
        match t.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(ConfigError::UnknownKey {
                path: self.path.to_path_buf(),
                key: full_key(prefix, key),
            }),
            None => Ok(()),
        }
    }

    fn table_at(&self, key: &str, known: &[&str]) -> Result<Option<&toml::Table>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => self.check_keys(t, key, known).map(|()| Some(t)),
            Some(v) => Err(self.wrong_type(key, "a table", v)),
        }
    }

    fn string(&self, t: &toml::Table, key: &str) -> Result<Option<String>, ConfigError> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.trim().is_empty() => {
                Err(self.invalid(key, "must not be empty".into()))
            }
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong_type(key, "a string", v)),
        }
    }

    fn strings(&self, t: &toml::Table, key: &str) -> Result<Vec<String>, ConfigError> {
        let Some(value) = t.get(key) else {
            return Ok(Vec::new());
        };
        let not_strings = || self.wrong_type(key, "an array of strings", value);
        let array = value.as_array().ok_or_else(not_strings)?;
        let strings = array.iter().map(|v| v.as_str().map(str::to_string));
        strings.collect::<Option<Vec<_>>>().ok_or_else(not_strings)
    }

    fn boolean(&self, t: &toml::Table, key: &str) -> Result<Option<bool>, ConfigError> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, "true or false", v)),
        }
    }

    /// An integer in `min..=max`, converted to the field's type.
    fn int<T: TryFrom<i64>>(
        &self,
        t: &toml::Table,
        prefix: &str,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<T>, ConfigError> {
        let full = full_key(prefix, key);
        let n = match t.get(key) {
            None => return Ok(None),
            Some(toml::Value::Integer(n)) => *n,
            Some(v) => return Err(self.wrong_type(&full, "an integer", v)),
        };
        match T::try_from(n) {
            Ok(v) if (min..=max).contains(&n) => Ok(Some(v)),
            _ => Err(self.invalid(&full, format!("{n} is outside {min}..={max}"))),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, value: &toml::Value) -> ConfigError {
        self.invalid(key, format!("must be {expected}, not {}", value.type_str()))
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: Some(self.path.to_path_buf()),
            key: key.into(),
            message,
        }
    }
}

fn full_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

mod fleet;
#[cfg(test)]
mod tests;

pub use fleet::{FleetConfig, FleetKind};
