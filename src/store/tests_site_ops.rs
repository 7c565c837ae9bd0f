//! Site op tests: every `SiteOp` executed by `Tx::site_exec` against a real store, with the
//! waits, refusals and failures each one can answer, and the change log they leave.

use super::tests::inline;
use super::*;
use crate::limits;
use crate::sites::{IdleFilter, SiteOp, SiteReply};

const API: SiteActor<'static> = SiteActor {
    who: "api",
    why: "test",
};

fn put(s: &Store, site: Site) {
    s.write_blocking(move |tx| tx.site_put(&site, API, 1))
        .unwrap();
}

/// A site of `group`; `physical` sets type 1.
fn site(id: &str, group: &str, physical: bool) -> Site {
    Site {
        site_type: i64::from(physical),
        ..Site::new(id, group)
    }
}

fn get(s: &Store, id: &str) -> Site {
    let id = id.to_string();
    s.read_blocking(move |rx| rx.site_get(&id))
        .unwrap()
        .unwrap()
}

/// Runs `op` for run `who`; a wait (None) is only ever answered to an op that may wait.
fn exec(s: &Store, op: SiteOp, who: &'static str) -> Option<SiteReply> {
    let by = SiteActor { who, why: "block" };
    let reply = s
        .write_blocking({
            let op = op.clone();
            move |tx| tx.site_exec(&op, by, 10)
        })
        .unwrap();
    assert!(reply.is_some() || op.may_wait(), "{op:?} waited");
    reply
}

fn found(id: &str) -> Option<SiteReply> {
    Some(SiteReply::Found(id.into()))
}

fn failed(text: &str) -> Option<SiteReply> {
    Some(SiteReply::Failed(text.into()))
}

/// The change log of `id`, oldest first, as (action, who).
fn log(s: &Store, id: &str) -> Vec<(String, String)> {
    let id = id.to_string();
    s.read_blocking(move |rx| rx.site_log_entries(Some(&id), 1000))
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.action, e.who))
        .collect()
}

fn lock(s: &Store, id: &'static str, owner: &'static str) {
    let by = SiteActor {
        who: owner,
        why: "t",
    };
    s.write_blocking(move |tx| tx.site_lock(id, owner, by, 2))
        .unwrap();
}

fn fill(s: &Store, id: &'static str, content: &'static str) {
    s.write_blocking(move |tx| tx.site_set_filled(id, true, Some(content), API, 2))
        .unwrap();
}

fn get_idle(filter: IdleFilter, lock: bool) -> SiteOp {
    SiteOp::GetIdle {
        filter,
        lock,
        fair: false,
    }
}

fn group(name: &str) -> IdleFilter {
    IdleFilter {
        group_name: Some(name.into()),
        ..IdleFilter::default()
    }
}

#[test]
fn get_idle_finds_the_first_match_in_order_or_waits() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", false));
    put(&s, site("A-02", "A", true));
    put(&s, site("A-03", "A", false));
    put(&s, site("Ä-00", "A", false));
    assert_eq!(exec(&s, get_idle(group("A"), false), "r1"), found("A-01"));
    let desc = IdleFilter {
        order_desc: true,
        ..group("A")
    };
    // Code point order: 'Ä' (U+00C4) sorts after every ASCII letter.
    assert_eq!(exec(&s, get_idle(desc, false), "r1"), found("Ä-00"));
    let physical = IdleFilter {
        physical: Some(true),
        ..group("A")
    };
    assert_eq!(exec(&s, get_idle(physical, false), "r1"), found("A-02"));
    let logical_filled = IdleFilter {
        physical: Some(false),
        filled: Some(true),
        ..group("A")
    };
    assert_eq!(
        exec(&s, get_idle(logical_filled.clone(), false), "r1"),
        None
    );
    fill(&s, "A-03", "box");
    assert_eq!(
        exec(&s, get_idle(logical_filled, false), "r1"),
        found("A-03")
    );
    assert_eq!(exec(&s, get_idle(group("B"), false), "r1"), None);
    assert!(!get(&s, "A-01").locked, "no lock asked");
}

