//! Tests of the simulated fleet, on tokio's paused clock so every time is exact.
//!
//! Demo map (metres): robots sim-01..03 start at A-01 (0,0), A-02 (4,0), A-03 (8,0); A-05 is
//! at (16,0), B-01 at (0,10). Speed 1 m/s, operations 2000 ms.

use super::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep, Instant};

const BASE: i64 = 1_700_000_000_000;

fn config(robots: usize) -> SimConfig {
    SimConfig {
        robots,
        base_ms: BASE,
        ..SimConfig::default()
    }
}

fn fleet(robots: usize) -> SimFleet {
    SimFleet::new(config(robots))
}

fn spec(id: &str, route: &[&str]) -> OrderSpec {
    OrderSpec {
        id: id.to_string(),
        external_id: "task-1".to_string(),
        priority: 1,
        key_route: route.iter().map(|s| s.to_string()).collect(),
        ..OrderSpec::default()
    }
}

fn with_priority(id: &str, priority: i64) -> OrderSpec {
    OrderSpec {
        priority,
        ..spec(id, &[])
    }
}

/// Move only.
fn go(block: &str, location: &str) -> ActionSpec {
    ActionSpec {
        block_id: block.to_string(),
        location: location.to_string(),
        ..ActionSpec::default()
    }
}

/// Move, then an operation (2000 ms).
fn op(block: &str, location: &str) -> ActionSpec {
    ActionSpec {
        operation: Some("ForkLoad".to_string()),
        ..go(block, location)
    }
}

async fn ms(n: u64) {
    sleep(Duration::from_millis(n)).await;
}

async fn view(f: &SimFleet, id: &str) -> OrderView {
    f.order(id).await.unwrap().unwrap()
}

async fn state(f: &SimFleet, id: &str) -> State {
    view(f, id).await.state
}

async fn action_states(f: &SimFleet, id: &str) -> Vec<State> {
    view(f, id).await.blocks.iter().map(|b| b.state).collect()
}

async fn vehicle(f: &SimFleet, id: &str) -> Option<String> {
    view(f, id).await.vehicle
}

async fn robot(f: &SimFleet, id: &str) -> RobotView {
    let robots = f.robots().await.unwrap();
    robots.into_iter().find(|r| r.id == id).unwrap()
}

