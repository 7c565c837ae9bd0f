//! The persisted site wait queue: submit (answered, kept answers, waiting, dropped for runs no
//! longer running), serve passes (priority then arrival, fair keys, prefilters, pages),
//! leaving and ending, and the queue's bounds.

use super::tests::{inline, new_task, seed};
use super::*;
use crate::limits::{SITE_OP_BYTES_MAX, SITE_SERVE_PAGE, SITE_WAITERS_MAX};
use crate::sites::{IdleFilter, SiteOp, SiteReply};

const OP: SiteActor<'static> = SiteActor {
    who: "operator",
    why: "test",
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    (dir, s)
}

fn running(s: &Store, id: &str) {
    let t = new_task(id);
    s.write_blocking(move |tx| {
        tx.admit_task(&t, 100_000)?;
        tx.set_task_status(&t.id, TaskStatus::Running, 1000, None, 1)?;
        Ok(())
    })
    .unwrap();
}

fn site(s: &Store, id: &str, group: &str) {
    let site = Site::new(id, group);
    s.write_blocking(move |tx| tx.site_put(&site, OP, 1))
        .unwrap();
}

fn get_idle(group: &str, fair: bool) -> SiteOp {
    SiteOp::GetIdle {
        filter: IdleFilter {
            group_name: Some(group.into()),
            ..IdleFilter::default()
        },
        lock: true,
        fair,
    }
}

fn req(run: &str, token: u64, priority: i64, op: SiteOp) -> SiteRequest {
    SiteRequest {
        run_id: run.into(),
        fiber: 0,
        token,
        priority,
        block: "b1".into(),
        op,
    }
}

fn submit(s: &Store, r: SiteRequest) -> Submitted {
    s.write_blocking(move |tx| tx.site_request_submit(&r, 5))
        .unwrap()
}

fn serve(s: &Store, ids: &[&str]) -> Vec<(String, SiteReply)> {
    let changes = SiteChanges {
        ids: ids.iter().map(|i| i.to_string()).collect(),
        all: ids.is_empty(),
    };
    s.write_blocking(move |tx| tx.site_serve(&changes, 6))
        .unwrap()
        .into_iter()
        .map(|sv| (sv.run_id, sv.reply))
        .collect()
}

fn unlock(s: &Store, id: &str) -> SiteChanges {
    let id = id.to_string();
    s.write_blocking(move |tx| {
        tx.site_unlock(&id, None, OP, 7)?;
        Ok(tx.take_site_changes())
    })
    .unwrap()
}

fn found(id: &str) -> SiteReply {
    SiteReply::Found(id.into())
}

#[test]
fn an_answer_is_kept_until_taken_and_never_applied_twice() {
    let (_d, s) = store();
    running(&s, "r1");
    site(&s, "A-01", "A");
    site(&s, "A-02", "A");
    let first = submit(&s, req("r1", 1, 0, get_idle("A", false)));
    assert_eq!(first, Submitted::Answered(found("A-01")));
    // Asked again (a restart): the same answer, no second lock.
    let again = submit(&s, req("r1", 1, 0, get_idle("A", false)));
    assert_eq!(again, Submitted::Answered(found("A-01")));
    let a2 = s.read_blocking(|rx| rx.site_get("A-02")).unwrap().unwrap();
    assert!(!a2.locked);
    s.write_blocking(|tx| tx.site_requests_close("r1", &[1]))
        .unwrap();
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.rows("site_request"))).unwrap(),
        0
    );
    // Reads keep no row at all.
    let q = SiteOp::LockedBy { owner: "r1".into() };
    let ids = submit(&s, req("r1", 2, 0, q));
    assert_eq!(
        ids,
        Submitted::Answered(SiteReply::Ids(vec!["A-01".into()]))
    );
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.rows("site_request"))).unwrap(),
        0
    );
}

#[test]
fn requests_of_runs_no_longer_running_are_dropped() {
    let (_d, s) = store();
    site(&s, "A-01", "A");
    assert_eq!(
        submit(&s, req("nobody", 1, 0, get_idle("A", false))),
        Submitted::Dropped
    );
    running(&s, "r1");
    s.write_blocking(|tx| tx.set_task_status("r1", TaskStatus::Paused, 1002, None, 2))
        .unwrap();
    assert_eq!(
        submit(&s, req("r1", 1, 0, get_idle("A", false))),
        Submitted::Dropped
    );
    let a1 = s.read_blocking(|rx| rx.site_get("A-01")).unwrap().unwrap();
    assert!(!a1.locked, "nothing was done for it");
}

#[test]
fn waiters_are_served_by_priority_then_arrival_when_a_site_frees() {
    let (_d, s) = store();
    site(&s, "A-01", "A");
    site(&s, "B-01", "B");
    s.write_blocking(|tx| tx.site_lock("A-01", "operator", OP, 1).map(|_| ()))
        .unwrap();
    for (run, p) in [("r1", 1), ("r2", 5), ("r3", 1), ("r4", 5)] {
        running(&s, run);
        assert_eq!(
            submit(&s, req(run, 1, p, get_idle("A", false))),
            Submitted::Waiting
        );
    }
    let order: Vec<String> = s
        .read_blocking(|rx| rx.site_waiters(10))
        .unwrap()
        .into_iter()
        .map(|w| w.task_id)
        .collect();
    assert_eq!(order, ["r2", "r4", "r1", "r3"]);
    // A change of another group's site does not concern them.
    assert!(serve(&s, &["B-01"]).is_empty());
    let waiters = s.read_blocking(|rx| rx.site_waiters(10)).unwrap();
    assert!(waiters.iter().all(|w| w.attempts == 1), "{waiters:?}");
    let mut served = Vec::new();
    for _ in 0..4 {
        let changes = unlock(&s, "A-01");
        let ids: Vec<&str> = changes.ids.iter().map(String::as_str).collect();
        let got = serve(&s, &ids);
        assert_eq!(got.len(), 1, "one release serves one waiter: {got:?}");
        served.push(got[0].0.clone());
        assert_eq!(got[0].1, found("A-01"));
    }
    assert_eq!(served, ["r2", "r4", "r1", "r3"]);
    // The queue keeps no waiting rows; the answers wait to be taken.
    assert_eq!(s.read_blocking(|rx| rx.site_waiters_len()).unwrap(), 0);
}

