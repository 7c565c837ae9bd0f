//! Modbus TCP blocks (spec §3.10): the common, single and batch reads, writes and waits. Each
//! turns its parameters into a [`ModbusOp`] (`modbus::params`) and waits while the scheduler
//! runs it on the shared connection pool; a wait reads every `MODBUS_RETRY_DELAY_MS` inside
//! its operation until the value matches. A transport error marks the block record 1007 and
//! the block tries again after `MODBUS_RETRY_DELAY_MS` (RDS retries without end; here each try
//! is a timer wait, so stop and pause act at once), back at 1000 while the request runs.

use super::{done_with, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{block_code, Action, Cx, Raise, Wait};
use crate::integrations::{IoOp, IoReply};
use crate::limits::MODBUS_RETRY_DELAY_MS;
use crate::modbus::{parse_block, ModbusOp, OutputShape};

/// The block record status while a transport error is retried (RDS: 1007).
const RETRYING: i32 = 1007;

#[derive(Debug)]
struct Modbus;

fn issue(op: ModbusOp, shape: OutputShape) -> Result<Action, Raise> {
    Ok(Action::Wait(Wait::Io(Box::new(IoOp::Modbus { op, shape }))))
}

impl Behaviour for Modbus {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let block_type = cx.block().block_type.clone();
        let (op, shape) = parse_block(&block_type, cx.params()).map_err(Raise::Failure)?;
        let kept = serde_json::to_value((&op, shape))
            .map_err(|e| Raise::Failure(format!("Modbus operation: {e}")))?;
        cx.keep(kept)?;
        issue(op, shape)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let kept: (ModbusOp, OutputShape) = serde_json::from_value(cx.own_data().clone())
            .map_err(|e| Raise::Failure(format!("Modbus operation: {e}")))?;
        let (op, shape) = kept;
        match cx.take_io_reply() {
            // The retry delay passed: try again (the record says running again meanwhile).
            None => {
                cx.mark_block(block_code::RUNNING, String::new());
                issue(op, shape)
            }
            Some(IoReply::Value(v)) if shape != OutputShape::None => {
                done_with(cx, "modbusValue", v)
            }
            Some(IoReply::Value(_)) => Ok(Action::Done),
            Some(IoReply::Transport(reason)) => {
                cx.mark_block(RETRYING, format!("{reason}; trying again"));
                Ok(Action::Wait(Wait::Timer {
                    ms: MODBUS_RETRY_DELAY_MS as i64,
                }))
            }
            Some(IoReply::Failed(reason)) => Err(Raise::Failure(reason)),
        }
    }
}

const fn kind(name: &'static str, params: &'static [ParamSpec]) -> KindSpec {
    KindSpec {
        name,
        family: Family::Modbus,
        params,
        branches: &[],
        behaviour: Some(&Modbus),
    }
}

const fn p(name: &'static str, ty: T) -> ParamSpec {
    ParamSpec::req(name, ty)
}

const HOST: ParamSpec = p("ipModbusHost", T::Str);
const PORT: ParamSpec = p("ipModbusPort", T::Int);
const SLAVE: ParamSpec = p("ipSlaveId", T::Int);
const ALIAS: ParamSpec = ParamSpec::opt("alias", T::Str);
const ADDR_TYPE: ParamSpec = p("addrType", T::Str);
const ADDRESS: ParamSpec = p("ipAddress", T::Int);
const REGISTER: ParamSpec = p("ipRegisterAddress", T::Int);
const COIL: ParamSpec = p("ipCoilAddress", T::Int);
const OFFSET: ParamSpec = p("ipRegisterOffset", T::Int);
const LENGTH: ParamSpec = p("ipLength", T::Int);

pub static COMMON_READ: KindSpec = kind(
    "ModbusCommonReadBp",
    &[ADDR_TYPE, HOST, PORT, SLAVE, ADDRESS, ALIAS],
);
pub static COMMON_WRITE: KindSpec = kind(
    "ModbusCommonWriteBp",
    &[
        ADDR_TYPE,
        HOST,
        PORT,
        SLAVE,
        ADDRESS,
        ALIAS,
        p("newValue", T::Int),
    ],
);
pub static COMMON_WAIT: KindSpec = kind(
    "ModbusCommonWaitBp",
    &[
        ADDR_TYPE,
        HOST,
        PORT,
        SLAVE,
        ADDRESS,
        ALIAS,
        p("ipRegisterData", T::Int),
    ],
);
pub static READ_HOLDING: KindSpec = kind(
    "ModbusReadHoldingRegisterBp",
    &[HOST, PORT, SLAVE, REGISTER],
);
pub static READ_INPUT: KindSpec = kind("ModbusReadInputRegisterBp", &[HOST, PORT, SLAVE, REGISTER]);
pub static READ_COIL: KindSpec = kind("ModbusReadSingleCoilBp", &[HOST, PORT, SLAVE, COIL]);
pub static READ_DISCRETE: KindSpec = kind("ModbusReadSingleInputBp", &[HOST, PORT, SLAVE, COIL]);
pub static SET_COIL: KindSpec = kind(
    "ModbusSetSingleCoilBp",
    &[HOST, PORT, SLAVE, COIL, p("ipCoilStatus", T::Bool)],
);
pub static SET_REGISTER: KindSpec = kind(
    "ModbusSetSingleRegisterBp",
    &[HOST, PORT, SLAVE, REGISTER, p("ipRegisterData", T::Int)],
);
pub static WAIT_COIL: KindSpec = kind(
    "ModbusWaitSingleCoilBp",
    &[
        HOST,
        PORT,
        SLAVE,
        COIL,
        p("ipReadonlyCoil", T::Bool),
        p("ipTargetCoilStatus", T::Bool),
    ],
);
pub static WAIT_REGISTER: KindSpec = kind(
    "ModbusWaitSingleRegisterBp",
    &[
        HOST,
        PORT,
        SLAVE,
        REGISTER,
        p("ipReadonlyRegister", T::Bool),
        p("ipRegisterData", T::Int),
    ],
);
pub static BATCH_READ_HOLDING: KindSpec = kind(
    "ModbusBatchReadHoldingRegisterBp",
    &[HOST, PORT, SLAVE, OFFSET, LENGTH],
);
pub static BATCH_READ_INPUT: KindSpec = kind(
    "ModbusBatchReadInputRegisterBp",
    &[HOST, PORT, SLAVE, OFFSET, LENGTH],
);
pub static BATCH_READ_COIL: KindSpec = kind(
    "ModbusBatchReadSingleCoilBp",
    &[HOST, PORT, SLAVE, OFFSET, LENGTH],
);
pub static BATCH_READ_DISCRETE: KindSpec = kind(
    "ModbusBatchReadSingleInputBp",
    &[HOST, PORT, SLAVE, OFFSET, LENGTH],
);
pub static BATCH_SET_COIL: KindSpec = kind(
    "ModbusBatchSetCoilBp",
    &[HOST, PORT, SLAVE, COIL, p("ipCoilStatus", T::Any)],
);
pub static BATCH_SET_HOLDING: KindSpec = kind(
    "ModbusBatchSetHoldingRegisterBp",
    &[HOST, PORT, SLAVE, REGISTER, p("ipRegisterData", T::Any)],
);
