//! Tests of the RDSCore fleet against a fake core: a plain TCP listener on 127.0.0.1:0 that
//! reads each HTTP/1.1 request by hand, records it and answers a canned JSON per request.

use super::*;
use crate::test_net::{read_some, write_all};
use std::future::Future;
use std::sync::Mutex;
use tokio::net::{TcpListener, TcpStream};

/// A request the fake core received.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

/// Status and body of a canned answer.
type Canned = (u16, String);

fn ok() -> Canned {
    (200, r#"{"code":0,"msg":"ok"}"#.to_string())
}

fn answer(status: u16, body: Value) -> Canned {
    (status, body.to_string())
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One request: the head up to the blank line, then `Content-Length` bytes of body.
async fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = read_some(stream, &mut chunk).await;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = content_length(&head);
    while buf.len() < head_end + len {
        let n = read_some(stream, &mut chunk).await;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    Some(Seen { method, path, body })
}

/// Answers requests one connection at a time, forever.
async fn serve(listener: TcpListener, canned: impl Fn(&Seen) -> Canned, seen: &Mutex<Vec<Seen>>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let Some(req) = read_request(&stream).await else {
            continue;
        };
        let (status, body) = canned(&req);
        seen.lock().unwrap().push(req);
        let resp = format!(
            "HTTP/1.1 {status} Canned\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        write_all(&stream, resp.as_bytes()).await;
    }
}

fn config(url: String) -> RdsCoreConfig {
    RdsCoreConfig {
        url,
        ..RdsCoreConfig::default()
    }
}

/// Runs `f` against a fake core answering `canned`: its output and the requests the core saw.
async fn with_core<T, F>(
    canned: impl Fn(&Seen) -> Canned,
    f: impl FnOnce(RdsCoreFleet) -> F,
) -> (T, Vec<Seen>)
where
    F: Future<Output = T>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let fleet = RdsCoreFleet::new(config(url)).unwrap();
    let seen = Mutex::new(Vec::new());
    let out = tokio::select! {
        _ = serve(listener, canned, &seen) => unreachable!("the fake core never ends"),
        out = f(fleet) => out,
    };
    (out, seen.into_inner().unwrap())
}

fn seen(method: &str, path: &str, body: Value) -> Seen {
    Seen {
        method: method.to_string(),
        path: path.to_string(),
        body,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn refused_code(r: Result<(), FleetError>) -> i64 {
    match r {
        Err(FleetError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn set_order_sends_the_rds_order_shape() {
    let full = OrderSpec {
        id: "o-r1-3".into(),
        external_id: "r1".into(),
        priority: 2,
        vehicle: Some("AMB-01".into()),
        group: Some("g1".into()),
        label: Some("tagA".into()),
        key_route: strings(&["AP1", "AP2"]),
        key_task: Some("load".into()),
        key_goods_id: Some("G1".into()),
    };
    let bare = OrderSpec {
        id: "o-r1-4".into(),
        external_id: "r1".into(),
        priority: 1,
        vehicle: Some(String::new()),
        key_route: strings(&["AP1"]),
        ..OrderSpec::default()
    };
    let (results, seen_) = with_core(
        |_| ok(),
        |f| async move { (f.set_order(full).await, f.set_order(bare).await) },
    )
    .await;
    assert_eq!(results, (Ok(()), Ok(())));
    let full_body = json!({
        "id": "o-r1-3", "externalId": "r1", "priority": 2, "vehicle": "AMB-01",
        "group": "g1", "label": "tagA", "keyRoute": ["AP1", "AP2"], "keyTask": "load",
        "keyGoodsId": "G1", "blocks": []
    });
    let bare_body = json!({
        "id": "o-r1-4", "externalId": "r1", "priority": 1, "keyRoute": ["AP1"], "blocks": []
    });
    let expected = vec![
        seen("POST", "/setOrder", full_body),
        seen("POST", "/setOrder", bare_body),
    ];
    assert_eq!(seen_, expected);
}

#[tokio::test]
async fn a_duplicate_set_order_is_a_replay_and_other_refusals_are_not() {
    let canned = |r: &Seen| match r.body["id"].as_str() {
        Some("dup") => answer(400, json!({"code": 400, "msg": "Order ID Already EXISTS"})),
        Some("bad") => answer(400, json!({"msg": "binTask pick does not exist"})),
        Some("gone") => answer(404, json!({})),
        _ => answer(503, json!({"msg": "core not active"})),
    };
    let (results, _) = with_core(canned, |f| async move {
        let mut out = Vec::new();
        for id in ["dup", "bad", "gone", "down"] {
            let spec = OrderSpec {
                id: id.into(),
                ..OrderSpec::default()
            };
            out.push(f.set_order(spec).await);
        }
        out
    })
    .await;
    assert_eq!(results[0], Ok(()));
    assert_eq!(refused_code(results[1].clone()), 400);
    assert_eq!(refused_code(results[2].clone()), 404);
    let Err(FleetError::Unreachable(msg)) = &results[3] else {
        panic!("a 5xx is unreachable: {:?}", results[3]);
    };
    assert!(
        msg.contains("set_order (POST /setOrder)") && msg.contains("503"),
        "{msg}"
    );
}

fn action() -> ActionSpec {
    let mut args = Map::new();
    args.insert("end_height".into(), json!(0.1));
    ActionSpec {
        block_id: "a-r1-5".into(),
        location: "AP1".into(),
        operation: Some("ForkLoad".into()),
        operation_args: args,
        script_name: Some("lift.py".into()),
        script_args: Map::new(),
        bin_task: Some("load".into()),
        pre_bin_task: Some(String::new()),
        goods_id: Some("G1".into()),
        post_action: Some("cfg-1".into()),
    }
}

#[tokio::test]
async fn add_action_sends_one_block_and_complete_only_when_sealing() {
    let moving = ActionSpec {
        block_id: "a-r1-6".into(),
        location: "AP2".into(),
        ..ActionSpec::default()
    };
    let (results, seen_) = with_core(
        |_| ok(),
        |f| async move {
            let a = f.add_action("o-r1-3", action(), false).await;
            (a, f.add_action("o-r1-3", moving, true).await)
        },
    )
    .await;
    assert_eq!(results, (Ok(()), Ok(())));
    let block = json!({
        "blockId": "a-r1-5", "location": "AP1", "operation": "ForkLoad",
        "operationArgs": {"end_height": 0.1}, "scriptName": "lift.py", "binTask": "load",
        "goodsId": "G1", "postAction": {"configId": "cfg-1"}
    });
    let expected = vec![
        seen(
            "POST",
            "/addBlocks",
            json!({"id": "o-r1-3", "blocks": [block]}),
        ),
        seen(
            "POST",
            "/addBlocks",
            json!({"id": "o-r1-3", "blocks": [{"blockId": "a-r1-6", "location": "AP2"}],
                   "complete": true}),
        ),
    ];
    assert_eq!(seen_, expected);
}

#[tokio::test]
async fn add_action_answers_follow_the_codes() {
    let canned = |r: &Seen| match r.body["id"].as_str() {
        Some("exists") => answer(
            200,
            json!({"code": 50001, "msg": "block a-1 already exist"}),
        ),
        Some("other50001") => answer(200, json!({"code": 50001, "msg": "something else"})),
        Some("sealed") => answer(200, json!({"code": 50003, "msg": "order is complete"})),
        Some("odd") => answer(200, json!({"code": "60000", "msg": "no"})),
        Some("empty") => (200, String::new()),
        _ => ok(),
    };
    let (results, _) = with_core(canned, |f| async move {
        let mut out = Vec::new();
        for id in ["fine", "exists", "other50001", "sealed", "odd", "empty"] {
            out.push(f.add_action(id, action(), false).await);
        }
        out
    })
    .await;
    assert_eq!(results[0], Ok(()));
    assert_eq!(results[1], Ok(()));
    assert_eq!(refused_code(results[2].clone()), 50001);
    let Err(FleetError::Refused { code, msg }) = &results[3] else {
        panic!("{:?}", results[3]);
    };
    assert_eq!(*code, crate::fleet::CODE_ORDER_COMPLETE);
    assert!(
        msg.contains("/addBlocks") && msg.contains("order is complete"),
        "{msg}"
    );
    assert_eq!(refused_code(results[4].clone()), 60000);
    let Err(FleetError::Unreachable(msg)) = &results[5] else {
        panic!("{:?}", results[5]);
    };
    assert!(
        msg.contains("empty answer") && msg.contains("/addBlocks"),
        "{msg}"
    );
}

#[tokio::test]
async fn mark_complete_and_terminate_send_the_id() {
    let (results, seen_) = with_core(
        |_| (200, String::new()),
        |f| async move { (f.mark_complete("o-1").await, f.terminate("o-2").await) },
    )
    .await;
    assert_eq!(results, (Ok(()), Ok(())));
    let expected = vec![
        seen("POST", "/markComplete", json!({"id": "o-1"})),
        seen("POST", "/terminate", json!({"id": "o-2"})),
    ];
    assert_eq!(seen_, expected);
}

#[tokio::test]
async fn set_priority_sends_the_id_and_priority() {
    let (result, seen_) = with_core(
        |_| (200, r#"{"code": 0, "msg": "ok"}"#.to_string()),
        |f| async move { f.set_priority("o-1", 7).await },
    )
    .await;
    assert_eq!(result, Ok(()));
    assert_eq!(
        seen_,
        vec![seen(
            "POST",
            "/setPriority",
            json!({"id": "o-1", "priority": 7})
        )]
    );
}

fn order_json() -> Value {
    json!({
        "id": "o-r1-3", "externalId": "r1", "state": "TOBEDISPATCHED", "vehicle": "",
        "group": "g1", "priority": 2, "complete": false,
        "createTime": 1_700_000_000, "receiveTime": 1_700_000_001, "terminalTime": 0,
        "errors": [{"code": 60019, "desc": "robot blocked", "times": 1, "timestamp": 1}],
        "warnings": [],
        "blocks": [
            {"blockId": "a-1", "location": "AP1", "state": "FINISHED",
             "containerName": "c1", "operation": "ForkLoad", "operation_args": {}},
            {"blockId": "a-2", "location": "AP2", "state": "MANUAL_FINISHED"},
            {"blockId": "a-3", "location": "AP3", "state": "CREATED", "containerName": null}
        ]
    })
}

#[tokio::test]
async fn an_order_is_parsed_with_seconds_as_ms() {
    let canned = |r: &Seen| {
        let mut order = order_json();
        if r.path.ends_with("done") {
            order["id"] = json!("done");
            order["state"] = json!("Error");
            order["vehicle"] = json!("AMB-01");
            order["complete"] = json!(true);
            order["terminateTime"] = json!(1_700_000_060);
            order.as_object_mut().unwrap().remove("terminalTime");
        }
        answer(200, order)
    };
    let (results, seen_) = with_core(canned, |f| async move {
        (f.order("o-r1-3").await, f.order("done").await)
    })
    .await;
    let open = results.0.unwrap().unwrap();
    let expected = OrderView {
        id: "o-r1-3".into(),
        external_id: "r1".into(),
        vehicle: None,
        state: State::ToBeDispatched,
        complete: false,
        blocks: vec![
            ActionView {
                block_id: "a-1".into(),
                location: "AP1".into(),
                state: State::Finished,
                container_name: "c1".into(),
            },
            ActionView {
                block_id: "a-2".into(),
                location: "AP2".into(),
                state: State::ManualFinished,
                container_name: String::new(),
            },
            ActionView {
                block_id: "a-3".into(),
                location: "AP3".into(),
                state: State::Created,
                container_name: String::new(),
            },
        ],
        errors: vec!["robot blocked".into()],
        create_ms: 1_700_000_000_000,
        terminal_ms: None,
    };
    assert_eq!(open, expected);
    let done = results.1.unwrap().unwrap();
    assert_eq!(
        done.state,
        State::Running,
        "an unknown state reads as running"
    );
    assert_eq!(done.vehicle.as_deref(), Some("AMB-01"));
    assert!(done.complete);
    assert_eq!(done.terminal_ms, Some(1_700_000_060_000));
    assert_eq!(seen_[0], seen("GET", "/orderDetails/o-r1-3", Value::Null));
}

#[tokio::test]
async fn an_unknown_order_is_none() {
    let canned = |r: &Seen| match r.path.as_str() {
        "/orderDetails/missing" => answer(404, json!({"code": 50002, "msg": "not found"})),
        "/orderDetails/empty" => (200, String::new()),
        "/orderDetails/braces" => answer(200, json!({})),
        "/orderDetails/envelope" => answer(200, json!({"code": 50002, "msg": "empty"})),
        _ => answer(200, json!({"id": "odd id/1?", "state": "RUNNING"})),
    };
    let (results, seen_) = with_core(canned, |f| async move {
        let mut out = Vec::new();
        for id in ["missing", "empty", "braces", "envelope", "odd id/1?"] {
            out.push(f.order(id).await.map(|o| o.map(|o| o.id)));
        }
        out
    })
    .await;
    assert_eq!(&results[..4], &[Ok(None), Ok(None), Ok(None), Ok(None)]);
    assert_eq!(results[4], Ok(Some("odd id/1?".to_string())));
    assert_eq!(seen_[4].path, "/orderDetails/odd%20id%2F1%3F");
}

#[tokio::test]
async fn robots_are_read_from_the_status_report() {
    let report = json!({"report": [
        {"uuid": "AMB-01", "group": "g1", "labels": ["heavy"], "dispatchable": true,
         "connection_status": 1, "current_order": {"id": "o-1"},
         "errors": [{"code": 1, "desc": "low battery"}],
         "rbk_report": {"battery_level": 0.8, "charging": true, "current_station": "AP1",
                        "last_station": "AP0", "x": 1.5, "y": -2.0,
                        "DI": [{"id": 1, "status": true, "source": "normal"}, {"id": "2", "status": false}],
                        "DO": [{"id": 3, "status": 1}]}},
        {"uuid": "AMB-02", "connection_status": 0, "current_order": {"id": ""}, "rbk_report": null}
    ]});
    let (robots, seen_) = with_core(
        |_| answer(200, report.clone()),
        |f| async move { f.robots().await },
    )
    .await;
    let robots = robots.unwrap();
    let first = RobotView {
        id: "AMB-01".into(),
        group: "g1".into(),
        labels: strings(&["heavy"]),
        station: "AP1".into(),
        last_station: "AP0".into(),
        x: 1.5,
        y: -2.0,
        battery_level: 0.8,
        charging: true,
        dispatchable: true,
        online: true,
        order: Some("o-1".into()),
        errors: strings(&["low battery"]),
        di: vec![
            Io {
                id: 1,
                status: true,
            },
            Io {
                id: 2,
                status: false,
            },
        ],
        do_: vec![Io {
            id: 3,
            status: true,
        }],
    };
    assert_eq!(robots[0], first);
    assert_eq!(robots[1].id, "AMB-02");
    assert!(!robots[1].online && robots[1].order.is_none() && robots[1].di.is_empty());
    assert_eq!(seen_, vec![seen("GET", "/robotsStatus", Value::Null)]);
}

#[tokio::test]
async fn operator_calls_name_the_robot_and_need_code_zero() {
    let canned = |r: &Seen| match r.body["vehicles"][0].as_str() {
        Some("AMB-01") => ok(),
        _ => answer(200, json!({"code": 1, "msg": "no failed order"})),
    };
    let (results, seen_) = with_core(canned, |f| async move {
        (
            f.redo_failed("AMB-01").await,
            f.manual_finished("AMB-01").await,
            f.manual_finished("AMB-09").await,
        )
    })
    .await;
    assert_eq!((results.0.clone(), results.1.clone()), (Ok(()), Ok(())));
    assert_eq!(refused_code(results.2), 1);
    let expected = vec![
        seen("POST", "/redoFailedOrder", json!({"vehicles": ["AMB-01"]})),
        seen("POST", "/manualFinished", json!({"vehicles": ["AMB-01"]})),
        seen("POST", "/manualFinished", json!({"vehicles": ["AMB-09"]})),
    ];
    assert_eq!(seen_, expected);
}

#[tokio::test]
async fn set_output_sends_a_do_and_accepts_ok() {
    let canned = |r: &Seen| match r.body["id"].as_i64() {
        Some(1) => answer(200, json!({"msg": "ok"})),
        Some(2) => answer(200, json!({"code": 0})),
        _ => answer(200, json!({"code": 7, "msg": "robot offline"})),
    };
    let (results, seen_) = with_core(canned, |f| async move {
        (
            f.set_output("AMB-01", 1, true).await,
            f.set_output("AMB-01", 2, false).await,
            f.set_output("AMB-01", 3, true).await,
        )
    })
    .await;
    assert_eq!((results.0.clone(), results.1.clone()), (Ok(()), Ok(())));
    assert_eq!(refused_code(results.2), 7);
    let body = json!({"vehicle": "AMB-01", "id": 1, "type": "DO", "status": true});
    assert_eq!(seen_[0], seen("POST", "/setRobotIO", body));
}

#[tokio::test]
async fn terminate_for_stops_the_tasks_unfinished_orders_only() {
    let list = json!({"list": [
        {"id": "o-1", "externalId": "r1", "state": "RUNNING"},
        {"id": "o-2", "externalId": "r1", "state": "FINISHED"},
        {"id": "o-3", "externalId": "r2", "state": "RUNNING"},
        {"id": "o-4", "externalId": "r1", "state": "STOPPED"},
        {"id": "o-5", "externalId": "r1", "state": "TOBEDISPATCHED", "blocks": null}
    ]});
    let canned = move |r: &Seen| match r.method.as_str() {
        "GET" => answer(200, list.clone()),
        _ => (200, String::new()),
    };
    let (result, seen_) = with_core(canned, |f| async move { f.terminate_for("r1").await }).await;
    assert_eq!(result, Ok(()));
    let expected = vec![
        seen(
            "GET",
            "/orders?page=1&size=300&orderBy=createTime",
            Value::Null,
        ),
        seen("POST", "/terminate", json!({"id": "o-1"})),
        seen("POST", "/terminate", json!({"id": "o-5"})),
    ];
    assert_eq!(seen_, expected);
}

#[tokio::test]
async fn an_unreachable_core_is_unreachable_naming_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let f = RdsCoreFleet::new(config(url)).unwrap();
    let results = [
        ("/setOrder", f.set_order(OrderSpec::default()).await.err()),
        ("/addBlocks", f.add_action("o", action(), true).await.err()),
        ("/markComplete", f.mark_complete("o").await.err()),
        ("/orderDetails/o", f.order("o").await.err()),
        ("/terminate", f.terminate("o").await.err()),
        ("/orders?page=1", f.terminate_for("r").await.err()),
        ("/robotsStatus", f.robots().await.err()),
        ("/redoFailedOrder", f.redo_failed("v").await.err()),
        ("/manualFinished", f.manual_finished("v").await.err()),
        ("/setRobotIO", f.set_output("v", 1, true).await.err()),
    ];
    for (path, err) in results {
        let Some(FleetError::Unreachable(msg)) = err else {
            panic!("{path}: {err:?}");
        };
        assert!(
            msg.contains(path) && msg.contains("connection failed"),
            "{msg}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn changed_waits_one_poll_interval() {
    let mut c = config(RDSCORE_URL_DEFAULT.to_string());
    c.poll_ms = 750;
    let f = RdsCoreFleet::new(c).unwrap();
    let start = tokio::time::Instant::now();
    f.changed("o-1").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(750));
}

#[test]
fn new_checks_the_url_and_limits() {
    for url in [
        "https://core:8088",
        "core:8088",
        "http://core:8088/?x=1",
        "http://:1",
    ] {
        assert!(RdsCoreFleet::new(config(url.into())).is_err(), "{url}");
    }
    assert!(RdsCoreFleet::new(config("http://core:8088/rds/".into())).is_ok());
    let mut c = config(RDSCORE_URL_DEFAULT.into());
    c.poll_ms = 0;
    assert!(RdsCoreFleet::new(c).unwrap_err().contains("poll_ms"));
    let mut c = config(RDSCORE_URL_DEFAULT.into());
    c.limits.concurrent_max = 0;
    assert!(RdsCoreFleet::new(c).unwrap_err().contains("concurrent_max"));
}

#[test]
fn exists_means_exists_not_does_not_exist() {
    assert!(says_exists("order o-1 already exists"));
    assert!(says_exists("ID EXIST"));
    for msg in [
        "binTask does not exist",
        "location doesn't exist",
        "nonexistent",
        "",
    ] {
        assert!(!says_exists(msg), "{msg}");
    }
}

#[tokio::test]
async fn pausing_a_task_pauses_the_robots_of_its_open_orders_once() {
    let list = json!({"list": [
        {"id": "o-1", "externalId": "r1", "state": "RUNNING", "vehicle": "AMB-02"},
        {"id": "o-2", "externalId": "r1", "state": "FINISHED", "vehicle": "AMB-03"},
        {"id": "o-3", "externalId": "r2", "state": "RUNNING", "vehicle": "AMB-04"},
        {"id": "o-4", "externalId": "r1", "state": "WAITING", "vehicle": "AMB-02"},
        {"id": "o-5", "externalId": "r1", "state": "TOBEDISPATCHED", "vehicle": ""}
    ]});
    let page = list.clone();
    let canned = move |r: &Seen| match r.method.as_str() {
        "GET" => answer(200, page.clone()),
        _ => answer(200, json!({"code": 0, "msg": "ok"})),
    };
    let (result, seen_) = with_core(canned, |f| async move {
        f.set_paused_for("r1", true).await?;
        f.set_paused_for("r1", false).await?;
        f.set_paused_for("r9", true).await
    })
    .await;
    assert_eq!(result, Ok(()));
    let get = || {
        seen(
            "GET",
            "/orders?page=1&size=300&orderBy=createTime",
            Value::Null,
        )
    };
    let vehicles = json!({"vehicles": ["AMB-02"]});
    let expected = vec![
        get(),
        seen("POST", "/gotoSitePause", vehicles.clone()),
        get(),
        seen("POST", "/gotoSiteResume", vehicles),
        get(), // r9 has no open order: no call
    ];
    assert_eq!(seen_, expected);
    let refusing = move |r: &Seen| match r.method.as_str() {
        "GET" => answer(200, list.clone()),
        _ => answer(
            200,
            json!({"code": 60000, "msg": "robot is not controlled"}),
        ),
    };
    let (result, _) = with_core(
        refusing,
        |f| async move { f.set_paused_for("r1", true).await },
    )
    .await;
    assert_eq!(refused_code(result), 60000);
}
