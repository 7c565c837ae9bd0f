//! Block types RDS has that vwed does not run: the Modbus blocks that address a named Modbus
//! instance (outside the specification, §3.10) and VWED's `SetTaskVariablesBp` (its contract
//! is undocumented, §3.4). They are known by name, so `vwed check` reports them as "not
//! supported yet" errors rather than as unknown types, and no run can reach them.

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
    later("SetTaskVariablesBp", Family::Script),
    later("ModbusCommonReadNameBp", Family::Modbus),
    later("ModbusCommonWriteNameBp", Family::Modbus),
    later("ModbusCommonWaitNameBp", Family::Modbus),
];

/// A known, not yet runnable kind by name.
pub fn lookup(name: &str) -> Option<&'static KindSpec> {
    LATER.iter().find(|k| k.name == name)
}