#[test]
fn get_idle_locking_skips_unlockable_sites() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(
        &s,
        Site {
            disabled: true,
            ..site("A-01", "A", false)
        },
    );
    put(
        &s,
        Site {
            sync_failed: true,
            ..site("A-02", "A", false)
        },
    );
    put(&s, site("A-03", "A", false));
    put(&s, site("A-04", "A", false));
    assert_eq!(exec(&s, get_idle(group("A"), true), "r1"), found("A-03"));
    assert_eq!(get(&s, "A-03").locked_by, "r1");
    // A named site the run already holds counts as acquired (§8 Q10)…
    let named = IdleFilter {
        site_id: Some("A-03".into()),
        ..IdleFilter::default()
    };
    assert_eq!(exec(&s, get_idle(named.clone(), true), "r1"), found("A-03"));
    assert_eq!(
        exec(&s, get_idle(named, true), "r2"),
        None,
        "another run waits"
    );
    // …but a group search by the same run takes a second site (a run may hold two of one
    // group; restarts get their kept answer from the wait queue instead).
    assert_eq!(exec(&s, get_idle(group("A"), true), "r1"), found("A-04"));
    assert_eq!(get(&s, "A-04").locked_by, "r1");
    assert_eq!(exec(&s, get_idle(group("A"), true), "r3"), None, "waits");
    // Without a lock, disabled sites are found.
    assert_eq!(exec(&s, get_idle(group("A"), false), "r3"), found("A-01"));
    let locked = IdleFilter {
        locked: true,
        ..group("A")
    };
    assert_eq!(exec(&s, get_idle(locked, false), "r3"), found("A-03"));
    assert_eq!(
        log(&s, "A-03"),
        [
            ("create".to_string(), "api".to_string()),
            ("lock".into(), "r1".into())
        ]
    );
}

#[test]
fn query_returns_the_site_as_a_map_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", true));
    lock(&s, "A-01", "r9");
    let query = |filter: IdleFilter| exec(&s, SiteOp::Query { filter }, "r1");
    assert_eq!(query(group("A")), Some(SiteReply::Site(None)), "locked");
    let locked = IdleFilter {
        locked: true,
        ..group("A")
    };
    let Some(SiteReply::Site(Some(map))) = query(locked) else {
        panic!("a locked site is found when asked for")
    };
    assert_eq!(map["siteId"], "A-01");
    assert_eq!(map["type"], 1);
    assert_eq!(map["lockedBy"], "r9");
    assert_eq!(get(&s, "A-01").locked_by, "r9", "a query never locks");
}

fn crowded(groups: &[&str], filled: bool, content: Option<&str>, wait: bool) -> SiteOp {
    SiteOp::Crowded {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        filled,
        content: content.map(str::to_string),
        lock: false,
        wait,
        attempts_max: 0,
    }
}

/// A 3-deep lane `L_1` (mouth) .. `L_3` of group L.
fn lane(s: &Store) {
    for id in ["L_1", "L_2", "L_3"] {
        put(s, site(id, "L", true));
    }
}

#[test]
fn crowded_put_takes_the_deepest_reachable_free_position() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    lane(&s);
    let put_op = crowded(&["L"], false, None, true);
    assert_eq!(exec(&s, put_op.clone(), "r1"), found("L_3"));
    fill(&s, "L_3", "box");
    assert_eq!(exec(&s, put_op.clone(), "r1"), found("L_2"));
    // The next position foreign-locked: the lane is blocked.
    lock(&s, "L_2", "r9");
    assert_eq!(exec(&s, put_op.clone(), "r1"), None, "waits");
    let no_wait = crowded(&["L"], false, None, false);
    assert_eq!(exec(&s, no_wait.clone(), "r1"), found(""));
    // Locked by the asking run itself: passable.
    assert_eq!(exec(&s, put_op.clone(), "r9"), found("L_2"));
    // The mouth foreign-locked or filled blocks the lane too.
    s.write_blocking(|tx| tx.site_unlock("L_2", None, API, 3))
        .unwrap();
    lock(&s, "L_1", "r9");
    assert_eq!(exec(&s, no_wait.clone(), "r1"), found(""));
    // A second group, in the given order, is tried after a blocked one.
    put(&s, site("M_1", "M", true));
    let two = crowded(&["L", "M"], false, None, false);
    assert_eq!(exec(&s, two, "r1"), found("M_1"));
    // Locking takes the site for the run, logged.
    let locking = SiteOp::Crowded {
        groups: vec!["M".into()],
        filled: false,
        content: None,
        lock: true,
        wait: true,
        attempts_max: 0,
    };
    assert_eq!(exec(&s, locking.clone(), "r1"), found("M_1"));
    assert_eq!(get(&s, "M_1").locked_by, "r1");
    assert_eq!(exec(&s, locking, "r2"), None, "M_1 is r1's now");
    assert_eq!(
        log(&s, "M_1"),
        [
            ("create".to_string(), "api".to_string()),
            ("lock".into(), "r1".into())
        ]
    );
}

