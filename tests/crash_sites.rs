//! A `vwed serve` child is killed with SIGKILL while tasks wait for storage sites and one holds
//! a site it was given, then restarted on the same data dir: the wait queue has the same
//! waiters in the same order, the served task still holds its site (once), and when the sites
//! free up every task finishes with no site ever locked twice.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use support::{json_at, spawn_listening, take_site_def, until};

/// Starts `vwed serve` on a kernel-chosen loopback port; the address it logged.
fn serve(dir: &Path) -> (Child, SocketAddr) {
    let data = dir.to_str().unwrap();
    let args = ["serve", "--listen", "127.0.0.1:0", "--data", data];
    spawn_listening(&args, "listening on http://")
}

fn waiters(addr: SocketAddr) -> Vec<(i64, String)> {
    let (code, w) = json_at(addr, "GET", "/api/sites/waiters?limit=1000", None);
    assert_eq!(code, 200, "{w}");
    w["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["taskId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn site(addr: SocketAddr, id: &str) -> Value {
    json_at(addr, "GET", &format!("/api/sites/{id}"), None).1
}

fn unlock(addr: SocketAddr, id: &str) {
    let body = json!({"lockedBy": "operator"});
    let (code, out) = json_at(addr, "POST", &format!("/api/sites/{id}/unlock"), Some(body));
    assert_eq!(code, 200, "{out}");
}

#[test]
fn killed_while_tasks_wait_for_sites_then_restarted() {
    const TASKS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path());
    let get_idle = [("groupName", "W"), ("lock", "true"), ("ifFair", "true")];
    let def = take_site_def("take", &get_idle, "DelayBp");
    let (code, out) = json_at(addr, "POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    for id in ["W-1", "W-2", "W-3"] {
        let (code, out) = json_at(
            addr,
            "POST",
            "/api/sites",
            Some(json!({"siteId": id,
            "groupName": "W"})),
        );
        assert_eq!(code, 201, "{out}");
        let lock = json!({"lockedBy": "operator"});
        let (code, out) = json_at(addr, "POST", &format!("/api/sites/{id}/lock"), Some(lock));
        assert_eq!(code, 200, "{out}");
    }
    for i in 0..TASKS {
        // t02 (first of the highest priority) is served first and holds its site a minute.
        let ms = if i == 2 { 60_000 } else { 0 };
        let body = json!({"defLabel": "take", "taskRecordId": format!("t{i:02}"),
            "priority": i % 3, "inputParams": {"ms": ms}});
        let (code, out) = json_at(addr, "POST", "/api/tasks", Some(body));
        assert_eq!(code, 201, "{out}");
    }
    until("every task waits", || waiters(addr).len() == TASKS);
    // One site frees: the head of the queue (highest priority, first to arrive) takes it and
    // sits in its 60 s delay holding it.
    let head = waiters(addr)[0].1.clone();
    assert_eq!(head, "t02");
    unlock(addr, "W-1");
    until("the head holds W-1", || {
        site(addr, "W-1")["lockedBy"] == head
    });
    until("the head left the queue", || {
        waiters(addr).len() == TASKS - 1
    });
    let before = waiters(addr);

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (mut child, addr) = serve(dir.path());
    until("the waiters are back", || waiters(addr).len() == TASKS - 1);
    assert_eq!(waiters(addr), before, "same waiters, same order");
    assert_eq!(site(addr, "W-1")["lockedBy"], head);
    // Startup recovery puts the runs that were running back in the queue: the head is queued
    // for a moment, then running again in its delay, still holding W-1.
    until("the head runs again", || {
        let (_, task) = json_at(addr, "GET", &format!("/api/tasks/{head}"), None);
        task["status"] == "running"
    });
    assert_eq!(site(addr, "W-1")["lockedBy"], head);

    // Let everything through: the operator frees the other two sites, the head is stopped
    // (its site released by the default policy), the rest finish at once.
    let (code, out) = json_at(addr, "POST", &format!("/api/tasks/{head}/stop"), None);
    assert_eq!(code, 200, "{out}");
    unlock(addr, "W-2");
    unlock(addr, "W-3");
    until("every task ends", || {
        (0..TASKS).all(|i| {
            let (_, t) = json_at(addr, "GET", &format!("/api/tasks/t{i:02}"), None);
            t["status"] == "finished" || t["status"] == "stopped"
        })
    });
    // The change log: per site, locks and unlocks alternate; every task locked once.
    let mut holders: HashMap<String, String> = HashMap::new();
    let mut locks: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::new();
    for id in ["W-1", "W-2", "W-3"] {
        let (_, log) = json_at(
            addr,
            "GET",
            &format!("/api/sites/{id}/log?limit=1000"),
            None,
        );
        for e in log["items"].as_array().unwrap() {
            entries.push((e["id"].as_i64().unwrap(), id.to_string(), e.clone()));
        }
    }
    entries.sort_by_key(|(id, _, _)| *id);
    for (_, site, e) in entries {
        let who = e["who"].as_str().unwrap().to_string();
        match e["action"].as_str().unwrap() {
            "lock" => {
                assert!(!holders.contains_key(&site), "{site} locked twice: {e}");
                holders.insert(site, who.clone());
                *locks.entry(who).or_default() += 1;
            }
            "unlock" => {
                assert!(
                    holders.remove(&site).is_some(),
                    "{site} unlocked while free: {e}"
                );
            }
            _ => {}
        }
    }
    for i in 0..TASKS {
        assert_eq!(
            locks.get(&format!("t{i:02}")),
            Some(&1),
            "t{i:02}: {locks:?}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