fn refused(code: i64, msg: &str) -> FleetError {
    FleetError::Refused {
        code,
        msg: msg.to_string(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(start_paused = true)]
async fn order_gets_the_nearest_free_robot_to_its_key_route() {
    let f = fleet(3);
    f.set_order(spec("o1", &["A-03", "A-01"])).await.unwrap();
    f.set_order(spec("o2", &["B-01"])).await.unwrap();
    f.set_order(spec("o3", &[])).await.unwrap();
    f.set_order(spec("o4", &["A-01"])).await.unwrap();
    assert_eq!(vehicle(&f, "o1").await.as_deref(), Some("sim-03"));
    assert_eq!(vehicle(&f, "o2").await.as_deref(), Some("sim-01"));
    assert_eq!(vehicle(&f, "o3").await.as_deref(), Some("sim-02"));
    assert_eq!(state(&f, "o1").await, State::Waiting);
    assert_eq!(state(&f, "o4").await, State::ToBeDispatched);
    assert_eq!(vehicle(&f, "o4").await, None);
    let o1 = view(&f, "o1").await;
    assert_eq!(
        (o1.create_ms, o1.terminal_ms, o1.complete),
        (BASE, None, false)
    );
    assert_eq!(robot(&f, "sim-03").await.order.as_deref(), Some("o1"));
}

#[tokio::test(start_paused = true)]
async fn vehicle_group_and_label_constrain_the_pick() {
    let f = fleet(3);
    let want =
        |id: &str, vehicle: Option<&str>, group: Option<&str>, label: Option<&str>| OrderSpec {
            vehicle: vehicle.map(str::to_string),
            group: group.map(str::to_string),
            label: label.map(str::to_string),
            ..spec(id, &["A-01"])
        };
    f.set_order(want("v", Some("sim-02"), None, None))
        .await
        .unwrap();
    f.set_order(want("busy", Some("sim-02"), None, None))
        .await
        .unwrap();
    f.set_order(want("g", None, Some("sim"), None))
        .await
        .unwrap();
    f.set_order(want("nov", Some("sim-09"), None, None))
        .await
        .unwrap();
    f.set_order(want("nog", None, Some("other"), None))
        .await
        .unwrap();
    f.set_order(want("nol", None, None, Some("heavy")))
        .await
        .unwrap();
    assert_eq!(vehicle(&f, "v").await.as_deref(), Some("sim-02"));
    assert_eq!(state(&f, "busy").await, State::ToBeDispatched);
    assert_eq!(vehicle(&f, "g").await.as_deref(), Some("sim-01"));
    for (id, error) in [
        ("nov", "no robot sim-09"),
        ("nog", "no robot in group other"),
        ("nol", "no robot with label heavy"),
    ] {
        let order = view(&f, id).await;
        assert_eq!(
            (order.state, order.errors),
            (State::Failed, vec![error.to_string()])
        );
    }
}

#[tokio::test(start_paused = true)]
async fn waiting_orders_get_a_freed_robot_by_priority_then_age() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-02"), true).await.unwrap();
    f.set_order(with_priority("low", 1)).await.unwrap();
    f.set_order(with_priority("high-old", 5)).await.unwrap();
    f.set_order(with_priority("high-new", 5)).await.unwrap();
    assert_eq!(state(&f, "high-old").await, State::ToBeDispatched);
    ms(3_999).await;
    assert_eq!(state(&f, "o1").await, State::Running);
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    assert_eq!(vehicle(&f, "high-old").await.as_deref(), Some("sim-01"));
    assert_eq!(state(&f, "high-old").await, State::Waiting);
    assert_eq!(state(&f, "high-new").await, State::ToBeDispatched);
    assert_eq!(state(&f, "low").await, State::ToBeDispatched);
    f.mark_complete("high-old").await.unwrap();
    assert_eq!(vehicle(&f, "high-new").await.as_deref(), Some("sim-01"));
    assert_eq!(state(&f, "low").await, State::ToBeDispatched);
}

#[tokio::test(start_paused = true)]
async fn simultaneous_ends_apply_in_order_creation_order() {
    let f = fleet(2);
    f.set_order(spec("o1", &["A-02"])).await.unwrap();
    f.set_order(spec("o2", &["A-01"])).await.unwrap();
    f.add_action("o1", go("a1", "B-02"), true).await.unwrap();
    f.add_action("o2", go("a1", "B-01"), true).await.unwrap();
    f.set_order(spec("o3", &[])).await.unwrap();
    ms(10_000).await;
    // Both end at 10 s; o1's robot (sim-02) is freed first and o3 takes it.
    assert_eq!(vehicle(&f, "o1").await.as_deref(), Some("sim-02"));
    assert_eq!(vehicle(&f, "o3").await.as_deref(), Some("sim-02"));
    assert_eq!(robot(&f, "sim-01").await.order, None);
}

#[tokio::test(start_paused = true)]
async fn action_ends_after_travel_plus_operation_time() {
    let f = fleet(1);
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    f.add_action("o1", op("a1", "A-02"), false).await.unwrap();
    ms(5_999).await;
    assert_eq!(state(&f, "o1").await, State::Running);
    assert_eq!(action_states(&f, "o1").await, [State::Running]);
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Waiting);
    assert_eq!(action_states(&f, "o1").await, [State::Finished]);
    let r = robot(&f, "sim-01").await;
    assert_eq!(
        (r.station.as_str(), r.last_station.as_str()),
        ("A-02", "A-01")
    );
    assert_eq!((r.x, r.y), (4.0, 0.0));
    // The next action starts where the last one ended: 10 m, no operation.
    f.add_action("o1", go("a2", "B-02"), true).await.unwrap();
    ms(9_999).await;
    assert_eq!(
        action_states(&f, "o1").await,
        [State::Finished, State::Running]
    );
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    assert_eq!(view(&f, "o1").await.terminal_ms, Some(BASE + 16_000));
}

