//! Tests of the Modbus pool against the in-process test server: every table read and written,
//! exceptions, timeouts and reconnects, waits at their poll rate, cancellation by drop, the
//! connection bound and the reconnect backoff. Timed tests run on tokio's paused clock.

use super::tests_server::TestServer;
use super::*;
use serde_json::json;
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};

fn target(server: &TestServer, slave: u8) -> ModbusTarget {
    ModbusTarget {
        host: "127.0.0.1".into(),
        port: server.port(),
        slave,
    }
}

fn op(server: &TestServer, action: ModbusAction) -> ModbusOp {
    ModbusOp {
        target: target(server, 1),
        action,
        alias: None,
    }
}

/// Long connect timeout: on the paused clock a loopback connect must never race it.
fn config() -> ModbusConfig {
    ModbusConfig {
        connect_timeout_ms: 60_000,
        request_timeout_ms: 1_000,
        ..ModbusConfig::default()
    }
}

/// Lets the server notice closed connections (the paused clock moves only when all is idle).
async fn settle() {
    sleep(Duration::from_millis(1)).await;
}

#[tokio::test]
async fn reads_every_table() {
    let server = TestServer::start().await;
    server.set(Table::Coils, 0, 1);
    server.set(Table::Coils, 9, 1);
    server.set(Table::DiscreteInputs, 1, 1);
    server.set(Table::InputRegisters, 2, 0xFFFF);
    server.set(Table::HoldingRegisters, 3, 42);
    let pool = ModbusPool::new(config());
    let mut coils = vec![false; 10];
    (coils[0], coils[9]) = (true, true);
    let cases = [
        (
            ModbusAction::read(Table::Coils, 0, 10),
            ModbusValue::Bits(coils),
        ),
        (
            ModbusAction::read(Table::DiscreteInputs, 0, 2),
            ModbusValue::Bits(vec![false, true]),
        ),
        (
            ModbusAction::read(Table::InputRegisters, 2, 1),
            ModbusValue::Registers(vec![0xFFFF]),
        ),
        (
            ModbusAction::read(Table::HoldingRegisters, 2, 2),
            ModbusValue::Registers(vec![0, 42]),
        ),
    ];
    for (action, want) in cases {
        assert_eq!(
            pool.execute(&op(&server, action.clone())).await,
            Ok(want),
            "{action:?}"
        );
    }
    assert_eq!(server.accepted(), 1, "one pooled connection");
    let stats = pool.stats();
    assert_eq!(
        (stats.connects, stats.requests, stats.open, stats.idle),
        (1, 4, 1, 1)
    );
}

#[tokio::test]
async fn writes_coils_and_holding_registers_singly_and_in_batches() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let writes = [
        ModbusAction::write(Table::Coils, 5, [1]),
        ModbusAction::write(Table::Coils, 10, [1, 0, 1, 1, 0, 0, 0, 0, 1]),
        ModbusAction::write(Table::HoldingRegisters, 7, [0xBEEF]),
        ModbusAction::write(Table::HoldingRegisters, 20, [1, 2, 0xFFFF]),
    ];
    for action in writes {
        assert_eq!(
            pool.execute(&op(&server, action)).await,
            Ok(ModbusValue::Written)
        );
    }
    assert_eq!(server.get(Table::Coils, 5), 1);
    let coils: Vec<u16> = (10..19).map(|a| server.get(Table::Coils, a)).collect();
    assert_eq!(coils, [1, 0, 1, 1, 0, 0, 0, 0, 1]);
    assert_eq!(server.get(Table::HoldingRegisters, 7), 0xBEEF);
    let regs: Vec<u16> = (20..23)
        .map(|a| server.get(Table::HoldingRegisters, a))
        .collect();
    assert_eq!(regs, [1, 2, 0xFFFF]);
    // Reading back through a block's parameters and output.
    let params = json!({
        "ipModbusHost": "127.0.0.1", "ipModbusPort": server.port(), "ipSlaveId": 1,
        "ipRegisterOffset": 20, "ipLength": 3
    });
    let block = "ModbusBatchReadHoldingRegisterBp";
    let (read_op, shape) = parse_block(block, params.as_object().unwrap()).unwrap();
    let value = pool.execute(&read_op).await.unwrap();
    assert_eq!(output(shape, &value), json!("[1, 2, -1]"));
}

