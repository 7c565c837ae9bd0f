//! Robot blocks on the pure engine: the `FleetOp` each builds from valid parameters (ids,
//! order constraints, the operation mapping), what it does with each answer, the timer waits
//! of the I/O blocks, and failures on bad parameters.

use crate::engine::tests::{b, expr, finished, flow, simple, Harness};
use crate::engine::{EffectKind, Event, Outcome, Record, Reply};
use crate::fleet::ops::{FleetOp, FleetReply};
use crate::fleet::{Io, RobotView};
use crate::flow::{compile, load};
use serde_json::{json, Value};

fn run(children: Value) -> Harness {
    let mut h = Harness::new(flow(children, json!([])));
    h.event(Event::Start);
    h
}

fn one(ty: &str, params: Value) -> Harness {
    run(json!([b(1, ty, params, json!({}))]))
}

fn asked(h: &Harness) -> FleetOp {
    match h.operation() {
        EffectKind::Fleet(op) => op.as_ref().clone(),
        other => panic!("not a fleet op: {other:?}"),
    }
}

fn answer(h: &mut Harness, reply: FleetReply) -> Outcome {
    h.reply(Reply::Fleet(reply))
}

fn failed_with(outcome: &Outcome, code: i32, text: &str) {
    match outcome {
        Outcome::Interrupted { reason } if code == 1006 => {
            assert!(reason.contains(text), "{reason}")
        }
        Outcome::Ended(e) if e.code == code => assert!(e.reason.contains(text), "{e:?}"),
        other => panic!("expected {code} naming {text}: {other:?}"),
    }
}

fn errors(children: Value) -> Vec<String> {
    let def = json!({"label": "t", "detail": {"inputParams": [], "outputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
            "children": {"default": children}}}});
    let raw = load::load_value(def, "t").remove(0).unwrap();
    compile::compile(&raw)
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn select(children: Value) -> Value {
    b(
        1,
        "CSelectAgvBp",
        json!({"keyRoute": simple("LM1, LM2"), "vehicle": simple("sim-02"), "tag": simple("big")}),
        json!({"default": children}),
    )
}

fn robot(di: &[(i64, bool)]) -> Box<RobotView> {
    Box::new(RobotView {
        id: "sim-01".into(),
        group: "sim".into(),
        labels: vec![],
        station: "LM1".into(),
        last_station: String::new(),
        x: 0.0,
        y: 0.0,
        battery_level: 0.5,
        charging: false,
        dispatchable: true,
        online: true,
        order: None,
        errors: vec![],
        di: di.iter().map(|&(id, status)| Io { id, status }).collect(),
        do_: vec![],
    })
}

#[test]
fn select_opens_an_order_runs_children_in_it_and_seals_it() {
    let mut h = run(json!([select(json!([b(
        2,
        "CAgvOperationBp",
        json!({"targetSiteLabel": simple("LM2"), "scriptName": simple("ForkLoad"),
            "var_start_height": simple("0.25"), "var_recognize": simple("true"),
            "var_nothing": simple("x")}),
        json!({})
    )]))]));
    let FleetOp::Select { order } = asked(&h) else {
        panic!("{:?}", asked(&h))
    };
    assert_eq!(order.id, "o-r1-2");
    assert_eq!(order.external_id, "r1");
    assert_eq!(order.key_route, ["LM1", "LM2"]);
    assert_eq!(
        (order.vehicle.as_deref(), order.label.as_deref()),
        (Some("sim-02"), Some("big"))
    );
    assert_eq!(order.priority, 1);
    answer(
        &mut h,
        FleetReply::Selected {
            vehicle: "sim-02".into(),
        },
    );
    assert_eq!(h.run.blocks["b1"], json!({"selectedAgvId": "sim-02"}));
    let FleetOp::Action {
        order: o2,
        action,
        complete,
        failure_reported,
    } = asked(&h)
    else {
        panic!()
    };
    assert_eq!(o2.id, "o-r1-2", "the action goes to the enclosing order");
    assert_eq!(action.block_id, "a-r1-3");
    assert_eq!(action.operation.as_deref(), Some("ForkLoad"));
    assert_eq!(
        Value::Object(action.operation_args.clone()),
        json!({"start_height": 0.25, "recognize": true}),
        "declared arguments only, converted by their types"
    );
    assert!(!complete && !failure_reported);
    answer(
        &mut h,
        FleetReply::ActionDone {
            vehicle: "sim-02".into(),
            container_name: "c1".into(),
        },
    );
    assert!(matches!(asked(&h), FleetOp::Seal { .. }));
    assert!(finished(&answer(&mut h, FleetReply::Sealed)));
    assert_eq!(h.run.blocks["b2"], json!({"containerName": "c1"}));
}

