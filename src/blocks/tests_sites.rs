//! Site blocks on the pure engine: the `SiteOp` each builds from valid parameters, what it does
//! with each answer, and its failures on bad parameters (at compile time where the value is a
//! literal, at run time where it comes from an expression).

use crate::engine::tests::{b, expr, finished, flow, simple, Harness};
use crate::engine::{EffectKind, Event, Outcome, Reply};
use crate::flow::{compile, load};
use crate::sites::{IdleFilter, SiteOp, SiteReply};
use serde_json::{json, Value};

fn one(ty: &str, params: Value) -> Harness {
    let mut h = Harness::new(flow(json!([b(1, ty, params, json!({}))]), json!([])));
    h.event(Event::Start);
    h
}

/// The site op the run waits for (exactly one pending).
fn asked(h: &Harness) -> SiteOp {
    match h.operation() {
        EffectKind::Site(op) => op.as_ref().clone(),
        other => panic!("not a site op: {other:?}"),
    }
}

fn answer(h: &mut Harness, reply: SiteReply) -> Outcome {
    h.reply(Reply::Site(reply))
}

fn interrupted_with(outcome: &Outcome, text: &str) {
    match outcome {
        Outcome::Interrupted { reason } => assert!(reason.contains(text), "{reason}"),
        other => panic!("expected an interrupt naming {text}: {other:?}"),
    }
}

fn compile_errors(ty: &str, params: Value) -> Vec<String> {
    let def = json!({"label": "t", "detail": {"inputParams": [], "outputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
            "children": {"default": [b(1, ty, params, json!({}))]}}}});
    let raw = load::load_value(def, "t").remove(0).unwrap();
    compile::compile(&raw)
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn get_idle_site_builds_its_filter_and_outputs_the_site() {
    let mut h = one(
        "GetIdleSiteBp",
        json!({"groupName": simple("A"), "filled": simple("true"), "content": simple("pallet"),
            "type": simple("true"), "lock": simple("true"), "ifFair": simple("true"),
            "orderDesc": simple("true"), "siteId": simple(""), "retryPeriod": simple("500")}),
    );
    assert_eq!(
        asked(&h),
        SiteOp::GetIdle {
            filter: IdleFilter {
                site_id: None,
                group_name: Some("A".into()),
                content: Some("pallet".into()),
                filled: Some(true),
                physical: Some(true),
                locked: false,
                order_desc: true,
            },
            lock: true,
            fair: true,
        }
    );
    let out = answer(&mut h, SiteReply::Found("A-01".into()));
    assert!(finished(&out), "{out:?}");
    assert_eq!(h.run.blocks["b1"], json!({"siteId": "A-01"}));
}

#[test]
fn get_idle_site_fairness_needs_a_lock_and_a_key() {
    let h = one(
        "GetIdleSiteBp",
        json!({"groupName": simple("A"), "ifFair": simple("true")}),
    );
    assert!(matches!(asked(&h), SiteOp::GetIdle { fair: false, .. }));
    let h = one(
        "GetIdleSiteBp",
        json!({"lock": simple("true"), "ifFair": simple("true")}),
    );
    assert!(matches!(
        asked(&h),
        SiteOp::GetIdle {
            fair: false,
            lock: true,
            ..
        }
    ));
}

#[test]
fn get_idle_site_refuses_bad_parameters() {
    let h = one("GetIdleSiteBp", json!({"retryPeriod": expr("0 - 5")}));
    interrupted_with(h.outcome.as_ref().unwrap(), "retryPeriod must be 0 or more");
    let errors = compile_errors("GetIdleSiteBp", json!({"retryPeriod": simple("soon")}));
    assert!(
        errors.iter().any(|e| e.contains("retryPeriod")),
        "{errors:?}"
    );
    // Booleans follow Java's Boolean.parseBoolean: anything but "true" is false.
    let h = one("GetIdleSiteBp", json!({"lock": simple("yes please")}));
    assert!(matches!(asked(&h), SiteOp::GetIdle { lock: false, .. }));
    // A failure answer (the waiter bound, a store error) fails the block.
    let mut h = one("GetIdleSiteBp", json!({}));
    let out = answer(&mut h, SiteReply::Failed("SITE_WAITERS_MAX reached".into()));
    interrupted_with(&out, "SITE_WAITERS_MAX");
}