#[tokio::test(start_paused = true)]
async fn changed_resolves_exactly_at_the_next_change() {
    let f = Arc::new(fleet(1));
    let t0 = Instant::now();
    f.set_order(spec("o1", &[])).await.unwrap();
    f.set_order(spec("o2", &[])).await.unwrap();
    f.add_action("o1", op("a1", "A-02"), true).await.unwrap();
    f.changed("o1").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(6_000));
    assert_eq!(state(&f, "o1").await, State::Finished);
    // Terminal and unknown orders resolve at once.
    f.changed("o1").await.unwrap();
    f.changed("nope").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(6_000));
    assert_eq!(state(&f, "o2").await, State::Waiting);
    // A waiting order with nothing scheduled resolves at an operator call, at once.
    let waiter = {
        let f = Arc::clone(&f);
        tokio::spawn(async move {
            f.changed("o2").await.unwrap();
            Instant::now()
        })
    };
    ms(1_000).await;
    assert!(!waiter.is_finished());
    f.mark_complete("o2").await.unwrap();
    assert_eq!(waiter.await.unwrap(), t0 + Duration::from_millis(7_000));
}

#[tokio::test(start_paused = true)]
async fn changed_of_a_waiting_order_resolves_when_a_robot_may_free() {
    let f = fleet(1);
    let t0 = Instant::now();
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-03"), true).await.unwrap();
    f.set_order(spec("o2", &[])).await.unwrap();
    f.changed("o2").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(8_000));
    assert_eq!(state(&f, "o2").await, State::Waiting);
}

#[tokio::test(start_paused = true)]
async fn sealing_finishes_the_order_and_frees_the_robot() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-02"), false).await.unwrap();
    f.set_order(spec("o2", &[])).await.unwrap();
    ms(5_000).await;
    assert_eq!(state(&f, "o1").await, State::Waiting);
    assert_eq!(state(&f, "o2").await, State::ToBeDispatched);
    f.mark_complete("o1").await.unwrap();
    let o1 = view(&f, "o1").await;
    assert_eq!((o1.state, o1.complete), (State::Finished, true));
    assert_eq!(o1.terminal_ms, Some(BASE + 5_000));
    assert_eq!(vehicle(&f, "o2").await.as_deref(), Some("sim-01"));
    assert_eq!(robot(&f, "sim-01").await.order.as_deref(), Some("o2"));
    // Sealing again, or sealing an ended order, changes nothing.
    f.mark_complete("o1").await.unwrap();
    let missing = f.mark_complete("nope").await;
    assert_eq!(missing, Err(FleetError::NotFound("order nope".into())));
}

#[tokio::test(start_paused = true)]
async fn set_order_and_add_action_are_idempotent() {
    let f = fleet(2);
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), false).await.unwrap();
    ms(1_000).await;
    f.set_order(spec("o1", &["A-02"])).await.unwrap();
    f.add_action("o1", go("a1", "B-01"), false).await.unwrap();
    let o1 = view(&f, "o1").await;
    assert_eq!(o1.vehicle.as_deref(), Some("sim-01"));
    assert_eq!(o1.create_ms, BASE);
    assert_eq!(o1.blocks.len(), 1);
    assert_eq!(o1.blocks[0].location, "A-05");
    assert_eq!(f.orders_len(), 1);
}

