//! The Modbus blocks' parameters (format §3.10), already evaluated, turned into a [`ModbusOp`]
//! and the shape of its `modbusValue` output: one pure function per block family
//! ([`parse_common`], [`parse_single`], [`parse_batch`]), and [`output`] for the answer.
//!
//! Every parameter is required and a null one is an error (RDS: `Integer.valueOf(null)`).
//! Integers may be JSON numbers or numeric strings (RDS: `Integer.valueOf`). Errors name the
//! parameter. Decisions beyond RDS: booleans are `true`/`false` (JSON or text, any case) or
//! 0/1 and nothing else, where RDS reads anything else as false; a wait for a bit value
//! other than 0/1 is refused (it could never end); an empty or null batch array is refused.

use super::{ModbusAction, ModbusOp, ModbusTarget, ModbusValue, Table};
use crate::limits::{
    MODBUS_HOST_BYTES_MAX, MODBUS_READ_BITS_MAX, MODBUS_READ_REGISTERS_MAX, MODBUS_WRITE_BITS_MAX,
    MODBUS_WRITE_REGISTERS_MAX,
};
use crate::value::{clip, parse_java_long, to_display_string};
use serde_json::{Map, Value};

/// A block's evaluated parameters, by name.
pub type Params = Map<String, Value>;

/// What a parse gives: the operation and the shape of its output.
pub type Parsed = Result<(ModbusOp, OutputShape), String>;

/// Every Modbus block type [`parse_block`] knows (format §3.10).
pub const BLOCK_TYPES: &[&str] = &[
    "ModbusCommonReadBp",
    "ModbusCommonWriteBp",
    "ModbusCommonWaitBp",
    "ModbusReadHoldingRegisterBp",
    "ModbusReadInputRegisterBp",
    "ModbusReadSingleCoilBp",
    "ModbusReadSingleInputBp",
    "ModbusSetSingleCoilBp",
    "ModbusSetSingleRegisterBp",
    "ModbusWaitSingleCoilBp",
    "ModbusWaitSingleRegisterBp",
    "ModbusBatchReadHoldingRegisterBp",
    "ModbusBatchReadInputRegisterBp",
    "ModbusBatchReadSingleCoilBp",
    "ModbusBatchReadSingleInputBp",
    "ModbusBatchSetCoilBp",
    "ModbusBatchSetHoldingRegisterBp",
];

/// The `modbusValue` output a block writes, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutputShape {
    /// No output (writes and waits).
    None,
    /// The first value as an integer: a register unsigned, a bit as 1/0.
    Int,
    /// The first value as a boolean (a register: not 0).
    Bool,
    /// Java `Arrays.toString` of the values as signed 16-bit numbers: `"[1, 0, -1]"`.
    SignedList,
    /// Java `Arrays.toString` of the values as booleans: `"[true, false]"`.
    BoolList,
}

/// Parses the parameters of any Modbus block (see [`BLOCK_TYPES`]).
pub fn parse_block(block_type: &str, params: &Params) -> Parsed {
    if block_type.starts_with("ModbusCommon") {
        parse_common(block_type, params)
    } else if block_type.starts_with("ModbusBatch") {
        parse_batch(block_type, params)
    } else {
        parse_single(block_type, params)
    }
}

/// `ModbusCommonReadBp`, `ModbusCommonWriteBp`, `ModbusCommonWaitBp`: the table by `addrType`,
/// one value at `ipAddress`.
pub fn parse_common(block_type: &str, p: &Params) -> Parsed {
    let target = target(p)?;
    let table = addr_type(p)?;
    let address = address(p, "ipAddress")?;
    let (action, shape) = match block_type {
        "ModbusCommonReadBp" => (ModbusAction::read(table, address, 1), OutputShape::Int),
        "ModbusCommonWriteBp" => {
            if !table.is_writable() {
                return Err(format!("addrType {}: read only", table.code()));
            }
            let value = table_value(p, "newValue", table)?;
            (
                ModbusAction::write(table, address, vec![value]),
                OutputShape::None,
            )
        }
        "ModbusCommonWaitBp" => {
            let expected = table_value(p, "ipRegisterData", table)?;
            (
                ModbusAction::wait(table, address, expected),
                OutputShape::None,
            )
        }
        other => return Err(unknown(other)),
    };
    let alias = match p.get("alias") {
        None | Some(Value::Null) => None,
        Some(v) => Some(clip(&to_display_string(v))),
    };
    Ok((op(target, action, alias), shape))
}