#[test]
fn operations_map_as_rds_maps_them() {
    let op = |params: Value| {
        let mut h = run(json!([select(json!([b(
            2,
            "CAgvOperationBp",
            params,
            json!({})
        )]))]));
        answer(
            &mut h,
            FleetReply::Selected {
                vehicle: "v".into(),
            },
        );
        match asked(&h) {
            FleetOp::Action { action, .. } => *action,
            other => panic!("{other:?}"),
        }
    };
    let a = op(
        json!({"targetSiteLabel": simple("S1"), "scriptName": simple("binTask"),
        "var_param": simple("load-1"), "goodsId": simple("g7"), "postAction": simple("p2")}),
    );
    assert_eq!(a.bin_task.as_deref(), Some("load-1"));
    assert_eq!(
        (a.goods_id.as_deref(), a.post_action.as_deref()),
        (Some("g7"), Some("p2"))
    );
    let a = op(json!({"targetSiteLabel": simple("S1"), "scriptName": simple("binTask")}));
    assert_eq!(a.bin_task.as_deref(), Some("NO_DEFINE"));
    let a = op(json!({"targetSiteLabel": simple("S1"), "scriptName": simple("lift.py")}));
    assert_eq!(
        (a.operation.as_deref(), a.script_name.as_deref()),
        (Some("script"), Some("lift.py"))
    );
    let a = op(
        json!({"targetSiteLabel": simple("S1"), "scriptName": simple("CustomCommand"),
        "custom_customCommandType": simple("Op"), "custom_operationName": simple("Beep"),
        "custom_operationArgs": simple("{\"n\": 2}")}),
    );
    assert_eq!(a.operation.as_deref(), Some("Beep"));
    assert_eq!(Value::Object(a.operation_args), json!({"n": 2}));
    let a = op(json!({"targetSiteLabel": simple("S1")}));
    assert!(a.operation.is_none() && a.bin_task.is_none(), "a move only");
}

#[test]
fn a_failed_action_marks_1007_and_waits_on() {
    let mut h = run(json!([select(json!([b(
        2,
        "CAgvOperationBp",
        json!({"targetSiteLabel": simple("LM2")}),
        json!({})
    )]))]));
    answer(
        &mut h,
        FleetReply::Selected {
            vehicle: "v".into(),
        },
    );
    let out = answer(
        &mut h,
        FleetReply::ActionFailed {
            reason: "jam".into(),
        },
    );
    assert_eq!(out, Outcome::Waiting);
    assert!(h.records.iter().any(|r| matches!(r,
        Record::BlockStatus { status: 1007, reason, .. } if reason.contains("jam"))));
    assert!(matches!(
        asked(&h),
        FleetOp::Action {
            failure_reported: true,
            ..
        }
    ));
    answer(
        &mut h,
        FleetReply::ActionDone {
            vehicle: "v".into(),
            container_name: String::new(),
        },
    );
    assert_eq!(
        h.run.blocks["b2"],
        json!({"containerName": "", "noticeFailed": ["LM2"]})
    );
}

#[test]
fn select_and_operation_refuse_bad_parameters() {
    let h = one("CSelectAgvBp", json!({"keyRoute": expr("''")}));
    failed_with(h.outcome.as_ref().unwrap(), 1004, "keyRouteEmpty");
    let mut h = one("CSelectAgvBp", json!({"keyRoute": simple("LM1")}));
    let out = answer(
        &mut h,
        FleetReply::Stopped {
            reason: "core stopped it".into(),
        },
    );
    failed_with(&out, 1004, "core stopped it");
    let mut h = run(json!([select(json!([b(
        2,
        "CAgvOperationBp",
        json!({"targetSiteLabel": expr("''")}),
        json!({})
    )]))]));
    let out = answer(
        &mut h,
        FleetReply::Selected {
            vehicle: "v".into(),
        },
    );
    failed_with(&out, 1004, "emptyTargetSite");
    let mut h = run(json!([select(json!([b(
        2,
        "CAgvOperationBp",
        json!({"targetSiteLabel": simple("S"), "scriptName": expr("'Teleport'")}),
        json!({})
    )]))]));
    let out = answer(
        &mut h,
        FleetReply::Selected {
            vehicle: "v".into(),
        },
    );
    failed_with(&out, 1006, "Unknown script name or operation Teleport");
    // Literal mistakes are caught by `vwed check`.
    let e = errors(json!([b(
        1,
        "CAgvOperationBp",
        json!({"targetSiteLabel": simple("S")}),
        json!({})
    )]));
    assert!(
        e.iter()
            .any(|m| m.contains("must be inside a CSelectAgvBp")),
        "{e:?}"
    );
    let e = errors(json!([select(json!([b(
        2,
        "CAgvOperationBp",
        json!({"targetSiteLabel": simple("S"), "scriptName": simple("Teleport")}),
        json!({})
    )]))]));
    assert!(
        e.iter().any(|m| m.contains("unknown operation Teleport")),
        "{e:?}"
    );
    let e = errors(json!([b(
        1,
        "CSelectAgvBp",
        json!({}),
        json!({"default": []})
    )]));
    assert!(e.iter().any(|m| m.contains("keyRoute")), "{e:?}");
}