#[test]
fn query_idle_site_outputs_the_map_or_an_empty_string() {
    let mut h = one("QueryIdleSiteBp", json!({"siteId": simple("S1")}));
    assert!(
        matches!(asked(&h), SiteOp::Query { filter } if filter.site_id.as_deref() == Some("S1"))
    );
    answer(&mut h, SiteReply::Site(None));
    assert_eq!(h.run.blocks["b1"], json!({"site": ""}));
    let mut h = one("QueryIdleSiteBp", json!({}));
    answer(&mut h, SiteReply::Site(Some(json!({"siteId": "S1"}))));
    assert_eq!(h.run.blocks["b1"], json!({"site": {"siteId": "S1"}}));
    let mut h = one("QueryIdleSiteBp", json!({}));
    let out = answer(&mut h, SiteReply::Done);
    interrupted_with(&out, "unexpected answer");
}

#[test]
fn crowded_site_reads_groups_and_its_retry_policy() {
    let h = one(
        "GetIdleCrowdedSiteBp",
        json!({"groupName": simple("[\"L1\",\"L2\"]"), "filled": simple("true"),
            "lock": simple("true"), "retryNum": simple("3")}),
    );
    assert_eq!(
        asked(&h),
        SiteOp::Crowded {
            groups: vec!["L1".into(), "L2".into()],
            filled: true,
            content: None,
            lock: true,
            wait: true,
            attempts_max: 3,
        }
    );
    let mut h = one("GetIdleCrowdedSiteBp", json!({"retry": simple("false")}));
    assert!(matches!(
        asked(&h),
        SiteOp::Crowded {
            wait: false,
            attempts_max: 1,
            filled: false,
            ..
        }
    ));
    answer(&mut h, SiteReply::Found(String::new()));
    assert_eq!(h.run.blocks["b1"], json!({"siteId": ""}));
    let h = one("GetIdleCrowdedSiteBp", json!({"groupName": simple("L1")}));
    interrupted_with(h.outcome.as_ref().unwrap(), "JSON array of names");
    let h = one("GetIdleCrowdedSiteBp", json!({"retryNum": expr("-1")}));
    interrupted_with(h.outcome.as_ref().unwrap(), "retryNum");
}

#[test]
fn set_site_locked_waits_in_the_queue_or_counts_its_attempts() {
    let mut h = one("SetSiteLockedBp", json!({"siteId": simple("S1")}));
    assert_eq!(
        asked(&h),
        SiteOp::Lock {
            site_id: "S1".into(),
            owner: "r1".into(),
            fair: false,
            wait: true
        }
    );
    answer(&mut h, SiteReply::Done);
    assert_eq!(h.run.blocks["b1"], json!({"success": true}));

    let mut h = one(
        "SetSiteLockedBp",
        json!({"siteId": simple("S1"), "lockedId": simple("op-7"), "retryTimes": simple("2")}),
    );
    assert!(matches!(asked(&h), SiteOp::Lock { wait: false, ref owner, .. } if owner == "op-7"));
    answer(&mut h, SiteReply::Refused("held by x".into()));
    // A 2 s pause, then the second and last attempt.
    assert!(h.fire_next());
    assert_eq!(h.host.now, crate::blocks::LOCK_RETRY_MS);
    assert!(matches!(asked(&h), SiteOp::Lock { .. }));
    let out = answer(&mut h, SiteReply::Refused("held by x".into()));
    assert!(finished(&out), "{out:?}");
    assert_eq!(h.run.blocks["b1"], json!({"success": false}));
    assert_eq!(h.logs().len(), 2, "{:?}", h.logs());

    let errors = compile_errors("SetSiteLockedBp", json!({"retryTimes": simple("x")}));
    assert!(errors.iter().any(|e| e.contains("siteId")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("retryTimes")),
        "{errors:?}"
    );
    let h = one("SetSiteLockedBp", json!({"siteId": expr("null")}));
    interrupted_with(h.outcome.as_ref().unwrap(), "siteIdEmpty");
}

#[test]
fn set_site_unlocked_warns_about_an_unlocked_site_and_fails_on_an_unknown_one() {
    let mut h = one("SetSiteUnlockedBp", json!({"siteId": simple("S1")}));
    assert_eq!(
        asked(&h),
        SiteOp::Unlock {
            site_id: "S1".into(),
            owner: "r1".into()
        }
    );
    let out = answer(&mut h, SiteReply::Note("site S1 was not locked".into()));
    assert!(finished(&out));
    assert!(h.logs()[0].contains("was not locked"), "{:?}", h.logs());
    let mut h = one("SetSiteUnlockedBp", json!({"siteId": simple("nope")}));
    let out = answer(
        &mut h,
        SiteReply::Failed("siteNot: site nope does not exist".into()),
    );
    interrupted_with(&out, "siteNot");
}