#[tokio::test(start_paused = true)]
async fn sealed_order_refuses_actions_with_50003() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-02"), true).await.unwrap();
    let late = f.add_action("o1", go("a2", "A-03"), false).await;
    assert_eq!(
        late,
        Err(refused(CODE_ORDER_COMPLETE, "order o1 is complete"))
    );
    f.add_action("o1", go("a1", "A-02"), true).await.unwrap();
    let missing = f.add_action("nope", go("a1", "A-02"), false).await;
    assert_eq!(missing, Err(FleetError::NotFound("order nope".into())));
}

#[tokio::test(start_paused = true)]
async fn strict_mode_refuses_unknown_locations() {
    let f = SimFleet::new(SimConfig {
        strict: true,
        ..config(1)
    });
    let unknown = refused(CODE_UNKNOWN_LOCATION, "unknown location NOWHERE");
    assert_eq!(
        f.set_order(spec("o0", &["NOWHERE"])).await,
        Err(unknown.clone())
    );
    assert_eq!(f.orders_len(), 0);
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    assert_eq!(
        f.add_action("o1", go("a1", "NOWHERE"), false).await,
        Err(unknown)
    );
    assert!(view(&f, "o1").await.blocks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn lenient_mode_places_unknown_locations_by_name() {
    let f = fleet(1);
    let (x, y) = hashed_position("NOWHERE");
    assert_eq!(hashed_position("NOWHERE"), (x, y));
    assert!((0.0..50.0).contains(&x) && (0.0..50.0).contains(&y));
    assert_ne!(hashed_position("NOWHERE-2"), (x, y));
    f.set_order(spec("o1", &["ELSEWHERE"])).await.unwrap();
    f.add_action("o1", go("a1", "NOWHERE"), true).await.unwrap();
    let travel_ms = (x.hypot(y) * 1000.0).round() as u64;
    ms(travel_ms - 1).await;
    assert_eq!(state(&f, "o1").await, State::Running);
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    let r = robot(&f, "sim-01").await;
    assert_eq!((r.x, r.y, r.station.as_str()), (x, y, "NOWHERE"));
}

#[tokio::test(start_paused = true)]
async fn failed_action_waits_for_redo_then_finishes() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.fail_next("sim-01", "fork jammed").unwrap();
    f.add_action("o1", op("a1", "A-02"), true).await.unwrap();
    ms(6_000).await;
    let o1 = view(&f, "o1").await;
    assert_eq!(
        (o1.state, o1.blocks[0].state),
        (State::Failed, State::Failed)
    );
    assert_eq!(o1.errors, ["fork jammed"]);
    assert_eq!(robot(&f, "sim-01").await.station, "A-02");
    ms(10_000).await;
    assert_eq!(state(&f, "o1").await, State::Failed);
    f.redo_failed("sim-01").await.unwrap();
    assert_eq!(action_states(&f, "o1").await, [State::Running]);
    assert_eq!(state(&f, "o1").await, State::Running);
    // Already at A-02: the redo takes the operation time only.
    ms(1_999).await;
    assert_eq!(state(&f, "o1").await, State::Running);
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    let none = refused(CODE_NO_FAILED_ACTION, "robot sim-01 has no failed action");
    assert_eq!(f.redo_failed("sim-01").await, Err(none.clone()));
    assert_eq!(f.manual_finished("sim-01").await, Err(none));
    let unknown = FleetError::NotFound("robot sim-09".into());
    assert_eq!(f.redo_failed("sim-09").await, Err(unknown.clone()));
    assert_eq!(f.fail_next("sim-09", "x"), Err(unknown));
}

#[tokio::test(start_paused = true)]
async fn manually_finished_action_lets_the_order_proceed() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-02"), false).await.unwrap();
    f.add_action("o1", go("a2", "A-03"), true).await.unwrap();
    f.fail_next("sim-01", "blocked").unwrap();
    ms(4_000).await;
    assert_eq!(
        action_states(&f, "o1").await,
        [State::Failed, State::Created]
    );
    ms(500).await;
    f.manual_finished("sim-01").await.unwrap();
    assert_eq!(
        action_states(&f, "o1").await,
        [State::ManualFinished, State::Running]
    );
    ms(4_000).await;
    let o1 = view(&f, "o1").await;
    assert_eq!(o1.state, State::Finished);
    assert_eq!(o1.terminal_ms, Some(BASE + 8_500));
}