#[test]
fn send_and_monitor_split_an_action() {
    let mut h = run(json!([select(json!([
        b(
            2,
            "CAgvSendOperationBp",
            json!({"targetSiteLabel": simple("LM2"),
            "isEndAction": simple("true")}),
            json!({})
        ),
        b(
            3,
            "CAgvMonitorOperationBp",
            json!({"blockId": expr("blocks.b2.blockId")}),
            json!({})
        ),
    ]))]));
    answer(
        &mut h,
        FleetReply::Selected {
            vehicle: "v".into(),
        },
    );
    let FleetOp::Send {
        action,
        complete: true,
        ..
    } = asked(&h)
    else {
        panic!()
    };
    answer(
        &mut h,
        FleetReply::Sent {
            block_id: action.block_id.clone(),
        },
    );
    assert_eq!(h.run.blocks["b2"], json!({"blockId": "a-r1-3"}));
    let FleetOp::Monitor { block_id, .. } = asked(&h) else {
        panic!()
    };
    assert_eq!(block_id, "a-r1-3");
    answer(
        &mut h,
        FleetReply::ActionDone {
            vehicle: "v".into(),
            container_name: String::new(),
        },
    );
    assert!(matches!(asked(&h), FleetOp::Seal { .. }));
    let e = errors(json!([b(
        1,
        "CAgvMonitorOperationBp",
        json!({"blockId": simple("x")}),
        json!({})
    )]));
    assert!(
        e.iter()
            .any(|m| m.contains("must be inside a CSelectAgvBp")),
        "{e:?}"
    );
}

#[test]
fn combined_order_loads_and_unloads() {
    let mut h = one(
        "CombinedOrderBp",
        json!({"fromLoc": simple("PICK-01"), "toLoc": simple("DROP-01"),
            "group": simple("sim"), "loadPostAction": simple("cfg1")}),
    );
    let FleetOp::Combined {
        order,
        from,
        to,
        wait,
        ..
    } = asked(&h)
    else {
        panic!()
    };
    assert_eq!(
        (order.id.as_str(), order.key_route.as_slice()),
        ("o-r1-2", &["PICK-01".to_string()][..])
    );
    assert_eq!(
        (from.location.as_str(), to.location.as_str()),
        ("PICK-01", "DROP-01")
    );
    assert_eq!(from.post_action.as_deref(), Some("cfg1"));
    assert!(wait);
    answer(
        &mut h,
        FleetReply::OrderDone {
            vehicle: "sim-01".into(),
            container_name: String::new(),
        },
    );
    assert_eq!(
        h.run.blocks["b1"],
        json!({"agvId": "sim-01", "containerName": ""})
    );
    let mut h = one(
        "CombinedOrderBp",
        json!({"fromLoc": simple("A"), "toLoc": simple("B"),
        "flag": simple("false")}),
    );
    assert!(matches!(asked(&h), FleetOp::Combined { wait: false, .. }));
    assert!(finished(&answer(
        &mut h,
        FleetReply::Sent {
            block_id: "o-r1-2".into()
        }
    )));
    let h = one(
        "CombinedOrderBp",
        json!({"fromLoc": expr("''"), "toLoc": simple("B")}),
    );
    failed_with(h.outcome.as_ref().unwrap(), 1004, "fromLocEmpty");
}