#[test]
fn crowded_put_stops_before_a_disabled_position() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    lane(&s);
    s.write_blocking(|tx| tx.site_set_flags("L_3", Some(true), None, API, 3))
        .unwrap();
    assert_eq!(
        exec(&s, crowded(&["L"], false, None, false), "r1"),
        found("L_2")
    );
}

#[test]
fn crowded_pick_takes_the_first_filled_position_from_the_mouth() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    lane(&s);
    let pick = crowded(&["L"], true, None, true);
    assert_eq!(exec(&s, pick.clone(), "r1"), None, "nothing to pick");
    fill(&s, "L_2", "box");
    fill(&s, "L_3", "bag");
    assert_eq!(exec(&s, pick.clone(), "r1"), found("L_2"), "L_1 skipped");
    let bag = crowded(&["L"], true, Some("bag"), false);
    assert_eq!(exec(&s, bag, "r1"), found(""), "L_2 blocks the lane");
    let boxes = crowded(&["L"], true, Some("box"), false);
    assert_eq!(exec(&s, boxes.clone(), "r1"), found("L_2"));
    lock(&s, "L_1", "r9");
    assert_eq!(exec(&s, pick, "r1"), None, "a foreign-locked mouth blocks");
    assert_eq!(exec(&s, boxes, "r1"), found(""));
}

#[test]
fn crowded_stand_alone_sites_are_taken_by_content_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    lane(&s);
    put(&s, site("S_0", "L", true));
    fill(&s, "S_0", "box");
    fill(&s, "L_3", "box");
    let boxes = crowded(&["L"], true, Some("box"), false);
    assert_eq!(exec(&s, boxes.clone(), "r1"), found("S_0"), "step 1");
    assert_eq!(
        exec(&s, crowded(&["L"], true, None, false), "r1"),
        found("L_3"),
        "no content: lanes only"
    );
    lock(&s, "S_0", "r9");
    assert_eq!(exec(&s, boxes, "r1"), found("L_3"), "S_0 is locked");
    // A stand-alone site is no lane position: putting into L ignores it.
    assert_eq!(
        exec(&s, crowded(&["L"], false, None, false), "r1"),
        found("L_2")
    );
}

#[test]
fn crowded_positions_are_numbers_and_must_be_there() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    for id in ["N_1", "N_2", "N_10"] {
        put(&s, site(id, "N", true));
    }
    assert_eq!(
        exec(&s, crowded(&["N"], false, None, false), "r1"),
        found("N_10"),
        "_10 is deeper than _2"
    );
    fill(&s, "N_2", "a");
    fill(&s, "N_10", "b");
    assert_eq!(
        exec(&s, crowded(&["N"], true, None, false), "r1"),
        found("N_2"),
        "_2 is nearer the mouth than _10"
    );
    // Every group when none is given, by name: A before N.
    put(&s, site("A_001", "A", true));
    assert_eq!(
        exec(&s, crowded(&[], false, None, false), "r1"),
        found("A_001")
    );
    // Logical sites are no candidates; a physical one without a position fails the block.
    put(&s, site("N-x", "N", false));
    assert_eq!(
        exec(&s, crowded(&["N"], false, None, false), "r1"),
        found("N_1")
    );
    for bad in ["N-9", "N_", "N_1a"] {
        put(&s, site(bad, "N", true));
        let want = format!("crowdedSiteBp: site {bad} does not end in _<number>");
        assert_eq!(
            exec(&s, crowded(&["N"], false, None, true), "r1"),
            failed(&want)
        );
        s.write_blocking(move |tx| tx.site_delete(bad, API, 3))
            .unwrap();
    }
}

fn lock_op(id: &str, owner: &str, wait: bool) -> SiteOp {
    SiteOp::Lock {
        site_id: id.into(),
        owner: owner.into(),
        fair: false,
        wait,
    }
}