#[tokio::test(start_paused = true)]
async fn offline_robot_fails_its_action_and_takes_no_order() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), true).await.unwrap();
    ms(4_000).await;
    f.set_online("sim-01", false).unwrap();
    let o1 = view(&f, "o1").await;
    assert_eq!(
        (o1.state, o1.blocks[0].state),
        (State::Failed, State::Failed)
    );
    assert_eq!(o1.errors, ["robot offline"]);
    let r = robot(&f, "sim-01").await;
    assert_eq!(
        (r.x, r.station.as_str(), r.last_station.as_str()),
        (4.0, "", "A-01")
    );
    assert_eq!((r.online, r.dispatchable), (false, false));
    // Redone while offline, it waits; back online it runs from where the robot stopped.
    f.redo_failed("sim-01").await.unwrap();
    assert_eq!(state(&f, "o1").await, State::Waiting);
    ms(1_000).await;
    f.set_online("sim-01", true).unwrap();
    assert_eq!(state(&f, "o1").await, State::Running);
    ms(12_000).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    // Offline and free: a new order waits for it.
    f.set_online("sim-01", false).unwrap();
    f.set_order(spec("o2", &[])).await.unwrap();
    assert_eq!(state(&f, "o2").await, State::ToBeDispatched);
    f.set_online("sim-01", true).unwrap();
    assert_eq!(vehicle(&f, "o2").await.as_deref(), Some("sim-01"));
}

#[tokio::test(start_paused = true)]
async fn terminate_stops_the_order_and_frees_the_robot() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), false).await.unwrap();
    f.set_order(spec("o2", &[])).await.unwrap();
    ms(2_500).await;
    f.terminate("o1").await.unwrap();
    let o1 = view(&f, "o1").await;
    assert_eq!(
        (o1.state, o1.blocks[0].state),
        (State::Stopped, State::Stopped)
    );
    assert_eq!((o1.terminal_ms, o1.errors.len()), (Some(BASE + 2_500), 0));
    assert_eq!(vehicle(&f, "o2").await.as_deref(), Some("sim-01"));
    assert_eq!(robot(&f, "sim-01").await.x, 2.5);
    f.terminate("o1").await.unwrap();
    let missing = f.terminate("nope").await;
    assert_eq!(missing, Err(FleetError::NotFound("order nope".into())));
}

#[tokio::test(start_paused = true)]
async fn terminate_for_stops_every_order_of_a_task() {
    let f = fleet(2);
    let of = |id: &str, task: &str| OrderSpec {
        external_id: task.to_string(),
        ..spec(id, &[])
    };
    f.set_order(of("a", "task-9")).await.unwrap();
    f.set_order(of("b", "task-9")).await.unwrap();
    f.set_order(of("c", "task-9")).await.unwrap();
    f.set_order(of("d", "task-2")).await.unwrap();
    f.terminate_for("task-9").await.unwrap();
    for id in ["a", "b", "c"] {
        assert_eq!(state(&f, id).await, State::Stopped);
    }
    assert_eq!(vehicle(&f, "d").await.as_deref(), Some("sim-01"));
    f.terminate_for("task-unknown").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stop_order_records_the_reason_and_refuses_actions() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), false).await.unwrap();
    ms(1_000).await;
    f.stop_order("o1", "path blocked").unwrap();
    let o1 = view(&f, "o1").await;
    assert_eq!(
        (o1.state, o1.errors),
        (State::Stopped, vec!["path blocked".to_string()])
    );
    assert_eq!(robot(&f, "sim-01").await.order, None);
    let late = f.add_action("o1", go("a2", "A-01"), false).await;
    assert_eq!(late, Err(refused(CODE_ORDER_STOPPED, "order stopped")));
    let missing = f.stop_order("nope", "x");
    assert_eq!(missing, Err(FleetError::NotFound("order nope".into())));
}

