//! The Modbus TCP connection pool: connections kept per target (host, port, slave), at most
//! `connections_max` in all and `connections_per_target_max` per target; at the limit the least
//! recently used idle connection is closed, and when every connection is busy a call waits for
//! one at most the request timeout. A connect and a request timeout; a connection that times
//! out or breaks is closed and the next call connects again; connects to a failing target back
//! off (doubling, capped), so a dead device is not hammered.
//!
//! Nothing is spawned: each request runs inside its caller's future, and dropping that future
//! cancels it (a connection cut mid-request is closed, its slot freed). Time is tokio's, so
//! tests run on the paused clock.

use super::frame::{self, Request, ADU_BYTES_MAX};
use super::{ModbusAction, ModbusError, ModbusOp, ModbusTarget, ModbusValue, Transport};
use crate::limits::{
    MODBUS_BACKOFF_TARGETS_MAX, MODBUS_CONNECTIONS_MAX, MODBUS_CONNECTIONS_PER_TARGET_MAX,
    MODBUS_CONNECT_TIMEOUT_MS, MODBUS_HOST_BYTES_MAX, MODBUS_POLL_MS_MIN,
    MODBUS_RECONNECT_BACKOFF_MAX_MS, MODBUS_RECONNECT_BACKOFF_MS, MODBUS_REQUEST_TIMEOUT_MS,
};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{timeout, timeout_at, Instant};

/// The pool's bounds and timeouts; the defaults are the `MODBUS_*` constants of `limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModbusConfig {
    /// Open connections in all (see [`MODBUS_CONNECTIONS_MAX`]).
    pub connections_max: usize,
    /// Open connections per target (see [`MODBUS_CONNECTIONS_PER_TARGET_MAX`]).
    pub connections_per_target_max: usize,
    /// Time to connect (see [`MODBUS_CONNECT_TIMEOUT_MS`]).
    pub connect_timeout_ms: u64,
    /// Time for one answer, and the longest wait for a busy pool (see
    /// [`MODBUS_REQUEST_TIMEOUT_MS`]).
    pub request_timeout_ms: u64,
    /// First reconnect pause after a failed connect (see [`MODBUS_RECONNECT_BACKOFF_MS`]).
    pub backoff_ms: u64,
    /// Longest reconnect pause (see [`MODBUS_RECONNECT_BACKOFF_MAX_MS`]).
    pub backoff_max_ms: u64,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            connections_max: MODBUS_CONNECTIONS_MAX,
            connections_per_target_max: MODBUS_CONNECTIONS_PER_TARGET_MAX,
            connect_timeout_ms: MODBUS_CONNECT_TIMEOUT_MS,
            request_timeout_ms: MODBUS_REQUEST_TIMEOUT_MS,
            backoff_ms: MODBUS_RECONNECT_BACKOFF_MS,
            backoff_max_ms: MODBUS_RECONNECT_BACKOFF_MAX_MS,
        }
    }
}

impl ModbusConfig {
    /// Refuses a configuration the pool cannot work with, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.connections_max == 0 {
            return Err("connections_max must be at least 1".to_string());
        }
        if self.connections_per_target_max == 0
            || self.connections_per_target_max > self.connections_max
        {
            return Err("connections_per_target_max must be within 1..=connections_max".into());
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err("connect_timeout_ms and request_timeout_ms must be positive".into());
        }
        if self.backoff_ms == 0 || self.backoff_ms > self.backoff_max_ms {
            return Err("backoff_ms must be within 1..=backoff_max_ms".to_string());
        }
        Ok(())
    }
}

/// What the pool has done since it was made, and what it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModbusStats {
    /// Connections opened.
    pub connects: u64,
    /// Connects that failed or timed out.
    pub connect_failures: u64,
    /// Idle connections closed to make room for another target.
    pub evictions: u64,
    /// Requests sent.
    pub requests: u64,
    /// Calls that ended in a transport error (backoff and busy pool included).
    pub transport_errors: u64,
    /// Connections open now (idle, in use or connecting).
    pub open: usize,
    /// Of those, idle.
    pub idle: usize,
    /// The most connections open at once so far (never more than `connections_max`).
    pub open_peak: usize,
}