#[test]
fn a_fair_head_blocks_its_key_and_a_priority_change_reorders() {
    let (_d, s) = store();
    site(&s, "A-01", "A");
    s.write_blocking(|tx| tx.site_lock("A-01", "operator", OP, 1).map(|_| ()))
        .unwrap();
    running(&s, "r1");
    running(&s, "r2");
    assert_eq!(
        submit(&s, req("r1", 1, 0, get_idle("A", true))),
        Submitted::Waiting
    );
    // A new fair request behind a waiter of its key waits, even though it is tried nothing.
    site(&s, "A-00", "A");
    assert_eq!(
        submit(&s, req("r2", 1, 0, get_idle("A", true))),
        Submitted::Waiting,
        "r1 is ahead of it in the fair queue"
    );
    s.write_blocking(|tx| tx.site_requests_priority("r2", 9))
        .unwrap();
    let got = serve(&s, &["A-00"]);
    assert_eq!(got, vec![("r2".to_string(), found("A-00"))]);
}

#[test]
fn leave_keeps_answers_and_end_removes_everything() {
    let (_d, s) = store();
    site(&s, "A-01", "A");
    running(&s, "r1");
    assert!(matches!(
        submit(&s, req("r1", 1, 0, get_idle("A", false))),
        Submitted::Answered(_)
    ));
    assert_eq!(
        submit(&s, req("r1", 2, 0, get_idle("A", false))),
        Submitted::Waiting
    );
    s.write_blocking(|tx| tx.site_requests_leave("r1")).unwrap();
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.rows("site_request"))).unwrap(),
        1
    );
    assert_eq!(
        submit(&s, req("r1", 1, 0, get_idle("A", false))),
        Submitted::Answered(found("A-01")),
        "resume finds the kept answer"
    );
    s.write_blocking(|tx| tx.site_requests_end("r1")).unwrap();
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.rows("site_request"))).unwrap(),
        0
    );
}

#[test]
fn a_pass_over_every_waiter_reads_them_in_pages() {
    let (_d, s) = store();
    site(&s, "Z-01", "Z");
    running(&s, "r0");
    s.write_blocking(|tx| tx.site_lock("Z-01", "operator", OP, 1).map(|_| ()))
        .unwrap();
    let n = SITE_SERVE_PAGE * 2 + 5;
    s.write_blocking(move |tx| {
        for i in 0..n {
            let r = req("r0", i as u64 + 1, 0, get_idle(&format!("G{i}"), false));
            assert_eq!(tx.site_request_submit(&r, 1)?, Submitted::Waiting);
        }
        Ok(())
    })
    .unwrap();
    // The last waiter's group gets a site; a full pass (changes unknown) finds it.
    site(&s, "S-1", &format!("G{}", n - 1));
    let got = serve(&s, &[]);
    assert_eq!(got, vec![("r0".to_string(), found("S-1"))]);
    let waiters = s.read_blocking(|rx| rx.site_waiters(10)).unwrap();
    assert_eq!(waiters[0].attempts, 2, "tried at arrival and in the pass");
}

#[test]
fn the_queue_and_its_ops_are_bounded() {
    let (_d, s) = store();
    running(&s, "r1");
    // Fill the queue to SITE_WAITERS_MAX with one statement.
    s.write_blocking(|tx| {
        tx.conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO site_request (run_id, fiber, token, priority, block, op, created_ms) \
             SELECT 'other', 0, i, 0, 'b', '{\"op\":\"lockedBy\",\"owner\":\"x\"}', 1 FROM n",
            [SITE_WAITERS_MAX as i64],
        )?;
        Ok(())
    })
    .unwrap();
    let r = submit(&s, req("r1", 1, 0, get_idle("A", false)));
    match r {
        Submitted::Answered(SiteReply::Failed(m)) => assert!(m.contains("SITE_WAITERS_MAX"), "{m}"),
        other => panic!("{other:?}"),
    }
    let long = SiteOp::Crowded {
        groups: vec!["g".repeat(200); 30],
        filled: false,
        content: None,
        lock: false,
        wait: true,
        attempts_max: 0,
    };
    assert!(serde_json::to_string(&long).unwrap().len() > SITE_OP_BYTES_MAX);
    match submit(&s, req("r1", 2, 0, long)) {
        Submitted::Answered(SiteReply::Failed(m)) => {
            assert!(m.contains("SITE_OP_BYTES_MAX"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crowded_search_gives_up_after_its_attempts() {
    let (_d, s) = store();
    running(&s, "r1");
    let op = SiteOp::Crowded {
        groups: vec!["L".into()],
        filled: true,
        content: None,
        lock: true,
        wait: true,
        attempts_max: 2,
    };
    let mut lane = Site::new("L_1", "L");
    lane.site_type = 1;
    s.write_blocking(move |tx| tx.site_put(&lane, OP, 1))
        .unwrap();
    assert_eq!(submit(&s, req("r1", 1, 0, op)), Submitted::Waiting);
    let got = serve(&s, &["L_1"]);
    assert_eq!(got, vec![("r1".to_string(), found(""))]);
}