#[tokio::test(start_paused = true)]
async fn full_order_table_forgets_the_oldest_terminal_order_or_refuses() {
    let f = fleet(1);
    for i in 0..SIM_ORDERS_MAX {
        f.set_order(spec(&format!("o{i}"), &[])).await.unwrap();
    }
    assert_eq!(f.orders_len(), SIM_ORDERS_MAX);
    let full = f.set_order(spec("extra", &[])).await;
    let Err(FleetError::Refused { code, msg }) = full else {
        panic!("{full:?}")
    };
    assert_eq!(code, CODE_ORDERS_FULL);
    assert!(msg.contains("SIM_ORDERS_MAX (1024)"), "{msg}");
    f.terminate("o7").await.unwrap();
    f.terminate("o3").await.unwrap();
    f.set_order(spec("extra", &[])).await.unwrap();
    assert_eq!(f.orders_len(), SIM_ORDERS_MAX);
    assert_eq!(f.order("o3").await.unwrap(), None);
    assert_eq!(state(&f, "o7").await, State::Stopped);
    f.set_order(spec("extra-2", &[])).await.unwrap();
    assert_eq!(f.order("o7").await.unwrap(), None);
    assert!(f.set_order(spec("extra-3", &[])).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn actions_past_the_limit_are_refused() {
    let f = fleet(1);
    f.set_order(spec("o1", &[])).await.unwrap();
    for i in 0..SIM_ACTIONS_PER_ORDER_MAX {
        f.add_action("o1", go(&format!("a{i}"), "A-01"), false)
            .await
            .unwrap();
    }
    let past = f.add_action("o1", go("past", "A-01"), false).await;
    let Err(FleetError::Refused { code, msg }) = past else {
        panic!("{past:?}")
    };
    assert_eq!(code, CODE_ACTIONS_FULL);
    assert!(msg.contains("SIM_ACTIONS_PER_ORDER_MAX (256)"), "{msg}");
    // Zero-length moves all end at once.
    f.mark_complete("o1").await.unwrap();
    assert_eq!(state(&f, "o1").await, State::Finished);
}

#[tokio::test(start_paused = true)]
async fn robots_are_interpolated_while_travelling_and_drain_the_battery() {
    let f = fleet(3);
    let start = robot(&f, "sim-01").await;
    assert_eq!(
        (start.x, start.y, start.station.as_str()),
        (0.0, 0.0, "A-01")
    );
    assert_eq!(
        (start.battery_level, start.charging, start.online),
        (1.0, false, true)
    );
    assert_eq!((start.group.as_str(), start.order), ("sim", None));
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), true).await.unwrap();
    ms(4_000).await;
    let r = robot(&f, "sim-01").await;
    assert_eq!((r.x, r.y), (4.0, 0.0));
    assert_eq!((r.station.as_str(), r.last_station.as_str()), ("", "A-01"));
    assert!(close(r.battery_level, 0.996), "{}", r.battery_level);
    ms(12_000).await;
    let r = robot(&f, "sim-01").await;
    assert_eq!(
        (r.x, r.station.as_str(), r.last_station.as_str()),
        (16.0, "A-05", "A-01")
    );
    assert!(close(r.battery_level, 0.984), "{}", r.battery_level);
    assert_eq!(r.order, None);
}