/// The single-value blocks: `ModbusRead{HoldingRegister,InputRegister,SingleCoil,SingleInput}Bp`,
/// `ModbusSetSingle{Coil,Register}Bp`, `ModbusWaitSingle{Coil,Register}Bp`.
pub fn parse_single(block_type: &str, p: &Params) -> Parsed {
    let target = target(p)?;
    let reg = || address(p, "ipRegisterAddress");
    let coil = || address(p, "ipCoilAddress");
    let (action, shape) = match block_type {
        "ModbusReadHoldingRegisterBp" => (
            ModbusAction::read(Table::HoldingRegisters, reg()?, 1),
            OutputShape::Int,
        ),
        "ModbusReadInputRegisterBp" => (
            ModbusAction::read(Table::InputRegisters, reg()?, 1),
            OutputShape::Int,
        ),
        "ModbusReadSingleCoilBp" => (
            ModbusAction::read(Table::Coils, coil()?, 1),
            OutputShape::Bool,
        ),
        "ModbusReadSingleInputBp" => (
            ModbusAction::read(Table::DiscreteInputs, coil()?, 1),
            OutputShape::Bool,
        ),
        "ModbusSetSingleCoilBp" => {
            let on = boolean(p, "ipCoilStatus")?;
            (
                ModbusAction::write(Table::Coils, coil()?, vec![u16::from(on)]),
                OutputShape::None,
            )
        }
        "ModbusSetSingleRegisterBp" => {
            let value = register(p, "ipRegisterData")?;
            (
                ModbusAction::write(Table::HoldingRegisters, reg()?, vec![value]),
                OutputShape::None,
            )
        }
        "ModbusWaitSingleCoilBp" => {
            let table = match boolean(p, "ipReadonlyCoil")? {
                true => Table::DiscreteInputs,
                false => Table::Coils,
            };
            let expected = u16::from(boolean(p, "ipTargetCoilStatus")?);
            (
                ModbusAction::wait(table, coil()?, expected),
                OutputShape::None,
            )
        }
        "ModbusWaitSingleRegisterBp" => {
            let table = match boolean(p, "ipReadonlyRegister")? {
                true => Table::InputRegisters,
                false => Table::HoldingRegisters,
            };
            let expected = register(p, "ipRegisterData")?;
            (
                ModbusAction::wait(table, reg()?, expected),
                OutputShape::None,
            )
        }
        other => return Err(unknown(other)),
    };
    Ok((op(target, action, None), shape))
}

