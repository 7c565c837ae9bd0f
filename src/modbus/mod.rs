//! Modbus TCP for the Modbus blocks (format §3.10): what a block asks ([`ModbusOp`], built from
//! its evaluated parameters by [`params`]), what it gets back ([`ModbusValue`], turned into the
//! block's `modbusValue` output by [`output`]), and the bounded connection pool that does it
//! ([`ModbusPool`]: one request at a time per connection, run inside the caller's future).
//!
//! The wire format is hand-written in [`frame`] (eight function codes, a fixed 260-byte frame):
//! it needs no new dependency, no tokio io-util, and lets every buffer be fixed-size.

pub mod frame;
pub mod params;
pub mod pool;

#[cfg(test)]
mod params_tests;
#[cfg(test)]
mod pool_tests;
#[cfg(test)]
pub(crate) mod tests_server;

pub use params::{output, parse_block, OutputShape, BLOCK_TYPES};
pub use pool::{ModbusConfig, ModbusPool, ModbusStats};

use serde::{Deserialize, Serialize};

/// The device a block talks to: a Modbus TCP server and the unit (slave) id inside it. Also
/// the pool's key: connections are kept per target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModbusTarget {
    pub host: String,
    pub port: u16,
    pub slave: u8,
}

impl std::fmt::Display for ModbusTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} slave {}", self.host, self.port, self.slave)
    }
}

/// The four Modbus data tables, by their RDS address type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Table {
    /// `0x`: read and write, one bit each.
    #[serde(rename = "0x")]
    Coils,
    /// `1x`: read only, one bit each.
    #[serde(rename = "1x")]
    DiscreteInputs,
    /// `3x`: read only, 16 bits each.
    #[serde(rename = "3x")]
    InputRegisters,
    /// `4x`: read and write, 16 bits each.
    #[serde(rename = "4x")]
    HoldingRegisters,
}

impl Table {
    /// Whether the table holds bits (coils, discrete inputs) rather than 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coils | Table::DiscreteInputs)
    }

    /// Whether the protocol lets a client write the table.
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coils | Table::HoldingRegisters)
    }

    /// The RDS address type code (`0x`, `1x`, `3x`, `4x`).
    pub fn code(self) -> &'static str {
        match self {
            Table::Coils => "0x",
            Table::DiscreteInputs => "1x",
            Table::InputRegisters => "3x",
            Table::HoldingRegisters => "4x",
        }
    }
}

/// What a Modbus block does once connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ModbusAction {
    /// Read `count` values from `address` on.
    Read {
        table: Table,
        address: u16,
        count: u16,
    },
    /// Write `values` from `address` on (coils as 0/1). One value is written with the single
    /// write function (5 or 6), more with the multiple one (15 or 16).
    Write {
        table: Table,
        address: u16,
        values: Vec<u16>,
    },
    /// Read the one value at `address` until it equals `expected` (a bit as 0/1).
    Wait {
        table: Table,
        address: u16,
        expected: u16,
    },
}

impl ModbusAction {
    pub fn read(table: Table, address: u16, count: u16) -> ModbusAction {
        ModbusAction::Read {
            table,
            address,
            count,
        }
    }

    pub fn write(table: Table, address: u16, values: impl Into<Vec<u16>>) -> ModbusAction {
        ModbusAction::Write {
            table,
            address,
            values: values.into(),
        }
    }

    pub fn wait(table: Table, address: u16, expected: u16) -> ModbusAction {
        ModbusAction::Wait {
            table,
            address,
            expected,
        }
    }
}

/// One Modbus block's request: where and what. Pure data (serde, kept in checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModbusOp {
    pub target: ModbusTarget,
    pub action: ModbusAction,
    /// The `alias` of the `ModbusCommon*Bp` blocks: a label for log lines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// What a read or write answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModbusValue {
    /// Coils or discrete inputs read, in address order.
    Bits(Vec<bool>),
    /// Registers read (unsigned 16-bit), in address order.
    Registers(Vec<u16>),
    /// The write was acknowledged.
    Written,
}

/// Why a Modbus call failed. RDS retries [`ModbusError::Transport`] every `retryDelay` (its
/// block record 1007 meanwhile) and fails the block on anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModbusError {
    /// The device could not be reached or did not answer usefully; retrying may help.
    Transport(Transport),
    /// The request itself cannot be made (a wait given to `execute`, a count past the protocol
    /// maximum); retrying cannot help.
    Invalid(String),
}

/// The transport errors, as RDS (modbus4j) classifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The connection could not be opened (refused, unreachable, name not resolved).
    Connect(String),
    /// The connection was not open within `ms`.
    ConnectTimeout { ms: u64 },
    /// The target's last connects failed; no new attempt for `ms` more.
    BackingOff { ms: u64 },
    /// No answer within `ms`; the connection was closed.
    RequestTimeout { ms: u64 },
    /// The connection broke or the answer was malformed; the connection was closed.
    Broken(String),
    /// The device answered with Modbus exception `code` to function `function`.
    Exception { function: u8, code: u8 },
    /// Every connection the pool may open was busy for `ms`.
    PoolBusy { ms: u64 },
}

impl ModbusError {
    /// Whether RDS would retry this error (transport) rather than fail the block.
    pub fn is_transport(&self) -> bool {
        matches!(self, ModbusError::Transport(_))
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Connect(e) => write!(f, "connection failed: {e}"),
            Transport::ConnectTimeout { ms } => {
                write!(f, "not connected within {ms} ms (connect_timeout_ms)")
            }
            Transport::BackingOff { ms } => write!(
                f,
                "the last connects failed; next attempt in {ms} ms (reconnect backoff)"
            ),
            Transport::RequestTimeout { ms } => {
                write!(f, "no answer within {ms} ms (request_timeout_ms)")
            }
            Transport::Broken(e) => write!(f, "connection broken: {e}"),
            Transport::Exception { function, code } => write!(
                f,
                "exception response {code} ({}) to function {function}",
                frame::exception_name(*code)
            ),
            Transport::PoolBusy { ms } => write!(
                f,
                "no connection free within {ms} ms (MODBUS_CONNECTIONS_MAX / per target)"
            ),
        }
    }
}

impl std::fmt::Display for ModbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModbusError::Transport(t) => write!(f, "modbus transport error: {t}"),
            ModbusError::Invalid(e) => write!(f, "modbus request invalid: {e}"),
        }
    }
}

impl std::error::Error for ModbusError {}

impl From<Transport> for ModbusError {
    fn from(t: Transport) -> ModbusError {
        ModbusError::Transport(t)
    }
}