#[tokio::test(start_paused = true)]
async fn battery_never_drains_below_the_floor() {
    let map = Map::from_json(r#"{"locations": {"BASE": [0, 0], "FAR": [2000, 0]}}"#).unwrap();
    let f = SimFleet::new(SimConfig {
        map,
        speed_m_per_s: 100.0,
        ..config(1)
    });
    f.set_order(spec("o1", &[])).await.unwrap();
    f.add_action("o1", go("a1", "FAR"), true).await.unwrap();
    ms(20_000).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    assert_eq!(robot(&f, "sim-01").await.battery_level, BATTERY_MIN);
}

#[tokio::test(start_paused = true)]
async fn robots_are_placed_in_map_order_with_io() {
    let f = fleet(3);
    let robots = f.robots().await.unwrap();
    let placed: Vec<(&str, &str)> = robots.iter().map(|r| (&*r.id, &*r.station)).collect();
    assert_eq!(
        placed,
        [("sim-01", "A-01"), ("sim-02", "A-02"), ("sim-03", "A-03")]
    );
    let off = |id| Io { id, status: false };
    assert_eq!(robots[0].di, [off(1), off(2), off(3), off(4)]);
    f.set_do("sim-01", 2, true).unwrap();
    assert!(robot(&f, "sim-01").await.do_[1].status);
    let bad = f.set_do("sim-01", 5, true);
    assert_eq!(
        bad,
        Err(FleetError::NotFound("DO 5 on robot sim-01".into()))
    );
    let map = Map::from_json(r#"{"locations": {"ONLY": [3, 4]}}"#).unwrap();
    let f = SimFleet::new(SimConfig { map, ..config(3) });
    let robots = f.robots().await.unwrap();
    let placed: Vec<_> = robots
        .iter()
        .map(|r| (r.x, r.y, r.station.as_str()))
        .collect();
    assert_eq!(placed, [(3.0, 4.0, "ONLY"), (1.0, 0.0, ""), (2.0, 0.0, "")]);
}

#[test]
fn demo_map_has_the_demo_layout() {
    let map = Map::demo();
    assert_eq!(map.names().count(), 23);
    assert_eq!(map.position("A-05"), Some((16.0, 0.0)));
    assert_eq!(map.position("B-01"), Some((0.0, 10.0)));
    assert_eq!(map.position("BUFFER-01"), Some((0.0, 40.0)));
    assert_eq!(map.position("LM5"), Some((30.0, 40.0)));
    assert_eq!(map.position("CP3"), Some((40.0, 20.0)));
    assert_eq!(map.position("NOWHERE"), None);
}

#[test]
fn map_from_json_names_the_problem() {
    let error = |text: &str| Map::from_json(text).unwrap_err();
    assert!(error("{").contains("not JSON"));
    assert!(error("{}").contains("`locations`"));
    assert!(error(r#"{"locations": []}"#).contains("`locations`"));
    assert!(error(r#"{"locations": {}}"#).contains("empty"));
    assert!(error(r#"{"locations": {"A": ["x", 1]}}"#).contains("location A"));
    assert!(error(r#"{"locations": {"B": [1]}}"#).contains("location B"));
    assert!(error(r#"{"locations": {"C": {"x": 1, "y": 2}}}"#).contains("location C"));
    let map = Map::from_json(r#"{"locations": {"A": [1.5, -2]}}"#).unwrap();
    assert_eq!(map.position("A"), Some((1.5, -2.0)));
}

#[test]
fn config_validate_names_the_field() {
    assert_eq!(SimConfig::default().validate(), Ok(()));
    let bad = |c: SimConfig| c.validate().unwrap_err();
    assert!(bad(SimConfig {
        robots: 0,
        ..config(1)
    })
    .starts_with("robots:"));
    let many = bad(config(SIM_ROBOTS_MAX + 1));
    assert!(
        many.starts_with("robots:") && many.contains("SIM_ROBOTS_MAX"),
        "{many}"
    );
    assert_eq!(config(SIM_ROBOTS_MAX).validate(), Ok(()));
    for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let c = SimConfig {
            speed_m_per_s: speed,
            ..config(1)
        };
        assert!(bad(c).starts_with("speed_m_per_s:"));
    }
    for operation_ms in [-1, SIM_OPERATION_MS_MAX + 1] {
        let c = SimConfig {
            operation_ms,
            ..config(1)
        };
        assert!(bad(c).starts_with("operation_ms:"));
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_robot_charges_up_to_full() {
    let f = fleet(1);
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    f.add_action("o1", go("a1", "A-05"), true).await.unwrap();
    ms(16_000).await;
    let r = robot(&f, "sim-01").await;
    assert!(close(r.battery_level, 0.984), "{}", r.battery_level);
    assert!(r.charging, "idle and not full");
    ms(10_000).await;
    let r = robot(&f, "sim-01").await;
    assert!(close(r.battery_level, 0.994), "{}", r.battery_level);
    ms(100_000).await;
    let r = robot(&f, "sim-01").await;
    assert_eq!((r.battery_level, r.charging), (1.0, false));
    // Busy robots do not charge: the charge so far is kept when the next order starts.
    f.set_order(spec("o2", &["A-05"])).await.unwrap();
    f.add_action("o2", go("a2", "A-01"), false).await.unwrap();
    ms(1_000).await;
    let r = robot(&f, "sim-01").await;
    assert!(!r.charging && r.battery_level < 1.0, "{r:?}");
}

/// A–01 → A-02 is 4 m (4 s) then a 2 s operation. Paused 2 s into travel for 10 s, and again
/// 1 s into the operation for 5 s: it ends 15 s late, at 21 s, having stood still meanwhile.
#[tokio::test(start_paused = true)]
async fn a_paused_order_freezes_and_resumes_where_it_was() {
    let f = fleet(1);
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    f.add_action("o1", op("a1", "A-02"), true).await.unwrap();
    ms(2_000).await;
    f.set_paused_for("task-1", true).await.unwrap();
    let at = robot(&f, "sim-01").await;
    assert_eq!((at.x, at.y), (2.0, 0.0));
    ms(10_000).await;
    assert_eq!((robot(&f, "sim-01").await.x), 2.0, "stood still");
    assert_eq!(
        state(&f, "o1").await,
        State::Running,
        "paused is still running"
    );
    f.set_paused_for("task-1", false).await.unwrap();
    ms(3_000).await; // arrived at 14 s, operating
    assert_eq!(robot(&f, "sim-01").await.station, "A-02");
    f.set_robot_paused("sim-01", true).unwrap();
    ms(5_000).await;
    assert_eq!(state(&f, "o1").await, State::Running);
    f.set_robot_paused("sim-01", false).unwrap();
    ms(999).await;
    assert_eq!(
        state(&f, "o1").await,
        State::Running,
        "1 s of operation was owed"
    );
    ms(1).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    assert_eq!(view(&f, "o1").await.terminal_ms, Some(BASE + 21_000));
}

/// A paused order starts nothing: not its first action once it gets a robot, not its next one;
/// another task's orders are not touched, and a robot without an order is left alone.
#[tokio::test(start_paused = true)]
async fn a_paused_order_starts_nothing_until_resumed() {
    let f = fleet(1);
    f.set_robot_paused("sim-01", true).unwrap();
    f.set_order(spec("o1", &["A-01"])).await.unwrap();
    let other = OrderSpec {
        external_id: "task-2".to_string(),
        ..spec("o2", &[])
    };
    f.set_order(other).await.unwrap();
    f.set_paused_for("task-1", true).await.unwrap();
    f.add_action("o1", go("a1", "A-02"), true).await.unwrap();
    ms(60_000).await;
    assert_eq!(action_states(&f, "o1").await, [State::Created]);
    assert_eq!(robot(&f, "sim-01").await.station, "A-01");
    f.set_paused_for("task-2", false).await.unwrap();
    assert_eq!(
        action_states(&f, "o1").await,
        [State::Created],
        "other task"
    );
    f.set_paused_for("task-1", false).await.unwrap();
    ms(4_000).await;
    assert_eq!(state(&f, "o1").await, State::Finished);
    assert!(f.set_robot_paused("sim-99", true).is_err(), "unknown robot");
}