/// The batch blocks: `ModbusBatchRead{HoldingRegister,InputRegister,SingleCoil,SingleInput}Bp`
/// (`ipRegisterOffset`, `ipLength`) and `ModbusBatchSet{Coil,HoldingRegister}Bp` (a first
/// address and a JSON array, or a string holding one).
pub fn parse_batch(block_type: &str, p: &Params) -> Parsed {
    let target = target(p)?;
    let batch_read = |table: Table, shape: OutputShape| -> Parsed {
        let address = address(p, "ipRegisterOffset")?;
        let max = match table.is_bits() {
            true => MODBUS_READ_BITS_MAX,
            false => MODBUS_READ_REGISTERS_MAX,
        };
        let count = ranged(p, "ipLength", 1, i64::from(max))? as u16;
        span(address, count, "ipLength")?;
        Ok((
            op(
                target.clone(),
                ModbusAction::read(table, address, count),
                None,
            ),
            shape,
        ))
    };
    let batch_write = |table: Table, first: &str, name: &str| -> Parsed {
        let address = address(p, first)?;
        let values = array(p, name, table)?;
        span(address, values.len() as u16, name)?;
        let action = ModbusAction::write(table, address, values);
        Ok((op(target.clone(), action, None), OutputShape::None))
    };
    match block_type {
        "ModbusBatchReadHoldingRegisterBp" => {
            batch_read(Table::HoldingRegisters, OutputShape::SignedList)
        }
        "ModbusBatchReadInputRegisterBp" => {
            batch_read(Table::InputRegisters, OutputShape::SignedList)
        }
        "ModbusBatchReadSingleCoilBp" => batch_read(Table::Coils, OutputShape::BoolList),
        "ModbusBatchReadSingleInputBp" => batch_read(Table::DiscreteInputs, OutputShape::BoolList),
        "ModbusBatchSetCoilBp" => batch_write(Table::Coils, "ipCoilAddress", "ipCoilStatus"),
        "ModbusBatchSetHoldingRegisterBp" => batch_write(
            Table::HoldingRegisters,
            "ipRegisterAddress",
            "ipRegisterData",
        ),
        other => Err(unknown(other)),
    }
}

/// The `modbusValue` output of a block of `shape` that got `value`; `Null` for
/// [`OutputShape::None`] (write no output) and for a value that does not fit the shape.
pub fn output(shape: OutputShape, value: &ModbusValue) -> Value {
    let ints: Vec<u16> = match value {
        ModbusValue::Bits(bits) => bits.iter().map(|b| u16::from(*b)).collect(),
        ModbusValue::Registers(regs) => regs.clone(),
        ModbusValue::Written => return Value::Null,
    };
    let bits = matches!(value, ModbusValue::Bits(_));
    let list = |items: Vec<String>| Value::String(format!("[{}]", items.join(", ")));
    match shape {
        OutputShape::None => Value::Null,
        OutputShape::Int => ints.first().map_or(Value::Null, |v| Value::from(*v)),
        OutputShape::Bool => ints.first().map_or(Value::Null, |v| Value::Bool(*v != 0)),
        OutputShape::SignedList if bits => list(ints.iter().map(|v| v.to_string()).collect()),
        OutputShape::SignedList => list(ints.iter().map(|v| (*v as i16).to_string()).collect()),
        OutputShape::BoolList => list(ints.iter().map(|v| (*v != 0).to_string()).collect()),
    }
}

fn op(target: ModbusTarget, action: ModbusAction, alias: Option<String>) -> ModbusOp {
    ModbusOp {
        target,
        action,
        alias,
    }
}

fn unknown(block_type: &str) -> String {
    format!("{block_type} is not a Modbus block")
}

/// The parameter `name`, present and not null.
fn required<'a>(p: &'a Params, name: &str) -> Result<&'a Value, String> {
    match p.get(name) {
        None => Err(format!("{name}: missing")),
        Some(Value::Null) => Err(format!("{name}: null")),
        Some(v) => Ok(v),
    }
}

/// An integer given as a JSON integer or a numeric string (`Integer.valueOf`).
fn int(p: &Params, name: &str) -> Result<i64, String> {
    let v = required(p, name)?;
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_java_long(s.trim()),
        _ => None,
    };
    n.ok_or_else(|| format!("{name}: not an integer: {}", clip(&v.to_string())))
}

fn ranged(p: &Params, name: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = int(p, name)?;
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{name}: {n} is not within {lo}..={hi}"))
    }
}

fn address(p: &Params, name: &str) -> Result<u16, String> {
    Ok(ranged(p, name, 0, 65_535)? as u16)
}

/// A 16-bit register value, signed or unsigned (-1 is 0xFFFF).
fn register(p: &Params, name: &str) -> Result<u16, String> {
    Ok(ranged(p, name, -32_768, 65_535)? as u16)
}