#[test]
fn lock_answers_each_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", false));
    put(
        &s,
        Site {
            disabled: true,
            ..site("A-02", "A", false)
        },
    );
    put(
        &s,
        Site {
            sync_failed: true,
            ..site("A-03", "A", false)
        },
    );
    let done = Some(SiteReply::Done);
    assert_eq!(exec(&s, lock_op("A-01", "mes", false), "r1"), done);
    assert_eq!(get(&s, "A-01").locked_by, "mes", "the named owner");
    assert_eq!(exec(&s, lock_op("A-01", "mes", false), "r1"), done);
    let refused = |why: &str| Some(SiteReply::Refused(why.into()));
    assert_eq!(
        exec(&s, lock_op("A-01", "r2", false), "r2"),
        refused("held by mes")
    );
    assert_eq!(exec(&s, lock_op("A-01", "r2", true), "r2"), None);
    assert_eq!(
        exec(&s, lock_op("A-02", "r2", false), "r2"),
        refused("disabled")
    );
    assert_eq!(exec(&s, lock_op("A-02", "r2", true), "r2"), None);
    assert_eq!(
        exec(&s, lock_op("A-03", "r2", false), "r2"),
        refused("sync failed")
    );
    assert_eq!(
        exec(&s, lock_op("nope", "r2", true), "r2"),
        failed("siteNot: site nope does not exist")
    );
    assert_eq!(
        exec(&s, lock_op("A-03", "", true), "r2"),
        failed("lockedId: must not be empty")
    );
    let long = "o".repeat(limits::SITE_TEXT_BYTES_MAX + 1);
    let Some(SiteReply::Failed(e)) = exec(&s, lock_op("A-03", &long, true), "r2") else {
        panic!("an over-long owner fails")
    };
    assert!(e.contains("SITE_TEXT_BYTES_MAX"), "{e}");
    assert_eq!(
        log(&s, "A-01"),
        [
            ("create".to_string(), "api".to_string()),
            ("lock".into(), "r1".into())
        ],
        "one lock, by the run that asked"
    );
}

#[test]
fn unlock_answers_each_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", false));
    let unlock = |owner: &str| SiteOp::Unlock {
        site_id: "A-01".into(),
        owner: owner.into(),
    };
    assert_eq!(
        exec(&s, unlock("r1"), "r1"),
        Some(SiteReply::Note("site A-01 was not locked".into()))
    );
    lock(&s, "A-01", "r1");
    assert_eq!(exec(&s, unlock("r2"), "r2"), None, "r1 holds it: wait");
    assert_eq!(exec(&s, unlock("r1"), "r2"), Some(SiteReply::Done));
    assert!(!get(&s, "A-01").locked);
    let unknown = SiteOp::Unlock {
        site_id: "nope".into(),
        owner: "r1".into(),
    };
    assert_eq!(
        exec(&s, unknown, "r1"),
        failed("siteNot: site nope does not exist")
    );
}

fn fill_op(filled: bool, content: Option<&str>) -> SiteOp {
    SiteOp::Fill {
        site_id: "A-01".into(),
        filled,
        content: content.map(str::to_string),
    }
}

#[test]
fn fill_empty_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", false));
    let state = |s: &Store| {
        let site = get(s, "A-01");
        (site.filled, site.content)
    };
    let done = Some(SiteReply::Done);
    assert_eq!(exec(&s, fill_op(true, Some("box")), "r1"), done, "content");
    assert_eq!(state(&s), (true, "box".into()));
    assert_eq!(exec(&s, fill_op(false, None), "r1"), done, "empty");
    assert_eq!(state(&s), (false, String::new()));
    fill(&s, "A-01", "bag");
    s.write_blocking(|tx| tx.site_set_filled("A-01", false, Some("bag"), API, 3))
        .unwrap();
    assert_eq!(exec(&s, fill_op(true, None), "r1"), done, "filled");
    assert_eq!(state(&s), (true, "bag".into()), "content unchanged");
    assert_eq!(exec(&s, fill_op(true, None), "r1"), done, "no change");
    let long = "c".repeat(limits::SITE_TEXT_BYTES_MAX + 1);
    assert_eq!(
        exec(&s, fill_op(true, Some(&long)), "r1"),
        failed("content: longer than SITE_TEXT_BYTES_MAX (256 bytes)")
    );
    assert_eq!(state(&s), (true, "bag".into()));
    let unknown = SiteOp::Fill {
        site_id: "nope".into(),
        filled: true,
        content: None,
    };
    assert_eq!(
        exec(&s, unknown, "r1"),
        failed("siteNot: site nope does not exist")
    );
    let runs: Vec<_> = log(&s, "A-01")
        .into_iter()
        .filter(|(_, who)| who == "r1")
        .map(|(action, _)| action)
        .collect();
    assert_eq!(runs, ["fill", "empty", "fill"]);
}

