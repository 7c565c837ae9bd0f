//! Site blocks through the scheduler on tokio's paused clock: allocation and release, the
//! persisted wait queue (parking, wake-ups on release/fill/enable, priority-then-arrival order,
//! fair keys), stop/pause/retry of waiting runs, restarts with waiters, and contention of 1,000
//! runs for 10 sites with no store work while they wait.

use super::tests::{b, env, expr, settle, simple, Env};
use super::*;
use crate::store::{Site, SiteActor, SiteWaiter};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const OPERATOR: SiteActor<'static> = SiteActor {
    who: "operator",
    why: "test",
};

impl Env {
    async fn sites(&self, ids: &[&str], group: &str, filled: bool) {
        let sites: Vec<Site> = ids
            .iter()
            .map(|id| {
                let mut s = Site::new(id, group);
                s.filled = filled;
                s.site_type = 1;
                s
            })
            .collect();
        self.site_write(move |tx, now| {
            for s in &sites {
                tx.site_put(s, OPERATOR, now)?;
            }
            Ok(())
        })
        .await;
    }

    /// A site change from outside a run, as the API makes it (written, then announced).
    async fn site_write<F>(&self, f: F)
    where
        F: FnOnce(&mut crate::store::Tx<'_>, i64) -> Result<(), crate::store::StoreError>
            + Send
            + 'static,
    {
        let now = self.sched.now_ms();
        let changes = self
            .sched
            .store()
            .write(move |tx| {
                f(tx, now)?;
                Ok(tx.take_site_changes())
            })
            .await
            .unwrap();
        self.sched.sites_changed(changes).await;
    }

    async fn site(&self, id: &str) -> Site {
        let id = id.to_string();
        self.sched
            .store()
            .read(move |rx| rx.site_get(&id))
            .await
            .unwrap()
            .unwrap()
    }

    async fn waiters(&self) -> Vec<SiteWaiter> {
        self.sched
            .store()
            .read(|rx| rx.site_waiters(100_000))
            .await
            .unwrap()
    }

    /// Waits (on the paused clock) until `n` site waiters are queued.
    async fn until_waiters(&self, n: usize) {
        for _ in 0..10_000 {
            if self.waiters().await.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never {n} waiters: {:?}", self.waiters().await.len());
    }

    /// Who took each lock that was not the operator's, in order.
    async fn run_locks(&self) -> Vec<String> {
        self.lock_log()
            .await
            .into_iter()
            .filter(|(_, action, who)| action == "lock" && who != "operator")
            .map(|(_, _, who)| who)
            .collect()
    }

    /// Lock and unlock actions of the site change log, oldest first, as (site, action, who).
    async fn lock_log(&self) -> Vec<(String, String, String)> {
        let rows = self
            .sched
            .store()
            .read(|rx| rx.site_log_entries(None, 100_000))
            .await
            .unwrap();
        rows.into_iter()
            .rev()
            .filter(|e| e.action == "lock" || e.action == "unlock")
            .map(|e| (e.site_id, e.action, e.who))
            .collect()
    }
}

fn get_idle(id: i64, params: Value) -> Value {
    b(id, "GetIdleSiteBp", params)
}

/// Take a filled site of group A (locked), empty it, unlock it.
fn take_and_empty() -> Value {
    json!([
        get_idle(
            1,
            json!({"groupName": simple("A"), "filled": simple("true"), "lock": simple("true")})
        ),
        b(
            2,
            "SetSiteEmptyBp",
            json!({"siteId": expr("blocks.b1.siteId")})
        ),
        b(
            3,
            "SetSiteUnlockedBp",
            json!({"siteId": expr("blocks.b1.siteId")})
        ),
    ])
}

#[tokio::test(start_paused = true)]
async fn a_flow_takes_empties_and_releases_a_site() {
    let e = env(Config::default()).await;
    e.sites(&["A-02", "A-01"], "A", true).await;
    e.define("d", take_and_empty(), json!({})).await;
    let mut live = e.sched.subscribe_outbox();
    let id = e.submit("d", 1).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    // The block's site changes reach live /api/events clients.
    let mut actions = Vec::new();
    while let Ok(ev) = live.try_recv() {
        if ev.kind == "site" {
            let v: Value = serde_json::from_str(&ev.payload).unwrap();
            actions.push((v["action"].as_str().unwrap().to_string(), v["who"].clone()));
        }
    }
    assert_eq!(
        actions,
        [("lock", &id), ("empty", &id), ("unlock", &id)].map(|(a, w)| (a.to_string(), json!(w)))
    );
    // The first site by id, emptied and unlocked.
    let a1 = e.site("A-01").await;
    assert!(!a1.filled && !a1.locked && a1.content.is_empty(), "{a1:?}");
    assert!(e.site("A-02").await.filled);
    let log = e.lock_log().await;
    assert_eq!(
        log,
        vec![
            ("A-01".into(), "lock".into(), id.clone()),
            ("A-01".into(), "unlock".into(), id.clone())
        ]
    );
    assert!(e.waiters().await.is_empty());
    let blocks = e.blocks(&id).await;
    assert!(blocks.iter().all(|(_, s)| *s == 1003), "{blocks:?}");
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_parked_and_woken_by_a_fill() {
    let e = env(Config::default()).await;
    e.sites(&["A-01"], "A", false).await;
    e.define("d", take_and_empty(), json!({})).await;
    let id = e.submit("d", 1).await;
    e.until_waiters(1).await;
    settle().await;
    assert_eq!(e.status(&id).await, TaskStatus::Running);
    assert_eq!(
        e.sched.stats().runs_loaded,
        0,
        "a site waiter holds no slot"
    );
    // A change that does not concern it (another group) leaves it waiting.
    e.sites(&["B-01"], "B", true).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.waiters().await.len(), 1);
    assert_eq!(
        e.waiters().await[0].attempts,
        1,
        "B-01 was not tried for it"
    );
    e.site_write(|tx, now| {
        tx.site_set_filled("A-01", true, Some("pallet"), OPERATOR, now)
            .map(|_| ())
    })
    .await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert!(!e.site("A-01").await.filled);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_by_priority_then_arrival() {
    let e = env(Config::default()).await;
    e.sites(&["A-01"], "A", true).await;
    e.site_write(|tx, now| tx.site_lock("A-01", "operator", OPERATOR, now).map(|_| ()))
        .await;
    let flow = json!([
        get_idle(
            1,
            json!({"groupName": simple("A"), "lock": simple("true"),
            "filled": simple("true"), "ifFair": simple("true")})
        ),
        b(2, "DelayBp", json!({"timeMillis": simple("100")})),
        b(
            3,
            "SetSiteUnlockedBp",
            json!({"siteId": expr("blocks.b1.siteId")})
        ),
    ]);
    e.define("d", flow, json!({})).await;
    let mut ids = Vec::new();
    for (i, p) in [1, 5, 1, 9, 5, 1].iter().enumerate() {
        let id = e.submit("d", *p).await;
        e.until_waiters(i + 1).await;
        ids.push((id, *p));
    }
    e.site_write(|tx, now| {
        tx.site_unlock("A-01", Some("operator"), OPERATOR, now)
            .map(|_| ())
    })
    .await;
    for (id, _) in &ids {
        e.sched.wait_terminal(id).await.unwrap();
    }
    let order = e.run_locks().await;
    let mut expected = ids.clone();
    expected.sort_by_key(|(_, p)| -p); // stable: arrival order within a priority
    let expected: Vec<String> = expected.into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, expected);
}

#[tokio::test(start_paused = true)]
async fn stop_and_pause_leave_the_queue_and_resume_rejoins_it() {
    let e = env(Config::default()).await;
    e.sites(&["A-01"], "A", false).await;
    e.define("d", take_and_empty(), json!({})).await;
    let stopped = e.submit("d", 1).await;
    let paused = e.submit("d", 1).await;
    e.until_waiters(2).await;
    let st = e.sched.control(&stopped, Control::Stop).await.unwrap();
    assert_eq!(st, TaskStatus::Stopped);
    let st = e.sched.control(&paused, Control::Pause).await.unwrap();
    assert_eq!(st, TaskStatus::Paused);
    assert!(e.waiters().await.is_empty(), "both left the queue at once");
    // A fill while it is paused does not serve it.
    e.site_write(|tx, now| {
        tx.site_set_filled("A-01", true, None, OPERATOR, now)
            .map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!e.site("A-01").await.locked);
    e.sched.control(&paused, Control::Resume).await.unwrap();
    let rec = e.sched.wait_terminal(&paused).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let blocks = e.blocks(&stopped).await;
    assert!(blocks.contains(&("b1".into(), 1001)), "{blocks:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_of_an_interrupted_run_queues_its_waiter_again() {
    let e = env(Config::default()).await;
    let flow = json!([{
        "id": 1, "name": "b1", "blockType": "ParallelFlowBp", "inputParams": {},
        "children": {"default": [
            get_idle(2, json!({"siteId": simple("S-1"), "lock": simple("true")})),
            b(3, "SetSiteFilledBp", json!({"siteId": simple("S-2")})),
        ]}
    }]);
    e.define("d", flow, json!({})).await;
    let id = e.submit("d", 1).await;
    let rec = e
        .sched
        .wait_for(&id, |s| s == TaskStatus::Interrupted)
        .await
        .unwrap();
    assert!(
        rec.ended_reason
            .as_deref()
            .unwrap_or("")
            .contains("siteNot"),
        "{rec:?}"
    );
    assert!(
        e.waiters().await.is_empty(),
        "an interrupted run leaves the queue"
    );
    e.sites(&["S-2"], "S", false).await;
    e.sched.control(&id, Control::Retry).await.unwrap();
    e.until_waiters(1).await;
    e.sites(&["S-1"], "S", false).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(e.site("S-1").await.locked_by, id, "kept on a normal end");
    assert!(e.site("S-2").await.filled);
}

#[tokio::test(start_paused = true)]
async fn waiters_survive_a_restart_in_the_same_order() {
    let e = env(Config::default()).await;
    e.sites(&["A-01"], "A", false).await;
    e.define("d", take_and_empty(), json!({})).await;
    let mut ids = Vec::new();
    for p in [1, 3, 2] {
        ids.push(e.submit("d", p).await);
    }
    e.until_waiters(3).await;
    let before: Vec<(i64, String)> = e
        .waiters()
        .await
        .into_iter()
        .map(|w| (w.id, w.task_id))
        .collect();
    let e = e.restart(Config::default()).await;
    settle().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: Vec<(i64, String)> = e
        .waiters()
        .await
        .into_iter()
        .map(|w| (w.id, w.task_id))
        .collect();
    assert_eq!(before, after);
    for _ in 0..3 {
        e.site_write(|tx, now| {
            tx.site_set_filled("A-01", true, None, OPERATOR, now)
                .map(|_| ())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for id in &ids {
        let rec = e.sched.wait_terminal(id).await.unwrap();
        assert_eq!(rec.status, TaskStatus::Finished);
    }
    let order: Vec<String> = e
        .lock_log()
        .await
        .into_iter()
        .filter(|(_, a, _)| a == "lock")
        .map(|(_, _, who)| who)
        .collect();
    assert_eq!(order, vec![ids[1].clone(), ids[2].clone(), ids[0].clone()]);
}

#[tokio::test(start_paused = true)]
async fn set_site_locked_with_retry_times_gives_up_after_its_attempts() {
    let e = env(Config::default()).await;
    e.sites(&["S-1"], "S", false).await;
    e.site_write(|tx, now| tx.site_lock("S-1", "operator", OPERATOR, now).map(|_| ()))
        .await;
    let flow = json!([b(
        1,
        "SetSiteLockedBp",
        json!({"siteId": simple("S-1"),
        "retryTimes": simple("3")})
    )]);
    e.define("d", flow, json!({})).await;
    let t0 = tokio::time::Instant::now();
    let id = e.submit("d", 1).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(2 * crate::blocks::LOCK_RETRY_MS as u64)
    );
    let logs = e.logs(&id).await;
    assert_eq!(logs.len(), 3, "{logs:?}");
    let blocks = e.record(&id).await;
    assert!(blocks.status == TaskStatus::Finished);
    let id2 = id.clone();
    let outputs = e
        .sched
        .store()
        .read(move |rx| rx.block_records(&id2, 10))
        .await
        .unwrap();
    let b1 = outputs.iter().find(|r| r.block_name == "b1").unwrap();
    assert_eq!(b1.outputs.as_deref(), Some("{\"success\":false}"));
}

#[tokio::test(start_paused = true)]
async fn a_thousand_fair_runs_share_ten_sites() {
    contention(true).await;
}

#[tokio::test(start_paused = true)]
async fn a_thousand_runs_share_ten_sites() {
    contention(false).await;
}

/// 1,000 runs compete for 10 sites through `GetIdleSiteBp(lock)` → `DelayBp` →
/// `SetSiteUnlockedBp` (with `ifFair` or without). While every site is held by an operator,
/// all 1,000 wait and the store does no work at all; once released, every run finishes, no
/// site is ever locked twice, and each release serves the next waiter of the queue.
async fn contention(fair: bool) {
    const RUNS: usize = 1_000;
    let e = env(Config::default()).await;
    let ids: Vec<String> = (0..10).map(|i| format!("G-{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    e.sites(&refs, "G", false).await;
    let held = ids.clone();
    e.site_write(move |tx, now| {
        for id in &held {
            tx.site_lock(id, "operator", OPERATOR, now)?;
        }
        Ok(())
    })
    .await;
    let flow = json!([
        get_idle(
            1,
            json!({"groupName": simple("G"), "lock": simple("true"),
            "ifFair": simple(&fair.to_string())})
        ),
        b(2, "DelayBp", json!({"timeMillis": simple("50")})),
        b(
            3,
            "SetSiteUnlockedBp",
            json!({"siteId": expr("blocks.b1.siteId")})
        ),
    ]);
    e.define("d", flow, json!({})).await;
    let mut runs = Vec::new();
    for i in 0..RUNS {
        runs.push(e.submit("d", (i % 3) as i64).await);
    }
    e.until_waiters(RUNS).await;
    settle().await;
    assert_eq!(e.sched.stats().runs_loaded, 0);
    let queue: Vec<String> = e.waiters().await.into_iter().map(|w| w.task_id).collect();
    let before = e.sched.store().stats();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let after = e.sched.store().stats();
    assert_eq!(
        (after.jobs, after.reads),
        (before.jobs, before.reads),
        "no store work while 1,000 runs wait 10 minutes"
    );
    let released = ids.clone();
    let wall = std::time::Instant::now();
    e.site_write(move |tx, now| {
        for id in &released {
            tx.site_unlock(id, Some("operator"), OPERATOR, now)?;
        }
        Ok(())
    })
    .await;
    for id in &runs {
        let rec = e.sched.wait_terminal(id).await.unwrap();
        assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    }
    let done = e.sched.store().stats();
    let wall = wall.elapsed();
    // Never locked twice: per site, locks and unlocks alternate, each unlock by the holder.
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut locks = 0;
    for (site, action, who) in e.lock_log().await {
        if action == "lock" {
            assert!(!holder.contains_key(&site), "{site} locked twice");
            holder.insert(site, who);
            locks += 1;
        } else {
            assert_eq!(holder.remove(&site).as_deref(), Some(who.as_str()));
        }
    }
    assert_eq!(locks, RUNS + 10);
    // Served exactly in queue order: priority, then arrival.
    let served = e.run_locks().await;
    assert_eq!(served, queue);
    let priorities: Vec<i64> = {
        let mut p = Vec::new();
        for id in &queue {
            p.push(e.record(id).await.priority);
        }
        p
    };
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "{priorities:?}"
    );
    assert!(e.waiters().await.is_empty());
    let jobs = done.jobs - after.jobs;
    let reads = done.reads - after.reads;
    println!(
        "contention (fair {fair}): {RUNS} runs, 10 sites: {jobs} store write jobs ({:.1} per run), \
         {reads} reads after the release; {} ms of processing (paused clock, inline store)",
        jobs as f64 / RUNS as f64,
        wall.as_millis()
    );
    assert!(
        jobs < 12 * RUNS as u64,
        "store jobs grow with runs, not runs × waiters: {jobs}"
    );
}

/// A change committed just before a crash, whose serve pass never ran, is served at the next
/// start (every waiter is checked once), even though recovery has put the run back in the
/// queue at the same time.
#[tokio::test(start_paused = true)]
async fn a_change_not_served_before_a_restart_is_served_after_it() {
    let e = env(Config::default()).await;
    e.sites(&["A-01"], "A", false).await;
    e.define("d", take_and_empty(), json!({})).await;
    let id = e.submit("d", 1).await;
    e.until_waiters(1).await;
    // Filled behind the scheduler's back: nobody is told.
    e.sched
        .store()
        .write(|tx| {
            tx.site_set_filled("A-01", true, None, OPERATOR, 9)
                .map(|_| ())
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        e.waiters().await.len(),
        1,
        "not served without a change notice"
    );
    let e = e.restart(Config::default()).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert!(e.waiters().await.is_empty());
}