#[test]
fn fill_empty_content_and_tags_ask_for_their_change() {
    let cases = [
        (
            "SetSiteFilledBp",
            json!({"siteId": simple("S1")}),
            SiteOp::Fill {
                site_id: "S1".into(),
                filled: true,
                content: None,
            },
        ),
        (
            "SetSiteEmptyBp",
            json!({"siteId": simple("S1")}),
            SiteOp::Fill {
                site_id: "S1".into(),
                filled: false,
                content: None,
            },
        ),
        (
            "SetSiteContentBp",
            json!({"siteId": simple("S1"), "content": simple("box")}),
            SiteOp::Fill {
                site_id: "S1".into(),
                filled: true,
                content: Some("box".into()),
            },
        ),
        (
            "SetSiteTagsBp",
            json!({"siteId": simple("S1")}),
            SiteOp::Tags {
                site_id: "S1".into(),
                tags: String::new(),
            },
        ),
    ];
    for (ty, params, op) in cases {
        let mut h = one(ty, params);
        assert_eq!(asked(&h), op, "{ty}");
        assert!(finished(&answer(&mut h, SiteReply::Done)), "{ty}");
    }
    let errors = compile_errors("SetSiteContentBp", json!({"siteId": simple("S1")}));
    assert!(errors.iter().any(|e| e.contains("content")), "{errors:?}");
    let h = one(
        "SetSiteContentBp",
        json!({"siteId": simple("S1"), "content": expr("null")}),
    );
    interrupted_with(h.outcome.as_ref().unwrap(), "content");
}

#[test]
fn site_attributes_are_set_and_read() {
    let mut h = one(
        "SetSiteAttrBp",
        json!({"siteId": simple("S1"), "attrName": simple("color")}),
    );
    assert_eq!(
        asked(&h),
        SiteOp::SetAttr {
            site_id: "S1".into(),
            name: "color".into(),
            value: String::new()
        }
    );
    assert!(finished(&answer(&mut h, SiteReply::Done)));
    let mut h = one(
        "GetSiteAttrBp",
        json!({"siteId": simple("S1"), "attrName": simple("color")}),
    );
    answer(&mut h, SiteReply::Attr(None));
    assert_eq!(h.run.blocks["b1"], json!({"attrValue": null}));
    let mut h = one(
        "GetSiteAttrBp",
        json!({"siteId": simple("S1"), "attrName": simple("color")}),
    );
    answer(&mut h, SiteReply::Attr(Some("red".into())));
    assert_eq!(h.run.blocks["b1"], json!({"attrValue": "red"}));
    let h = one(
        "GetSiteAttrBp",
        json!({"siteId": simple("S1"), "attrName": expr("''")}),
    );
    interrupted_with(h.outcome.as_ref().unwrap(), "siteAttrEmpty");
}

#[test]
fn batch_setting_and_locked_sites_by_task() {
    let mut h = one(
        "BatchSettingSiteBp",
        json!({"siteIds": simple("[\"S1\"]"), "groupNames": expr("['G']"),
            "filled": simple("true"), "content": simple("box"), "type": simple("false")}),
    );
    assert_eq!(
        asked(&h),
        SiteOp::Batch {
            site_ids: vec!["S1".into()],
            groups: vec!["G".into()],
            filled: true,
            content: Some("box".into()),
            physical: Some(false),
        }
    );
    answer(&mut h, SiteReply::Count(3));
    assert!(h.logs()[0].contains("3 site(s) updated"), "{:?}", h.logs());
    let errors = compile_errors("BatchSettingSiteBp", json!({}));
    assert!(errors.iter().any(|e| e.contains("filled")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("every site is updated")),
        "{errors:?}"
    );
    let errors = compile_errors(
        "BatchSettingSiteBp",
        json!({"filled": simple("false"), "groupNames": simple("[\"G\"]")}),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let h = one(
        "BatchSettingSiteBp",
        json!({"filled": expr("null"), "siteIds": simple("[\"S1\"]")}),
    );
    interrupted_with(h.outcome.as_ref().unwrap(), "fillParams");

    let mut h = one("GetLockedSitesByTaskRecordIdBp", json!({}));
    assert_eq!(asked(&h), SiteOp::LockedBy { owner: "r1".into() });
    answer(&mut h, SiteReply::Ids(vec!["A".into(), "B".into()]));
    assert_eq!(h.run.blocks["b1"], json!({"lockedSiteIdList": ["A", "B"]}));
}

#[test]
fn a_stop_ends_a_waiting_site_block_at_once() {
    let mut h = one("GetIdleSiteBp", json!({"groupName": simple("A")}));
    let token = h.pending[0].token;
    let out = h.event(Event::Stop).clone();
    assert!(
        matches!(out, Outcome::Ended(ref e) if e.code == 1001),
        "{out:?}"
    );
    // A late answer is ignored.
    h.event(Event::Reply {
        fiber: 0,
        token,
        reply: Reply::Site(SiteReply::Found("A-01".into())),
    });
    assert!(h.run.blocks.get("b1").is_none());
}