#[test]
fn tags_are_set_and_logged_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", false));
    let tags = |id: &str, t: &str| SiteOp::Tags {
        site_id: id.into(),
        tags: t.into(),
    };
    assert_eq!(
        exec(&s, tags("A-01", "hot,big"), "r1"),
        Some(SiteReply::Done)
    );
    assert_eq!(get(&s, "A-01").tags, "hot,big");
    assert_eq!(
        exec(&s, tags("A-01", "hot,big"), "r1"),
        Some(SiteReply::Done)
    );
    assert_eq!(exec(&s, tags("A-01", ""), "r1"), Some(SiteReply::Done));
    assert_eq!(get(&s, "A-01").tags, "");
    let long = "t".repeat(limits::SITE_ATTRS_BYTES_MAX + 1);
    assert_eq!(
        exec(&s, tags("A-01", &long), "r1"),
        failed("tags: longer than SITE_ATTRS_BYTES_MAX (8192 bytes)")
    );
    assert_eq!(
        exec(&s, tags("nope", "x"), "r1"),
        failed("siteNot: site nope does not exist")
    );
    assert_eq!(
        log(&s, "A-01"),
        [
            ("create".to_string(), "api".to_string()),
            ("tags".into(), "r1".into()),
            ("tags".into(), "r1".into())
        ],
        "the unchanged set left no row"
    );
}

fn set_attr(id: &str, name: &str, value: &str) -> SiteOp {
    SiteOp::SetAttr {
        site_id: id.into(),
        name: name.into(),
        value: value.into(),
    }
}

fn get_attr(id: &str, name: &str) -> SiteOp {
    SiteOp::GetAttr {
        site_id: id.into(),
        name: name.into(),
    }
}

#[test]
fn attributes_are_set_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let mut a = site("A-01", "A", false);
    a.attributes.insert("n".into(), serde_json::json!(7));
    a.attributes.insert("z".into(), serde_json::Value::Null);
    put(&s, a);
    let attr = |v: Option<&str>| Some(SiteReply::Attr(v.map(str::to_string)));
    assert_eq!(exec(&s, get_attr("A-01", "color"), "r1"), attr(None));
    assert_eq!(exec(&s, get_attr("A-01", "n"), "r1"), attr(Some("7")));
    assert_eq!(exec(&s, get_attr("A-01", "z"), "r1"), attr(None));
    let done = Some(SiteReply::Done);
    assert_eq!(exec(&s, set_attr("A-01", "color", "red"), "r1"), done);
    assert_eq!(exec(&s, get_attr("A-01", "color"), "r1"), attr(Some("red")));
    assert_eq!(exec(&s, set_attr("A-01", "n", ""), "r1"), done);
    assert_eq!(exec(&s, get_attr("A-01", "n"), "r1"), attr(Some("")));
    assert_eq!(get(&s, "A-01").attributes["n"], "");
    let big = "v".repeat(limits::SITE_ATTRS_BYTES_MAX);
    assert_eq!(
        exec(&s, set_attr("A-01", "big", &big), "r1"),
        failed("attributes: larger than SITE_ATTRS_BYTES_MAX (8192 bytes)")
    );
    assert!(!get(&s, "A-01").attributes.contains_key("big"));
    let not = failed("siteNot: site nope does not exist");
    assert_eq!(exec(&s, set_attr("nope", "a", "b"), "r1"), not);
    assert_eq!(exec(&s, get_attr("nope", "a"), "r1"), not);
    let actions: Vec<_> = log(&s, "A-01").into_iter().map(|e| e.0).collect();
    assert_eq!(actions, ["create", "attr", "attr"]);
}

fn batch(ids: &[&str], groups: &[&str], filled: bool, physical: Option<bool>) -> SiteOp {
    SiteOp::Batch {
        site_ids: ids.iter().map(|g| g.to_string()).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        filled,
        content: None,
        physical,
    }
}

/// `op` (a batch) with `content`.
fn with_content(op: SiteOp, text: &str) -> SiteOp {
    let SiteOp::Batch {
        site_ids,
        groups,
        filled,
        physical,
        ..
    } = op
    else {
        unreachable!()
    };
    SiteOp::Batch {
        site_ids,
        groups,
        filled,
        content: Some(text.into()),
        physical,
    }
}

