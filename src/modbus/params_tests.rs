//! Tests of the Modbus blocks' parameters and outputs: every block type with valid parameters,
//! each parameter missing or null, and the block-specific rules of format §3.10.

use super::params::{parse_block, Params};
use super::*;
use serde_json::{json, Value};

fn params(v: Value) -> Params {
    v.as_object().unwrap().clone()
}

/// Valid parameters of `block`.
fn valid(block: &str) -> Value {
    let mut p = json!({"ipModbusHost": "127.0.0.1", "ipModbusPort": 502, "ipSlaveId": 1});
    let extra = match block {
        "ModbusCommonReadBp" => json!({"addrType": "4x", "ipAddress": 10}),
        "ModbusCommonWriteBp" => json!({"addrType": "4x", "ipAddress": 10, "newValue": 7}),
        "ModbusCommonWaitBp" => json!({"addrType": "4x", "ipAddress": 10, "ipRegisterData": 7}),
        "ModbusReadHoldingRegisterBp" | "ModbusReadInputRegisterBp" => {
            json!({"ipRegisterAddress": 3})
        }
        "ModbusReadSingleCoilBp" | "ModbusReadSingleInputBp" => json!({"ipCoilAddress": 3}),
        "ModbusSetSingleCoilBp" => json!({"ipCoilAddress": 3, "ipCoilStatus": true}),
        "ModbusSetSingleRegisterBp" => json!({"ipRegisterAddress": 3, "ipRegisterData": 9}),
        "ModbusWaitSingleCoilBp" => json!({
            "ipCoilAddress": 3, "ipReadonlyCoil": false, "ipTargetCoilStatus": true
        }),
        "ModbusWaitSingleRegisterBp" => json!({
            "ipRegisterAddress": 3, "ipReadonlyRegister": true, "ipRegisterData": 9
        }),
        "ModbusBatchReadHoldingRegisterBp"
        | "ModbusBatchReadInputRegisterBp"
        | "ModbusBatchReadSingleCoilBp"
        | "ModbusBatchReadSingleInputBp" => json!({"ipRegisterOffset": 4, "ipLength": 3}),
        "ModbusBatchSetCoilBp" => json!({"ipCoilAddress": 4, "ipCoilStatus": [true, false]}),
        "ModbusBatchSetHoldingRegisterBp" => {
            json!({"ipRegisterAddress": 4, "ipRegisterData": "[1, -1]"})
        }
        other => panic!("no valid parameters for {other}"),
    };
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn parse(block: &str, v: Value) -> Result<(ModbusOp, OutputShape), String> {
    parse_block(block, &params(v))
}

fn action(block: &str, v: Value) -> (ModbusAction, OutputShape) {
    let (op, shape) = parse(block, v).unwrap_or_else(|e| panic!("{block}: {e}"));
    (op.action, shape)
}

fn error(block: &str, v: Value) -> String {
    match parse(block, v) {
        Ok(ok) => panic!("{block} accepted: {ok:?}"),
        Err(e) => e,
    }
}

fn with(block: &str, key: &str, value: Value) -> Value {
    let mut p = valid(block);
    p[key] = value;
    p
}

#[test]
fn every_block_parses_and_names_each_missing_or_null_parameter() {
    assert_eq!(BLOCK_TYPES.len(), 17);
    for block in BLOCK_TYPES {
        let (op, _) = parse(block, valid(block)).unwrap_or_else(|e| panic!("{block}: {e}"));
        let target = ModbusTarget {
            host: "127.0.0.1".into(),
            port: 502,
            slave: 1,
        };
        assert_eq!(op.target, target, "{block}");
        for key in valid(block).as_object().unwrap().keys() {
            let mut missing = valid(block);
            missing.as_object_mut().unwrap().remove(key);
            let e = error(block, missing);
            assert!(
                e.contains(key.as_str()) && e.contains("missing"),
                "{block} {key}: {e}"
            );
            let e = error(block, with(block, key, Value::Null));
            assert!(
                e.contains(key.as_str()) && e.contains("null"),
                "{block} {key}: {e}"
            );
        }
    }
    assert!(parse_block(
        "ModbusCommonReadNameBp",
        &params(valid("ModbusCommonReadBp"))
    )
    .is_err());
    assert!(parse_block("ReadDIBp", &params(valid("ModbusCommonReadBp"))).is_err());
}

#[test]
fn target_numbers_may_be_strings_and_are_range_checked() {
    let block = "ModbusReadHoldingRegisterBp";
    let mut p = valid(block);
    p["ipModbusPort"] = json!(" 1502 ");
    p["ipSlaveId"] = json!("255");
    p["ipRegisterAddress"] = json!("65535");
    p["ipModbusHost"] = json!(" plc-1 ");
    let (op, _) = parse(block, p).unwrap();
    assert_eq!((op.target.host.as_str(), op.target.port), ("plc-1", 1502));
    assert_eq!(op.target.slave, 255);
    assert_eq!(
        op.action,
        ModbusAction::read(Table::HoldingRegisters, 65_535, 1)
    );
    let bad = [
        ("ipModbusPort", json!(0)),
        ("ipModbusPort", json!(65_536)),
        ("ipModbusPort", json!("80a")),
        ("ipModbusPort", json!(502.5)),
        ("ipModbusPort", json!(true)),
        ("ipSlaveId", json!(256)),
        ("ipSlaveId", json!(-1)),
        ("ipRegisterAddress", json!(65_536)),
        ("ipRegisterAddress", json!(-1)),
        ("ipModbusHost", json!("")),
        ("ipModbusHost", json!(12)),
        ("ipModbusHost", json!("h".repeat(254))),
    ];
    for (key, value) in bad {
        let e = error(block, with(block, key, value.clone()));
        assert!(e.starts_with(key), "{key}={value}: {e}");
    }
}

#[test]
fn common_blocks_take_every_addr_type_in_either_case() {
    let tables = [
        ("0x", Table::Coils),
        ("1X", Table::DiscreteInputs),
        ("3x", Table::InputRegisters),
        ("4X", Table::HoldingRegisters),
    ];
    for (code, table) in tables {
        let p = with("ModbusCommonReadBp", "addrType", json!(code));
        let (op, shape) = parse("ModbusCommonReadBp", p).unwrap();
        assert_eq!(
            (op.action, shape),
            (ModbusAction::read(table, 10, 1), OutputShape::Int)
        );
        let p = with("ModbusCommonWaitBp", "ipRegisterData", json!(1));
        let p = with_into(p, "addrType", json!(code));
        assert_eq!(
            action("ModbusCommonWaitBp", p).0,
            ModbusAction::wait(table, 10, 1)
        );
    }
    let mut p = valid("ModbusCommonReadBp");
    p["alias"] = json!("door sensor");
    assert_eq!(
        parse("ModbusCommonReadBp", p).unwrap().0.alias.as_deref(),
        Some("door sensor")
    );
    for block in [
        "ModbusCommonReadBp",
        "ModbusCommonWriteBp",
        "ModbusCommonWaitBp",
    ] {
        for code in [json!("2x"), json!("5x"), json!(4), json!("holding")] {
            let e = error(block, with(block, "addrType", code.clone()));
            assert!(e.starts_with("deviceUnknowType"), "{block} {code}: {e}");
        }
    }
}

fn with_into(mut p: Value, key: &str, value: Value) -> Value {
    p[key] = value;
    p
}

#[test]
fn common_write_refuses_read_only_tables_and_coil_values_other_than_0_or_1() {
    let block = "ModbusCommonWriteBp";
    for code in ["1x", "3x", "1X", "3X"] {
        let e = error(block, with(block, "addrType", json!(code)));
        assert!(e.contains("read only"), "{code}: {e}");
    }
    let coil = |v: Value| with_into(with(block, "addrType", json!("0x")), "newValue", v);
    assert_eq!(
        action(block, coil(json!(1))).0,
        ModbusAction::write(Table::Coils, 10, [1])
    );
    assert_eq!(
        action(block, coil(json!("0"))).0,
        ModbusAction::write(Table::Coils, 10, [0])
    );
    for v in [json!(2), json!(-1), json!("on")] {
        let e = error(block, coil(v.clone()));
        assert!(
            e.starts_with("newValue") && e.contains("0 or 1"),
            "{v}: {e}"
        );
    }
    let reg = |v: Value| with(block, "newValue", v);
    let (a, shape) = action(block, reg(json!(-1)));
    assert_eq!(
        (a, shape),
        (
            ModbusAction::write(Table::HoldingRegisters, 10, [0xFFFF]),
            OutputShape::None
        )
    );
    assert_eq!(
        action(block, reg(json!(65_535))).0,
        ModbusAction::write(Table::HoldingRegisters, 10, [65_535])
    );
    assert_eq!(
        action(block, reg(json!(-32_768))).0,
        ModbusAction::write(Table::HoldingRegisters, 10, [0x8000])
    );
    for v in [json!(65_536), json!(-32_769)] {
        assert!(error(block, reg(v)).starts_with("newValue"));
    }
    let e = error(
        "ModbusCommonWaitBp",
        with_into(
            with("ModbusCommonWaitBp", "addrType", json!("1x")),
            "ipRegisterData",
            json!(3),
        ),
    );
    assert!(e.starts_with("ipRegisterData"), "{e}");
}

#[test]
fn single_blocks_pick_their_table_and_output() {
    let cases = [
        (
            "ModbusReadHoldingRegisterBp",
            ModbusAction::read(Table::HoldingRegisters, 3, 1),
            OutputShape::Int,
        ),
        (
            "ModbusReadInputRegisterBp",
            ModbusAction::read(Table::InputRegisters, 3, 1),
            OutputShape::Int,
        ),
        (
            "ModbusReadSingleCoilBp",
            ModbusAction::read(Table::Coils, 3, 1),
            OutputShape::Bool,
        ),
        (
            "ModbusReadSingleInputBp",
            ModbusAction::read(Table::DiscreteInputs, 3, 1),
            OutputShape::Bool,
        ),
        (
            "ModbusSetSingleCoilBp",
            ModbusAction::write(Table::Coils, 3, [1]),
            OutputShape::None,
        ),
        (
            "ModbusSetSingleRegisterBp",
            ModbusAction::write(Table::HoldingRegisters, 3, [9]),
            OutputShape::None,
        ),
        (
            "ModbusWaitSingleCoilBp",
            ModbusAction::wait(Table::Coils, 3, 1),
            OutputShape::None,
        ),
        (
            "ModbusWaitSingleRegisterBp",
            ModbusAction::wait(Table::InputRegisters, 3, 9),
            OutputShape::None,
        ),
    ];
    for (block, want, shape) in cases {
        assert_eq!(action(block, valid(block)), (want, shape), "{block}");
    }
    let b = "ModbusWaitSingleCoilBp";
    let p = with_into(
        with(b, "ipReadonlyCoil", json!("TRUE")),
        "ipTargetCoilStatus",
        json!(0),
    );
    assert_eq!(
        action(b, p).0,
        ModbusAction::wait(Table::DiscreteInputs, 3, 0)
    );
    let b = "ModbusWaitSingleRegisterBp";
    let p = with_into(
        with(b, "ipReadonlyRegister", json!(false)),
        "ipRegisterData",
        json!(-2),
    );
    assert_eq!(
        action(b, p).0,
        ModbusAction::wait(Table::HoldingRegisters, 3, 0xFFFE)
    );
    let b = "ModbusSetSingleCoilBp";
    assert_eq!(
        action(b, with(b, "ipCoilStatus", json!("false"))).0,
        ModbusAction::write(Table::Coils, 3, [0])
    );
    for v in [json!("yes"), json!(2), json!([true])] {
        let e = error(b, with(b, "ipCoilStatus", v.clone()));
        assert!(e.starts_with("ipCoilStatus: not a boolean"), "{v}: {e}");
    }
    let b = "ModbusSetSingleRegisterBp";
    assert!(error(b, with(b, "ipRegisterData", json!(70_000))).starts_with("ipRegisterData"));
    assert!(error(b, with(b, "ipRegisterAddress", json!("x"))).starts_with("ipRegisterAddress"));
}

#[test]
fn batch_reads_check_length_and_span() {
    let cases = [
        (
            "ModbusBatchReadHoldingRegisterBp",
            Table::HoldingRegisters,
            OutputShape::SignedList,
        ),
        (
            "ModbusBatchReadInputRegisterBp",
            Table::InputRegisters,
            OutputShape::SignedList,
        ),
        (
            "ModbusBatchReadSingleCoilBp",
            Table::Coils,
            OutputShape::BoolList,
        ),
        (
            "ModbusBatchReadSingleInputBp",
            Table::DiscreteInputs,
            OutputShape::BoolList,
        ),
    ];
    for (block, table, shape) in cases {
        assert_eq!(
            action(block, valid(block)),
            (ModbusAction::read(table, 4, 3), shape)
        );
        let max = if table.is_bits() { 2_000 } else { 125 };
        assert_eq!(
            action(block, with(block, "ipLength", json!(max))).0,
            ModbusAction::read(table, 4, max)
        );
        for len in [json!(0), json!(max + 1), json!("many")] {
            let e = error(block, with(block, "ipLength", len.clone()));
            assert!(e.starts_with("ipLength"), "{block} {len}: {e}");
        }
        let p = with_into(
            with(block, "ipRegisterOffset", json!(65_535)),
            "ipLength",
            json!(2),
        );
        assert!(error(block, p).starts_with("ipLength"), "{block}");
    }
}

#[test]
fn batch_writes_take_arrays_or_strings_holding_one() {
    let b = "ModbusBatchSetCoilBp";
    let coils = |v: Value| action(b, with(b, "ipCoilStatus", v)).0;
    assert_eq!(
        coils(json!([true, false, 1, 0])),
        ModbusAction::write(Table::Coils, 4, [1, 0, 1, 0])
    );
    assert_eq!(
        coils(json!("[true,false]")),
        ModbusAction::write(Table::Coils, 4, [1, 0])
    );
    for v in [
        json!("[true, maybe]"),
        json!("true"),
        json!([2]),
        json!([]),
        json!({"a": 1}),
    ] {
        let e = error(b, with(b, "ipCoilStatus", v.clone()));
        assert!(
            e.starts_with("paramsError:") && e.contains("ipCoilStatus"),
            "{v}: {e}"
        );
    }
    let e = error(b, with(b, "ipCoilStatus", json!("[1, x]")));
    assert!(e.starts_with("paramsError:[1, x] ("), "{e}");
    let e = error(b, with(b, "ipCoilStatus", json!(vec![true; 1_969])));
    assert!(e.contains("1969 values"), "{e}");

    let b = "ModbusBatchSetHoldingRegisterBp";
    let regs = |v: Value| action(b, with(b, "ipRegisterData", v)).0;
    let want = ModbusAction::write(Table::HoldingRegisters, 4, [1, 0xFFFF, 65_535, 5]);
    assert_eq!(regs(json!([1, -1, 65_535, "5"])), want);
    assert_eq!(regs(json!("[1,-1,65535,5]")), want);
    for v in [
        json!("[70000]"),
        json!([1.5]),
        json!("1,2"),
        json!([true]),
        json!(vec![1; 124]),
    ] {
        let e = error(b, with(b, "ipRegisterData", v.clone()));
        assert!(
            e.starts_with("paramsError:") && e.contains("ipRegisterData"),
            "{v}: {e}"
        );
    }
    let p = with_into(
        with(b, "ipRegisterAddress", json!(65_535)),
        "ipRegisterData",
        json!([1, 2]),
    );
    assert!(error(b, p).starts_with("ipRegisterData"));
}

#[test]
fn outputs_have_rds_formats() {
    let regs = ModbusValue::Registers(vec![1, 0, 0xFFFF]);
    let bits = ModbusValue::Bits(vec![true, false]);
    assert_eq!(output(OutputShape::Int, &regs), json!(1));
    assert_eq!(
        output(OutputShape::Int, &ModbusValue::Registers(vec![65_535])),
        json!(65_535)
    );
    assert_eq!(output(OutputShape::Int, &bits), json!(1));
    assert_eq!(output(OutputShape::Bool, &bits), json!(true));
    assert_eq!(
        output(OutputShape::Bool, &ModbusValue::Bits(vec![false])),
        json!(false)
    );
    assert_eq!(output(OutputShape::SignedList, &regs), json!("[1, 0, -1]"));
    assert_eq!(output(OutputShape::BoolList, &bits), json!("[true, false]"));
    assert_eq!(
        output(OutputShape::SignedList, &ModbusValue::Registers(vec![])),
        json!("[]")
    );
    assert_eq!(output(OutputShape::None, &regs), Value::Null);
    assert_eq!(output(OutputShape::Int, &ModbusValue::Written), Value::Null);
}

#[test]
fn ops_round_trip_through_serde_with_rds_table_codes() {
    let (op, _) = parse("ModbusCommonWriteBp", valid("ModbusCommonWriteBp")).unwrap();
    let text = serde_json::to_value(&op).unwrap();
    assert_eq!(text["action"]["table"], json!("4x"));
    assert_eq!(text["action"]["op"], json!("write"));
    assert_eq!(serde_json::from_value::<ModbusOp>(text).unwrap(), op);
}