/// Bytes one pooled connection accounts for in the memory budget: its entry with the target's
/// host, and the request and answer frames of the call using it.
pub fn connection_bytes() -> usize {
    std::mem::size_of::<Idle>() + MODBUS_HOST_BYTES_MAX + 2 * ADU_BYTES_MAX
}

/// Bytes one remembered backoff accounts for in the memory budget.
pub fn backoff_bytes() -> usize {
    std::mem::size_of::<Backoff>() + MODBUS_HOST_BYTES_MAX
}

/// The pool. Share it by reference (or in an `Arc`); calls from many futures at once are fine.
pub struct ModbusPool {
    config: ModbusConfig,
    state: Mutex<State>,
    /// Woken when a connection is returned or closed (a waiting call may go on).
    changed: Notify,
}

struct State {
    /// One entry per open (or opening) connection: its target.
    slots: Vec<ModbusTarget>,
    idle: Vec<Idle>,
    backoff: Vec<Backoff>,
    stats: ModbusStats,
}

struct Idle {
    target: ModbusTarget,
    conn: Conn,
    since: Instant,
}

struct Conn {
    stream: TcpStream,
    next_tid: u16,
    /// Whether it has been used before (a stale one gets one immediate retry).
    reused: bool,
}

struct Backoff {
    target: ModbusTarget,
    failures: u32,
    until: Instant,
}

enum Take {
    Idle(Conn),
    Connect,
    Wait,
}

/// A slot of the pool held by one call: the connection (once open) and the duty to give the
/// slot back. Dropped without [`Lease::keep`], it closes the connection and frees the slot —
/// also when the call's future is dropped mid-request.
struct Lease<'a> {
    pool: &'a ModbusPool,
    target: &'a ModbusTarget,
    conn: Option<Conn>,
    holds_slot: bool,
}

