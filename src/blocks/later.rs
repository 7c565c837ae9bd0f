//! Block types RDS has that later issues implement (HTTP, Modbus, scripts,
//! sub-tasks and task control). They are known by name, so `vwed check` reports them as
//! "not supported yet" errors rather than as unknown types, and no run can reach them.

use super::{Family, KindSpec};

const fn later(name: &'static str, family: Family) -> KindSpec {
    KindSpec {
        name,
        family,
        params: &[],
        branches: &[],
        behaviour: None,
    }
}

static LATER: &[KindSpec] = &[
    later("ScriptBp", Family::Script),
    later("ScriptVariablesBp", Family::Script),
    later("SetTaskVariablesBp", Family::Script),
    later("TriggerTaskEventBp", Family::TaskControl),
    later("ModbusCommonReadBp", Family::Modbus),
    later("ModbusCommonReadNameBp", Family::Modbus),
    later("ModbusCommonWriteBp", Family::Modbus),
    later("ModbusCommonWriteNameBp", Family::Modbus),
    later("ModbusCommonWaitBp", Family::Modbus),
    later("ModbusCommonWaitNameBp", Family::Modbus),
    later("ModbusReadHoldingRegisterBp", Family::Modbus),
    later("ModbusReadInputRegisterBp", Family::Modbus),
    later("ModbusReadSingleCoilBp", Family::Modbus),
    later("ModbusReadSingleInputBp", Family::Modbus),
    later("ModbusSetSingleCoilBp", Family::Modbus),
    later("ModbusSetSingleRegisterBp", Family::Modbus),
    later("ModbusWaitSingleCoilBp", Family::Modbus),
    later("ModbusWaitSingleRegisterBp", Family::Modbus),
    later("ModbusBatchReadHoldingRegisterBp", Family::Modbus),
    later("ModbusBatchReadInputRegisterBp", Family::Modbus),
    later("ModbusBatchReadSingleCoilBp", Family::Modbus),
    later("ModbusBatchReadSingleInputBp", Family::Modbus),
    later("ModbusBatchSetCoilBp", Family::Modbus),
    later("ModbusBatchSetHoldingRegisterBp", Family::Modbus),
];

/// A known, not yet runnable kind by name.
pub fn lookup(name: &str) -> Option<&'static KindSpec> {
    LATER.iter().find(|k| k.name == name)
}
