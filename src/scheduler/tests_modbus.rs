//! Modbus blocks (spec §3.10) through the scheduler against the in-process Modbus TCP server
//! on 127.0.0.1:0, on tokio's paused clock.

use super::tests::{b, env, expr, simple, Env};
use super::*;
use crate::modbus::tests_server::TestServer;
use crate::modbus::Table;
use serde_json::{json, Value};
use std::time::Duration;

fn device(server: &TestServer, extra: Value) -> Value {
    let mut p = json!({"ipModbusHost": simple("127.0.0.1"),
        "ipModbusPort": simple(&server.port().to_string()), "ipSlaveId": simple("1")});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

impl Env {
    async fn until_block_status(&self, id: &str, name: &str, status: i32) {
        for _ in 0..6_000 {
            if self
                .blocks(id)
                .await
                .iter()
                .any(|(n, s)| n == name && *s == status)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("block {name} of {id} never {status}");
    }
}

/// Reads, writes and a wait of every family, their outputs as RDS writes them.
#[tokio::test(start_paused = true)]
async fn modbus_blocks_read_write_and_wait() {
    let server = TestServer::start().await;
    server.set(Table::HoldingRegisters, 5, 42);
    server.set(Table::Coils, 3, 1);
    server.set(Table::InputRegisters, 0, 0xffff);
    server.set(Table::InputRegisters, 1, 2);
    let e = env(Config::default()).await;
    let d = |extra: Value| device(&server, extra);
    let flow = json!([
        b(
            1,
            "ModbusReadHoldingRegisterBp",
            d(json!({"ipRegisterAddress": simple("5")}))
        ),
        b(
            2,
            "ModbusCommonReadBp",
            d(json!({"addrType": simple("0X"), "ipAddress": simple("3")}))
        ),
        b(
            3,
            "ModbusReadSingleCoilBp",
            d(json!({"ipCoilAddress": simple("3")}))
        ),
        b(
            4,
            "ModbusBatchReadInputRegisterBp",
            d(json!({"ipRegisterOffset": simple("0"), "ipLength": simple("2")}))
        ),
        b(
            5,
            "ModbusSetSingleRegisterBp",
            d(json!({"ipRegisterAddress": simple("6"), "ipRegisterData": simple("7")}))
        ),
        b(
            6,
            "ModbusBatchSetCoilBp",
            d(
                json!({"ipCoilAddress": simple("10"), "ipCoilStatus": simple("[true, false, true]")})
            )
        ),
        b(
            7,
            "ModbusWaitSingleRegisterBp",
            d(json!({"ipRegisterAddress": simple("9"),
            "ipReadonlyRegister": simple("false"), "ipRegisterData": simple("1")}))
        ),
        b(
            8,
            "SetTaskVariableBp",
            json!({"varName": simple("out"), "varValue": expr(
            "blocks.b1.modbusValue + ',' + blocks.b2.modbusValue + ',' + \
             blocks.b3.modbusValue + ',' + blocks.b4.modbusValue")})
        ),
    ]);
    e.define("plc", flow, json!({})).await;
    let id = e.submit("plc", 1).await;
    e.until_block_status(&id, "b7", 1000).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        e.status(&id).await,
        TaskStatus::Running,
        "still waiting for 4x 9 = 1"
    );
    server.set(Table::HoldingRegisters, 9, 1);
    let rec = e.until_status(&id, TaskStatus::Finished).await;
    let vars: Value = serde_json::from_str(&rec.variables).unwrap();
    assert_eq!(vars["out"], "42,1,true,[-1, 2]", "{vars}");
    assert_eq!(server.get(Table::HoldingRegisters, 6), 7);
    let coils: Vec<u16> = (10..13).map(|a| server.get(Table::Coils, a)).collect();
    assert_eq!(coils, [1, 0, 1]);
}

/// A device that stops answering: the read marks its block 1007 and tries again every
/// `MODBUS_RETRY_DELAY_MS`; when it answers again the block ends normally.
#[tokio::test(start_paused = true)]
async fn a_silent_device_is_retried_with_the_block_at_1007() {
    let server = TestServer::start().await;
    server.set(Table::HoldingRegisters, 1, 8);
    server.set_silent(true);
    let e = env(Config::default()).await;
    let read = b(
        1,
        "ModbusReadHoldingRegisterBp",
        device(&server, json!({"ipRegisterAddress": simple("1")})),
    );
    e.define("silent", json!([read]), json!({})).await;
    let id = e.submit("silent", 1).await;
    e.until_block_status(&id, "b1", 1007).await;
    let asked = server.requests();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let more = server.requests() - asked;
    assert!(
        (2..=6).contains(&more),
        "a retry every 2 s after a 2 s timeout: {more}"
    );
    server.set_silent(false);
    let rec = e.until_status(&id, TaskStatus::Finished).await;
    assert_eq!(rec.status, TaskStatus::Finished);
    assert!(e.blocks(&id).await.contains(&("b1".to_string(), 1003)));
}

/// A stop during a wait ends it at once and the polling stops.
#[tokio::test(start_paused = true)]
async fn a_stop_ends_a_modbus_wait_and_its_polling() {
    let server = TestServer::start().await;
    let e = env(Config::default()).await;
    let wait = b(
        1,
        "ModbusWaitSingleCoilBp",
        device(
            &server,
            json!({
        "ipCoilAddress": simple("2"), "ipReadonlyCoil": simple("true"),
        "ipTargetCoilStatus": simple("true")}),
        ),
    );
    e.define("waiting", json!([wait]), json!({})).await;
    let id = e.submit("waiting", 1).await;
    for _ in 0..100 {
        if server.requests() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(server.requests() >= 2, "polls");
    e.sched.control(&id, Control::Stop).await.unwrap();
    let asked = server.requests();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(server.requests(), asked, "no poll after the stop");
    assert_eq!(e.status(&id).await, TaskStatus::Stopped);
}

/// Bad parameters fail the block naming what is wrong, before anything is sent.
#[tokio::test(start_paused = true)]
async fn bad_modbus_parameters_fail_the_block() {
    let server = TestServer::start().await;
    let e = env(Config::default()).await;
    let d = |extra: Value| device(&server, extra);
    let cases = [
        (
            b(
                1,
                "ModbusCommonWriteBp",
                d(json!({"addrType": simple("1x"),
            "ipAddress": simple("1"), "newValue": simple("1")})),
            ),
            "read only",
        ),
        (
            b(
                1,
                "ModbusCommonReadBp",
                d(json!({"addrType": simple("9x"),
            "ipAddress": simple("1")})),
            ),
            "deviceUnknowType",
        ),
        (
            b(
                1,
                "ModbusBatchSetHoldingRegisterBp",
                d(json!({"ipRegisterAddress": simple("1"),
            "ipRegisterData": simple("[1, oops]")})),
            ),
            "paramsError",
        ),
        (
            b(
                1,
                "ModbusReadSingleCoilBp",
                d(json!({"ipCoilAddress": expr("null")})),
            ),
            "ipCoilAddress",
        ),
    ];
    for (i, (block, says)) in cases.into_iter().enumerate() {
        let def = format!("bad{i}");
        e.define(&def, json!([block]), json!({})).await;
        let id = e.submit(&def, 1).await;
        let rec = e.until_status(&id, TaskStatus::Interrupted).await;
        let reason = rec.ended_reason.unwrap_or_default();
        assert!(reason.contains(says), "{def}: {reason}");
    }
    assert_eq!(server.requests(), 0, "nothing sent");
}

/// A pause during a wait ends the polling; resumed, the block waits again and ends once the
/// value matches.
#[tokio::test(start_paused = true)]
async fn a_paused_modbus_wait_stops_polling_and_resumes() {
    let server = TestServer::start().await;
    let e = env(Config::default()).await;
    let wait = b(
        1,
        "ModbusCommonWaitBp",
        device(
            &server,
            json!({"addrType": simple("4x"),
        "ipAddress": simple("4"), "ipRegisterData": simple("3")}),
        ),
    );
    e.define("pausing", json!([wait]), json!({})).await;
    let id = e.submit("pausing", 1).await;
    e.until_block_status(&id, "b1", 1000).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        e.sched.control(&id, Control::Pause).await.unwrap(),
        TaskStatus::Paused
    );
    let asked = server.requests();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(server.requests(), asked, "no poll while paused");
    server.set(Table::HoldingRegisters, 4, 3);
    e.sched.control(&id, Control::Resume).await.unwrap();
    let rec = e.until_status(&id, TaskStatus::Finished).await;
    assert_eq!(rec.status, TaskStatus::Finished);
}

/// A wait whose device stops answering marks its block 1007 too, and goes on waiting once
/// the device answers again.
#[tokio::test(start_paused = true)]
async fn a_wait_on_a_silent_device_shows_1007_and_goes_on() {
    let server = TestServer::start().await;
    server.set_silent(true);
    let e = env(Config::default()).await;
    let wait = b(
        1,
        "ModbusWaitSingleRegisterBp",
        device(
            &server,
            json!({
        "ipRegisterAddress": simple("7"), "ipReadonlyRegister": simple("false"),
        "ipRegisterData": simple("5")}),
        ),
    );
    e.define("silent-wait", json!([wait]), json!({})).await;
    let id = e.submit("silent-wait", 1).await;
    e.until_block_status(&id, "b1", 1007).await;
    server.set(Table::HoldingRegisters, 7, 5);
    server.set_silent(false);
    let rec = e.until_status(&id, TaskStatus::Finished).await;
    assert_eq!(rec.status, TaskStatus::Finished);
    assert!(e.blocks(&id).await.contains(&("b1".to_string(), 1003)));
}