impl Lease<'_> {
    /// Returns the healthy connection to the pool as idle.
    fn keep(mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.reused = true;
            let mut state = self.pool.lock();
            state.idle.push(Idle {
                target: self.target.clone(),
                conn,
                since: Instant::now(),
            });
            self.holds_slot = false;
        }
        self.pool.changed.notify_waiters();
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.holds_slot {
            return;
        }
        drop(self.conn.take());
        let mut state = self.pool.lock();
        if let Some(i) = state.slots.iter().position(|t| t == self.target) {
            state.slots.swap_remove(i);
        }
        drop(state);
        self.pool.changed.notify_waiters();
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl ModbusPool {
    /// A pool bounded by `config`.
    ///
    /// # Panics
    /// When `config` fails [`ModbusConfig::check`] (configuration loading checks it first).
    pub fn new(config: ModbusConfig) -> ModbusPool {
        if let Err(e) = config.check() {
            panic!("invalid Modbus configuration: {e}");
        }
        ModbusPool {
            config,
            state: Mutex::new(State {
                slots: Vec::with_capacity(config.connections_max),
                idle: Vec::with_capacity(config.connections_max),
                backoff: Vec::with_capacity(MODBUS_BACKOFF_TARGETS_MAX),
                stats: ModbusStats::default(),
            }),
            changed: Notify::new(),
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &ModbusConfig {
        &self.config
    }

    /// Counters and current connections.
    pub fn stats(&self) -> ModbusStats {
        let state = self.lock();
        ModbusStats {
            open: state.slots.len(),
            idle: state.idle.len(),
            ..state.stats
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a read or a write once. A wait is refused ([`ModbusError::Invalid`]): it is run by
    /// [`ModbusPool::wait_until`].
    pub async fn execute(&self, op: &ModbusOp) -> Result<ModbusValue, ModbusError> {
        if matches!(op.action, ModbusAction::Wait { .. }) {
            return Err(ModbusError::Invalid(
                "a wait is run by wait_until, not execute".to_string(),
            ));
        }
        let result = self.request(&op.target, &op.action).await;
        if matches!(result, Err(ModbusError::Transport(_))) {
            self.lock().stats.transport_errors += 1;
        }
        result
    }

    /// Runs a read or a write until it succeeds or fails with an error that is not a transport
    /// error; transport errors are retried every `retry_ms` (at least [`MODBUS_POLL_MS_MIN`]),
    /// logged once per run of failures. Drop the future to give up.
    pub async fn execute_retrying(
        &self,
        op: &ModbusOp,
        retry_ms: u64,
    ) -> Result<ModbusValue, ModbusError> {
        let mut streak = Streak::default();
        loop {
            match self.execute(op).await {
                Err(e) if e.is_transport() => streak.failed(op, &e, retry_ms),
                other => {
                    streak.ended(op);
                    return other;
                }
            }
            tokio::time::sleep(ms(retry_ms.max(MODBUS_POLL_MS_MIN))).await;
        }
    }

    /// Reads the value of a wait every `poll_ms` (at least [`MODBUS_POLL_MS_MIN`]) until it
    /// equals the expected one; the first read is at once. Transport errors are retried at the
    /// same rate, logged once per run of failures; other errors end the wait. Drop the future
    /// to stop waiting (stop, pause): nothing goes on in the background.
    pub async fn wait_until(&self, op: &ModbusOp, poll_ms: u64) -> Result<(), ModbusError> {
        let mut streak = Streak::default();
        loop {
            match self.wait_or_fail(op, poll_ms).await {
                Ok(()) => {
                    streak.ended(op);
                    return Ok(());
                }
                Err(e) if e.is_transport() => streak.failed(op, &e, poll_ms),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(ms(poll_ms.max(MODBUS_POLL_MS_MIN))).await;
        }
    }

    /// As [`ModbusPool::wait_until`], but any error, a transport error too, ends the wait (a
    /// Modbus block retries it itself, showing 1007 meanwhile).
    pub async fn wait_or_fail(&self, op: &ModbusOp, poll_ms: u64) -> Result<(), ModbusError> {
        let ModbusAction::Wait {
            table,
            address,
            expected,
        } = op.action
        else {
            return Err(ModbusError::Invalid(
                "wait_until runs a wait, not a read or write".to_string(),
            ));
        };
        let read = ModbusOp {
            action: ModbusAction::read(table, address, 1),
            ..op.clone()
        };
        loop {
            if first(&self.execute(&read).await?) == Some(expected) {
                return Ok(());
            }
            tokio::time::sleep(ms(poll_ms.max(MODBUS_POLL_MS_MIN))).await;
        }
    }

    /// One request on a pooled connection; a connection that was idle and turns out broken is
    /// replaced once at once (devices close idle connections).
    async fn request(
        &self,
        target: &ModbusTarget,
        action: &ModbusAction,
    ) -> Result<ModbusValue, ModbusError> {
        let mut req = Request::encode(0, target.slave, action).map_err(ModbusError::Invalid)?;
        loop {
            let mut lease = self.checkout(target).await?;
            let Some(conn) = lease.conn.as_mut() else {
                unreachable!("a checked-out lease holds a connection");
            };
            let reused = conn.reused;
            req.set_tid(conn.next_tid);
            conn.next_tid = conn.next_tid.wrapping_add(1);
            self.lock().stats.requests += 1;
            let wait = self.config.request_timeout_ms;
            let result = match timeout(ms(wait), transact(&conn.stream, &req)).await {
                Err(_) => Err(Transport::RequestTimeout { ms: wait }),
                Ok(result) => result,
            };
            match result {
                Ok(value) => {
                    lease.keep();
                    return Ok(value);
                }
                Err(e @ Transport::Exception { .. }) => {
                    lease.keep();
                    return Err(e.into());
                }
                Err(Transport::Broken(_)) if reused => drop(lease),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A lease on a connection to `target`: an idle one, a new one, or one returned within the
    /// request timeout.
    async fn checkout<'a>(&'a self, target: &'a ModbusTarget) -> Result<Lease<'a>, ModbusError> {
        let wait = self.config.request_timeout_ms;
        let deadline = Instant::now() + ms(wait);
        loop {
            let mut changed = std::pin::pin!(self.changed.notified());
            changed.as_mut().enable();
            let lease = |conn| Lease {
                pool: self,
                target,
                conn,
                holds_slot: true,
            };
            match self.take(target)? {
                Take::Idle(conn) => return Ok(lease(Some(conn))),
                Take::Connect => return self.connect(lease(None)).await,
                Take::Wait => {}
            }
            if timeout_at(deadline, changed).await.is_err() {
                return Err(Transport::PoolBusy { ms: wait }.into());
            }
        }
    }

    /// Under the lock: an idle connection to `target`, else a slot to connect (closing the
    /// least recently used idle connection at the limit), else wait.
    fn take(&self, target: &ModbusTarget) -> Result<Take, Transport> {
        let mut state = self.lock();
        if let Some(i) = state.idle.iter().rposition(|c| &c.target == target) {
            return Ok(Take::Idle(state.idle.swap_remove(i).conn));
        }
        let now = Instant::now();
        if let Some(b) = state
            .backoff
            .iter()
            .find(|b| &b.target == target && b.until > now)
        {
            let left = (b.until - now).as_millis() as u64;
            return Err(Transport::BackingOff { ms: left });
        }
        let mine = state.slots.iter().filter(|t| *t == target).count();
        if mine >= self.config.connections_per_target_max {
            return Ok(Take::Wait);
        }
        if state.slots.len() >= self.config.connections_max {
            let Some(oldest) = (0..state.idle.len()).min_by_key(|i| state.idle[*i].since) else {
                return Ok(Take::Wait);
            };
            let closed = state.idle.swap_remove(oldest);
            if let Some(i) = state.slots.iter().position(|t| *t == closed.target) {
                state.slots.swap_remove(i);
            }
            state.stats.evictions += 1;
        }
        state.slots.push(target.clone());
        state.stats.open_peak = state.stats.open_peak.max(state.slots.len());
        Ok(Take::Connect)
    }

    /// Opens the connection of `lease` (its slot already taken); a failure starts or grows the
    /// target's backoff and frees the slot.
    async fn connect<'a>(&'a self, mut lease: Lease<'a>) -> Result<Lease<'a>, ModbusError> {
        let target = lease.target;
        let wait = self.config.connect_timeout_ms;
        let address = (target.host.as_str(), target.port);
        let result = match timeout(ms(wait), TcpStream::connect(address)).await {
            Err(_) => Err(Transport::ConnectTimeout { ms: wait }),
            Ok(Err(e)) => Err(Transport::Connect(e.to_string())),
            Ok(Ok(stream)) => Ok(stream),
        };
        let mut state = self.lock();
        match result {
            Ok(stream) => {
                // Requests are small and answered one at a time: send each at once.
                let _ = stream.set_nodelay(true);
                state.stats.connects += 1;
                state.backoff.retain(|b| &b.target != target);
                drop(state);
                lease.conn = Some(Conn {
                    stream,
                    next_tid: 0,
                    reused: false,
                });
                Ok(lease)
            }
            Err(e) => {
                state.stats.connect_failures += 1;
                self.back_off(&mut state, target);
                drop(state);
                Err(e.into())
            }
        }
    }

    /// Records a failed connect to `target`: the next attempt waits `backoff_ms`, doubled per
    /// further failure up to `backoff_max_ms`.
    fn back_off(&self, state: &mut State, target: &ModbusTarget) {
        let now = Instant::now();
        let failures = match state.backoff.iter().position(|b| &b.target == target) {
            Some(i) => state.backoff.swap_remove(i).failures + 1,
            None => 1,
        };
        if state.backoff.len() >= MODBUS_BACKOFF_TARGETS_MAX {
            let first_due = (0..state.backoff.len()).min_by_key(|i| state.backoff[*i].until);
            if let Some(i) = first_due {
                state.backoff.swap_remove(i);
            }
        }
        let pause = self
            .config
            .backoff_ms
            .saturating_mul(1 << (failures - 1).min(20))
            .min(self.config.backoff_max_ms);
        state.backoff.push(Backoff {
            target: target.clone(),
            failures,
            until: now + ms(pause),
        });
    }
}

/// Sends `req` and reads its answer.
async fn transact(stream: &TcpStream, req: &Request) -> Result<ModbusValue, Transport> {
    frame::write_all(stream, req.bytes()).await?;
    let mut buf = [0u8; ADU_BYTES_MAX];
    let len = frame::read_frame(stream, &mut buf).await?;
    req.decode_reply(&buf[..len])
}

/// The first value read, a bit as 0/1.
fn first(value: &ModbusValue) -> Option<u16> {
    match value {
        ModbusValue::Bits(bits) => bits.first().map(|b| u16::from(*b)),
        ModbusValue::Registers(regs) => regs.first().copied(),
        ModbusValue::Written => None,
    }
}

/// Logs a run of transport failures once when it starts and once when it ends.
#[derive(Default)]
struct Streak {
    failures: u64,
}

impl Streak {
    fn failed(&mut self, op: &ModbusOp, e: &ModbusError, retry_ms: u64) {
        if self.failures == 0 {
            log::warn!(
                "modbus {}: {e}; retrying every {} ms",
                label(op),
                retry_ms.max(MODBUS_POLL_MS_MIN)
            );
        }
        self.failures += 1;
    }

    fn ended(&mut self, op: &ModbusOp) {
        if self.failures > 0 {
            log::info!(
                "modbus {}: answering again after {} failures",
                label(op),
                self.failures
            );
            self.failures = 0;
        }
    }
}

fn label(op: &ModbusOp) -> String {
    match &op.alias {
        Some(alias) => format!("{alias} ({})", op.target),
        None => op.target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::tests_server::TestServer;
    use crate::modbus::Table;

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_a_busy_connection_then_fails_pool_busy() {
        let server = TestServer::start().await;
        let pool = ModbusPool::new(ModbusConfig {
            connect_timeout_ms: 60_000,
            request_timeout_ms: 1_000,
            ..ModbusConfig::default()
        });
        let target = ModbusTarget {
            host: "127.0.0.1".into(),
            port: server.port(),
            slave: 1,
        };
        let op = ModbusOp {
            target: target.clone(),
            action: ModbusAction::Read {
                table: Table::Coils,
                address: 0,
                count: 1,
            },
            alias: None,
        };
        let held = pool.checkout(&target).await.unwrap();
        let started = Instant::now();
        let e = pool.execute(&op).await.unwrap_err();
        assert_eq!(e, ModbusError::Transport(Transport::PoolBusy { ms: 1_000 }));
        assert_eq!(started.elapsed(), ms(1_000));
        // Given back while a call waits: that call takes it.
        let give_back = async {
            tokio::time::sleep(ms(300)).await;
            held.keep();
        };
        let (result, ()) = tokio::join!(pool.execute(&op), give_back);
        assert_eq!(result, Ok(ModbusValue::Bits(vec![false])));
        assert_eq!(started.elapsed(), ms(1_300));
        assert_eq!(server.accepted(), 1);
    }

    #[test]
    fn configurations_the_pool_cannot_use_are_refused_naming_the_field() {
        assert_eq!(ModbusConfig::default().check(), Ok(()));
        let bad = [
            ModbusConfig {
                connections_max: 0,
                ..ModbusConfig::default()
            },
            ModbusConfig {
                connections_per_target_max: 17,
                ..ModbusConfig::default()
            },
            ModbusConfig {
                request_timeout_ms: 0,
                ..ModbusConfig::default()
            },
            ModbusConfig {
                backoff_ms: 60_000,
                ..ModbusConfig::default()
            },
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
    }
}