fn filled_ids(s: &Store) -> Vec<String> {
    let f = SiteFilter {
        filled: Some(true),
        ..SiteFilter::default()
    };
    s.read_blocking(move |rx| rx.site_list(&f, 0, 100))
        .unwrap()
        .into_iter()
        .map(|s| s.site_id)
        .collect()
}

#[test]
fn batch_sets_sites_by_id_group_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, site("A-01", "A", true));
    put(&s, site("A-02", "A", false));
    put(&s, site("B-01", "B", true));
    put(&s, site("C-01", "C", false));
    let count = |n: u64| Some(SiteReply::Count(n));
    let by_ids = batch(&["A-01", "C-01", "nope"], &[], true, None);
    assert_eq!(exec(&s, by_ids.clone(), "r1"), count(2));
    assert_eq!(filled_ids(&s), ["A-01", "C-01"]);
    assert_eq!(exec(&s, by_ids, "r1"), count(0), "nothing to change");
    assert_eq!(exec(&s, batch(&[], &["A"], true, None), "r1"), count(1));
    assert_eq!(filled_ids(&s), ["A-01", "A-02", "C-01"]);
    let logical = batch(&["B-01"], &["A"], false, Some(false));
    assert_eq!(exec(&s, logical, "r1"), count(1), "A-02 only");
    assert_eq!(filled_ids(&s), ["A-01", "C-01"]);
    let all_physical = batch(&[], &[], true, Some(true));
    assert_eq!(exec(&s, all_physical, "r1"), count(1), "B-01");
    assert_eq!(filled_ids(&s), ["A-01", "B-01", "C-01"]);
    let content = with_content(batch(&[], &[], true, None), "box");
    assert_eq!(exec(&s, content, "r1"), count(4));
    assert_eq!(get(&s, "A-02").content, "box");
    let empty_all = with_content(batch(&[], &[], false, None), "ignored");
    assert_eq!(exec(&s, empty_all, "r1"), count(4));
    assert!(filled_ids(&s).is_empty());
    assert_eq!(get(&s, "A-02").content, "", "emptied: content cleared");
    let actions: Vec<_> = log(&s, "A-02").into_iter().map(|e| e.0).collect();
    assert_eq!(actions, ["create", "fill", "empty", "fill", "empty"]);
    let long_content = "c".repeat(limits::SITE_TEXT_BYTES_MAX + 1);
    let long = with_content(batch(&[], &[], true, None), &long_content);
    assert_eq!(
        exec(&s, long, "r1"),
        failed("content: longer than SITE_TEXT_BYTES_MAX (256 bytes)")
    );
}

#[test]
fn batch_over_the_limit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let n = limits::SITE_BATCH_MAX as i64 + 1;
    s.write_blocking(move |tx| {
        tx.conn.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO site (site_id, group_name, updated_ms) \
             SELECT printf('B-%05d', i), 'big', 0 FROM k",
            [n],
        )?;
        Ok(())
    })
    .unwrap();
    put(&s, site("small", "small", false));
    let want = format!(
        "more than SITE_BATCH_MAX ({}) sites to change; nothing was changed",
        limits::SITE_BATCH_MAX
    );
    assert_eq!(
        exec(&s, batch(&[], &["big"], true, None), "r1"),
        failed(&want)
    );
    assert_eq!(exec(&s, batch(&[], &[], true, None), "r1"), failed(&want));
    assert!(filled_ids(&s).is_empty());
    assert_eq!(
        exec(&s, batch(&["B-00001"], &["small"], true, None), "r1"),
        Some(SiteReply::Count(2))
    );
}

#[test]
fn locked_by_lists_the_owners_sites_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    for id in ["C", "A", "B"] {
        put(&s, site(id, "G", false));
    }
    lock(&s, "C", "r1");
    lock(&s, "A", "r1");
    lock(&s, "B", "r2");
    let locked_by = |owner: &str| SiteOp::LockedBy {
        owner: owner.into(),
    };
    let ids = |v: &[&str]| Some(SiteReply::Ids(v.iter().map(|s| s.to_string()).collect()));
    assert_eq!(exec(&s, locked_by("r1"), "x"), ids(&["A", "C"]));
    assert_eq!(exec(&s, locked_by("nobody"), "x"), ids(&[]));
}