/// A value for `table`: 0/1 for bits, a register value otherwise.
fn table_value(p: &Params, name: &str, table: Table) -> Result<u16, String> {
    match table.is_bits() {
        true => ranged(p, name, 0, 1)
            .map(|v| v as u16)
            .map_err(|e| format!("{e} (a coil or input is 0 or 1)")),
        false => register(p, name),
    }
}

/// A boolean: JSON `true`/`false`, the text `true`/`false` in any case, or 0/1.
fn boolean(p: &Params, name: &str) -> Result<bool, String> {
    let v = required(p, name)?;
    as_bool(v).ok_or_else(|| format!("{name}: not a boolean: {}", clip(&v.to_string())))
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            t if t.eq_ignore_ascii_case("true") => Some(true),
            t if t.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn target(p: &Params) -> Result<ModbusTarget, String> {
    let host = match required(p, "ipModbusHost")? {
        Value::String(s) => s.trim().to_string(),
        other => {
            return Err(format!(
                "ipModbusHost: not a string: {}",
                clip(&other.to_string())
            ))
        }
    };
    if host.is_empty() {
        return Err("ipModbusHost: empty".to_string());
    }
    if host.len() > MODBUS_HOST_BYTES_MAX {
        return Err(format!(
            "ipModbusHost: longer than MODBUS_HOST_BYTES_MAX ({MODBUS_HOST_BYTES_MAX} bytes)"
        ));
    }
    Ok(ModbusTarget {
        host,
        port: ranged(p, "ipModbusPort", 1, 65_535)? as u16,
        slave: ranged(p, "ipSlaveId", 0, 255)? as u8,
    })
}

/// `addrType`: `0x`, `1x`, `3x`, `4x` (or upper-case); anything else is RDS's
/// `deviceUnknowType`.
fn addr_type(p: &Params) -> Result<Table, String> {
    let v = required(p, "addrType")?;
    let text = to_display_string(v);
    match text.trim().to_ascii_lowercase().as_str() {
        "0x" => Ok(Table::Coils),
        "1x" => Ok(Table::DiscreteInputs),
        "3x" => Ok(Table::InputRegisters),
        "4x" => Ok(Table::HoldingRegisters),
        _ => Err(format!("deviceUnknowType (addrType: {})", clip(&text))),
    }
}

/// `count` values from `address` on stay below 65536.
fn span(address: u16, count: u16, name: &str) -> Result<(), String> {
    if u32::from(address) + u32::from(count) > 65_536 {
        return Err(format!(
            "{name}: {count} values from address {address} pass 65535"
        ));
    }
    Ok(())
}

/// A batch write's values: a JSON array, or a string holding one; booleans (or 0/1) for
/// coils, 16-bit integers for registers. Anything else is RDS's `paramsError:<value>`.
fn array(p: &Params, name: &str, table: Table) -> Result<Vec<u16>, String> {
    let v = required(p, name)?;
    let (raw, parsed) = match v {
        Value::String(s) => (s.clone(), serde_json::from_str::<Value>(s).ok()),
        other => (other.to_string(), Some(other.clone())),
    };
    let error = |why: String| format!("paramsError:{} ({name}: {why})", clip(&raw));
    let Some(Value::Array(items)) = parsed else {
        return Err(error("not a JSON array".to_string()));
    };
    let max = match table.is_bits() {
        true => MODBUS_WRITE_BITS_MAX,
        false => MODBUS_WRITE_REGISTERS_MAX,
    };
    if items.is_empty() || items.len() > usize::from(max) {
        return Err(error(format!(
            "{} values, not within 1..={max}",
            items.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let value = match table.is_bits() {
            true => as_bool(item).map(u16::from),
            false => register_item(item),
        };
        match value {
            Some(v) => out.push(v),
            None => return Err(error(format!("bad element {}", clip(&item.to_string())))),
        }
    }
    Ok(out)
}

fn register_item(v: &Value) -> Option<u16> {
    let n = match v {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => parse_java_long(s.trim())?,
        _ => return None,
    };
    (-32_768..=65_535).contains(&n).then_some(n as u16)
}