#[test]
fn digital_io_blocks_read_and_set() {
    let mut h = one(
        "ReadDIBp",
        json!({"agvId": simple("sim-01"), "id": simple("2")}),
    );
    assert!(matches!(asked(&h), FleetOp::Robot { ref vehicle } if vehicle == "sim-01"));
    // DI 2 missing: read again after 500 ms.
    answer(
        &mut h,
        FleetReply::Robot {
            robot: Some(robot(&[(1, true)])),
        },
    );
    assert!(h.fire_next());
    assert_eq!(h.host.now, super::robot_io::READ_DI_RETRY_MS);
    answer(
        &mut h,
        FleetReply::Robot {
            robot: Some(robot(&[(2, true)])),
        },
    );
    assert_eq!(h.run.blocks["b1"], json!({"status": true}));

    let mut h = one(
        "ReadDIWaitBp",
        json!({"agvId": simple("sim-01"), "id": simple("1"),
        "status": simple("true"), "retry": simple("2"), "retryInterval": simple("300")}),
    );
    for _ in 0..2 {
        assert!(h.fire_next(), "a pause before each attempt");
        answer(
            &mut h,
            FleetReply::Robot {
                robot: Some(robot(&[(1, false)])),
            },
        );
    }
    assert!(
        finished(h.outcome.as_ref().unwrap()),
        "gives up after 2 attempts"
    );
    assert_eq!(h.host.now, 600);
    assert_eq!(h.run.blocks["b1"], json!({"status": false}));
    let h = one(
        "ReadDIWaitBp",
        json!({"agvId": simple("v"), "id": simple("1"),
        "status": simple("true"), "retry": expr("-1")}),
    );
    failed_with(h.outcome.as_ref().unwrap(), 1006, "retry");

    let mut h = one(
        "SetDOBp",
        json!({"agvId": simple("sim-01"), "id": simple("3"),
        "status": simple("true")}),
    );
    assert_eq!(
        asked(&h),
        FleetOp::SetOutput {
            vehicle: "sim-01".into(),
            id: 3,
            status: true
        }
    );
    assert!(finished(&answer(&mut h, FleetReply::Done)));
    let h = one(
        "SetDOBp",
        json!({"agvId": simple("v"), "id": expr("'three'")}),
    );
    failed_with(h.outcome.as_ref().unwrap(), 1006, "paramsError");
    let e = errors(json!([b(
        1,
        "SetDOBp",
        json!({"agvId": simple("v"), "id": simple("x")}),
        json!({})
    )]));
    assert!(e.iter().any(|m| m.contains("id")), "{e:?}");
}

#[test]
fn wait_pass_waits_for_the_operator_or_its_time() {
    let mut h = one("WaitPassBp", json!({"agvId": simple("sim-01")}));
    assert_eq!(
        h.host.cache.get("waitPass_sim-01").map(String::as_str),
        Some("false")
    );
    assert!(h.fire_next());
    assert!(h.fire_next(), "still waiting");
    h.host.cache.insert("waitPass_sim-01".into(), "true".into());
    assert!(h.fire_next());
    assert!(finished(h.outcome.as_ref().unwrap()));
    assert_eq!(h.host.now, 3 * super::robot_io::WAIT_PASS_CHECK_MS);
    let mut h = one("WaitPassBp", json!({"waitPassTime": simple("4500")}));
    assert!(h.host.cache.contains_key("waitPass_null"));
    while h.fire_next() {}
    assert!(finished(h.outcome.as_ref().unwrap()));
    assert_eq!(h.host.now, 4500);
}

#[test]
fn select_sets_the_tasks_priority_as_rds_does() {
    let h = one(
        "CSelectAgvBp",
        json!({"keyRoute": simple("LM1"), "priority": simple("5")}),
    );
    assert!(h.records.contains(&Record::Priority(5)));
    assert_eq!(h.run.task["priority"], json!(5));
    assert!(matches!(asked(&h), FleetOp::Select { ref order } if order.priority == 5));
    let h = one("CSelectAgvBp", json!({"keyRoute": simple("LM1")}));
    assert!(
        h.records.contains(&Record::Priority(1)),
        "1 when absent (§8 Q20)"
    );
    let w = errors(json!([b(
        1,
        "CSelectAgvBp",
        json!({"keyRoute": simple("LM1")}),
        json!({"default": []})
    )]));
    assert!(w.iter().any(|m| m.contains("priority becomes 1")), "{w:?}");
    let w = errors(json!([b(
        1,
        "CSelectAgvBp",
        json!({"keyRoute": simple("LM1"),
        "priority": simple("3")}),
        json!({"default": []})
    )]));
    assert!(w.is_empty(), "{w:?}");
}