#[tokio::test]
async fn invalid_requests_fail_without_connecting() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    for action in [
        ModbusAction::write(Table::InputRegisters, 0, [1]),
        ModbusAction::read(Table::HoldingRegisters, 0, 126),
        ModbusAction::wait(Table::Coils, 0, 1),
    ] {
        let e = pool.execute(&op(&server, action)).await.unwrap_err();
        assert!(
            matches!(e, ModbusError::Invalid(_)) && !e.is_transport(),
            "{e}"
        );
    }
    let e = pool
        .wait_until(&op(&server, ModbusAction::read(Table::Coils, 0, 1)), 100)
        .await
        .unwrap_err();
    assert!(matches!(e, ModbusError::Invalid(_)), "{e}");
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn an_exception_answer_is_a_transport_error_and_keeps_the_connection() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let past_the_table =
        ModbusAction::read(Table::HoldingRegisters, tests_server::TABLE_LEN as u16, 1);
    let e = pool
        .execute(&op(&server, past_the_table))
        .await
        .unwrap_err();
    let want = Transport::Exception {
        function: 3,
        code: 2,
    };
    assert_eq!(e, ModbusError::Transport(want));
    assert!(e.is_transport());
    assert!(e.to_string().contains("illegal data address"), "{e}");
    let ok = pool
        .execute(&op(&server, ModbusAction::read(Table::Coils, 0, 1)))
        .await;
    assert_eq!(ok, Ok(ModbusValue::Bits(vec![false])));
    assert_eq!(server.accepted(), 1);
    assert_eq!(pool.stats().transport_errors, 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out_and_a_new_connection_works_after() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let coil = op(&server, ModbusAction::read(Table::Coils, 0, 1));
    server.set_silent(true);
    let started = Instant::now();
    let e = pool.execute(&coil).await.unwrap_err();
    assert_eq!(
        e,
        ModbusError::Transport(Transport::RequestTimeout { ms: 1_000 })
    );
    assert_eq!(started.elapsed(), Duration::from_millis(1_000));
    assert_eq!(pool.stats().open, 0, "a timed-out connection is closed");
    server.set_silent(false);
    assert_eq!(
        pool.execute(&coil).await,
        Ok(ModbusValue::Bits(vec![false]))
    );
    assert_eq!(server.accepted(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_device_closed_is_replaced_at_once() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let coil = op(&server, ModbusAction::read(Table::Coils, 0, 1));
    pool.execute(&coil).await.unwrap();
    server.close_connections();
    settle().await;
    let started = Instant::now();
    assert_eq!(
        pool.execute(&coil).await,
        Ok(ModbusValue::Bits(vec![false]))
    );
    assert!(started.elapsed() < Duration::from_millis(10));
    assert_eq!(server.accepted(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_midway_closes_its_connection_and_frees_its_slot() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let coil = op(&server, ModbusAction::read(Table::Coils, 0, 1));
    server.set_silent(true);
    assert!(timeout(Duration::from_millis(100), pool.execute(&coil))
        .await
        .is_err());
    assert_eq!(pool.stats().open, 0);
    settle().await;
    assert_eq!(server.open(), 0);
    server.set_silent(false);
    assert!(pool.execute(&coil).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn wait_until_polls_at_its_rate_and_ends_when_the_value_matches() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let waiting = op(&server, ModbusAction::wait(Table::HoldingRegisters, 5, 7));
    let started = Instant::now();
    let change = async {
        sleep(Duration::from_millis(5_000)).await;
        // Reads at 0, 2000 and 4000 ms so far.
        assert_eq!(server.requests(), 3);
        server.set(Table::HoldingRegisters, 5, 7);
    };
    let (done, ()) = tokio::join!(pool.wait_until(&waiting, 2_000), change);
    assert_eq!(done, Ok(()));
    assert_eq!(started.elapsed(), Duration::from_millis(6_000));
    assert_eq!(server.requests(), 4);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_poll_delay_under_the_floor_is_raised_to_it() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let waiting = op(&server, ModbusAction::wait(Table::Coils, 0, 1));
    let waited = timeout(Duration::from_millis(950), pool.wait_until(&waiting, 1)).await;
    assert!(waited.is_err());
    let reads = 950 / crate::limits::MODBUS_POLL_MS_MIN as usize + 1;
    assert_eq!(server.requests(), reads);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_wait_stops_its_polling() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let waiting = op(&server, ModbusAction::wait(Table::DiscreteInputs, 0, 1));
    let waited = timeout(
        Duration::from_millis(5_000),
        pool.wait_until(&waiting, 2_000),
    )
    .await;
    assert!(waited.is_err());
    assert_eq!(server.requests(), 3);
    sleep(Duration::from_millis(20_000)).await;
    assert_eq!(server.requests(), 3, "no read after the wait was dropped");
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_retries_transport_errors_at_its_rate() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    let waiting = op(&server, ModbusAction::wait(Table::Coils, 3, 1));
    server.set_silent(true);
    let started = Instant::now();
    let recover = async {
        // Reads at 0 (times out at 1000), 3000 (at 4000) and 6000 (at 7000).
        sleep(Duration::from_millis(7_500)).await;
        assert_eq!(server.requests(), 3);
        server.set(Table::Coils, 3, 1);
        server.set_silent(false);
    };
    let (done, ()) = tokio::join!(pool.wait_until(&waiting, 2_000), recover);
    assert_eq!(done, Ok(()));
    assert_eq!(started.elapsed(), Duration::from_millis(9_000));
    assert_eq!(server.requests(), 4);
    assert_eq!(pool.stats().transport_errors, 3);
}

#[tokio::test(start_paused = true)]
async fn execute_retrying_retries_transport_errors_only() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(config());
    server.set_silent(true);
    let started = Instant::now();
    let recover = async {
        sleep(Duration::from_millis(2_500)).await;
        server.set_silent(false);
    };
    let coil = op(&server, ModbusAction::write(Table::Coils, 1, [1]));
    let (done, ()) = tokio::join!(pool.execute_retrying(&coil, 2_000), recover);
    assert_eq!(done, Ok(ModbusValue::Written));
    // Timed out at 1000, answered at 3000.
    assert_eq!(started.elapsed(), Duration::from_millis(3_000));
    assert_eq!(server.get(Table::Coils, 1), 1);
    let read_only = op(&server, ModbusAction::write(Table::DiscreteInputs, 1, [1]));
    let e = pool.execute_retrying(&read_only, 2_000).await.unwrap_err();
    assert!(!e.is_transport(), "{e}");
    assert_eq!(started.elapsed(), Duration::from_millis(3_000));
}

#[tokio::test(start_paused = true)]
async fn more_targets_than_the_bound_close_the_least_recently_used_connections() {
    let server = TestServer::start().await;
    let pool = ModbusPool::new(ModbusConfig {
        connections_max: 4,
        ..config()
    });
    let on = |slave: u8| ModbusOp {
        target: target(&server, slave),
        action: ModbusAction::read(Table::HoldingRegisters, 0, 1),
        alias: None,
    };
    // Ten targets (one server, ten slave ids), one after the other, twice.
    for slave in (0..10).chain(0..10) {
        assert!(pool.execute(&on(slave)).await.is_ok());
        assert!(pool.stats().open <= 4);
        settle().await;
        assert!(
            server.open() <= 4,
            "server sees {} connections",
            server.open()
        );
    }
    assert_eq!(server.accepted(), 20);
    assert_eq!(pool.stats().evictions, 16);
    // The four most recent stay pooled: using them again connects nothing.
    for slave in 6..10 {
        pool.execute(&on(slave)).await.unwrap();
    }
    assert_eq!(server.accepted(), 20);
    // Ten at once: the pool never goes past four; the others wait for a connection.
    let calls: Vec<_> = (10..20).map(on).collect();
    let results = futures_util::future::join_all(calls.iter().map(|o| pool.execute(o))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert!(pool.stats().open_peak <= 4, "{:?}", pool.stats());
    settle().await;
    assert!(server.open() <= 4);
}

#[tokio::test(start_paused = true)]
async fn a_refused_target_is_reconnected_with_doubling_pauses() {
    let server = TestServer::start().await;
    let addr = server.addr;
    drop(server);
    settle().await;
    let pool = ModbusPool::new(ModbusConfig {
        backoff_ms: 1_000,
        backoff_max_ms: 8_000,
        ..config()
    });
    let coil = ModbusOp {
        target: ModbusTarget {
            host: "127.0.0.1".into(),
            port: addr.port(),
            slave: 1,
        },
        action: ModbusAction::read(Table::Coils, 0, 1),
        alias: Some("dead plc".into()),
    };
    let e = pool.execute(&coil).await.unwrap_err();
    assert!(
        matches!(e, ModbusError::Transport(Transport::Connect(_))),
        "{e}"
    );
    let e = pool.execute(&coil).await.unwrap_err();
    assert_eq!(
        e,
        ModbusError::Transport(Transport::BackingOff { ms: 1_000 })
    );
    // Retried every 100 ms for a minute: connects at 0, 1, 3, 7, 15, 23, ... 55 s only.
    let retried = timeout(
        Duration::from_millis(59_000),
        pool.execute_retrying(&coil, 100),
    )
    .await;
    assert!(retried.is_err());
    let stats = pool.stats();
    assert_eq!(
        (stats.connect_failures, stats.connects),
        (10, 0),
        "{stats:?}"
    );
    assert_eq!(stats.open, 0);
    // The device comes back: the next connect after the pause succeeds.
    let server = TestServer::start_on(addr).await;
    let back = pool.execute_retrying(&coil, 100).await;
    assert_eq!(back, Ok(ModbusValue::Bits(vec![false])));
    assert_eq!((pool.stats().connects, server.accepted()), (1, 1));
    // A success forgets the failures: the next refusal pauses the first step again.
    drop(server);
    settle().await;
    let e = pool.execute(&coil).await.unwrap_err();
    assert!(
        matches!(e, ModbusError::Transport(Transport::Connect(_))),
        "{e}"
    );
    let e = pool.execute(&coil).await.unwrap_err();
    assert_eq!(
        e,
        ModbusError::Transport(Transport::BackingOff { ms: 1_000 })
    );
}
