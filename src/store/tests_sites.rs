//! Site store tests: create/replace/delete, compare-and-set locks, fill/empty, filters, the
//! capped change log, the site cap and the upgrade from schema 4.

use super::tests::{inline, opts};
use super::*;
use crate::limits;

const API: SiteActor<'static> = SiteActor {
    who: "api",
    why: "test",
};

/// Removes what schemas 5 and later added, so a test can fake an older database.
pub(super) fn drop_v5(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "DROP TABLE site; DROP TABLE site_log; DELETE FROM store_counter WHERE name = 'site'; \
         DROP TABLE site_request;",
    )
    .unwrap();
}

fn put(s: &Store, site: Site) -> bool {
    s.write_blocking(move |tx| tx.site_put(&site, API, 5))
        .unwrap()
}

fn get(s: &Store, id: &str) -> Site {
    let id = id.to_string();
    s.read_blocking(move |rx| rx.site_get(&id))
        .unwrap()
        .unwrap()
}

fn lock(s: &Store, id: &str, owner: &str) -> Result<LockOutcome> {
    let (id, owner) = (id.to_string(), owner.to_string());
    s.write_blocking(move |tx| {
        tx.site_lock(
            &id,
            &owner,
            SiteActor {
                who: &owner,
                why: "t",
            },
            7,
        )
    })
}

fn log(s: &Store, id: Option<&str>) -> Vec<(String, String, String)> {
    let id = id.map(str::to_string);
    s.read_blocking(move |rx| rx.site_log_entries(id.as_deref(), 1000))
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.site_id, e.action, e.who))
        .collect()
}

#[test]
fn create_replace_get_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let mut a = Site::new("A-01", "A");
    a.attributes.insert("x".into(), serde_json::json!(1));
    a.row_num = Some("3".into());
    assert!(put(&s, a.clone()), "new site");
    let got = get(&s, "A-01");
    assert_eq!(got.updated_ms, 5);
    assert_eq!(
        (got.attributes, got.row_num),
        (a.attributes.clone(), Some("3".to_string()))
    );
    a.area = "north".into();
    assert!(!put(&s, a), "replaced, not created");
    assert_eq!(get(&s, "A-01").area, "north");
    assert_eq!(s.read_blocking(|rx| rx.site_count()).unwrap(), 1);
    // A replace keeps the lock: locks move only by compare-and-set.
    lock(&s, "A-01", "t1").unwrap();
    put(&s, Site::new("A-01", "A"));
    assert_eq!(get(&s, "A-01").locked_by, "t1");
    s.write_blocking(|tx| tx.site_unlock("A-01", Some("t1"), API, 8))
        .unwrap();
    s.write_blocking(|tx| tx.site_delete("A-01", API, 9))
        .unwrap();
    assert_eq!(s.read_blocking(|rx| rx.site_count()).unwrap(), 0);
    let e = s
        .write_blocking(|tx| tx.site_delete("A-01", API, 9))
        .unwrap_err();
    assert_eq!(e, StoreError::NotFound("site A-01".into()));
    let actions: Vec<_> = log(&s, Some("A-01")).into_iter().map(|e| e.1).collect();
    assert_eq!(
        actions,
        ["create", "update", "lock", "update", "unlock", "delete"]
    );
}

#[test]
fn invalid_sites_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let cases = [
        (Site::new(" ", "A"), "siteId"),
        (
            Site {
                group_name: "g".repeat(limits::SITE_TEXT_BYTES_MAX + 1),
                ..Site::new("x", "")
            },
            "groupName",
        ),
        (
            Site {
                locked: true,
                ..Site::new("x", "")
            },
            "lockedBy",
        ),
        (
            Site {
                locked_by: "t1".into(),
                ..Site::new("x", "")
            },
            "lockedBy",
        ),
        (
            Site {
                tags: "t,".repeat(limits::SITE_ATTRS_BYTES_MAX),
                ..Site::new("x", "")
            },
            "tags",
        ),
    ];
    for (site, field) in cases {
        let e = s
            .write_blocking(move |tx| tx.site_put(&site, API, 1))
            .unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let mut big = Site::new("x", "");
    big.attributes.insert(
        "k".into(),
        serde_json::json!("v".repeat(limits::SITE_ATTRS_BYTES_MAX)),
    );
    let e = s
        .write_blocking(move |tx| tx.site_put(&big, API, 1))
        .unwrap_err();
    assert!(e.to_string().contains("attributes"), "{e}");
    assert_eq!(
        s.read_blocking(|rx| rx.site_count()).unwrap(),
        0,
        "nothing written"
    );
    assert!(log(&s, None).is_empty());
}

#[test]
fn lock_is_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, Site::new("A-01", "A"));
    put(
        &s,
        Site {
            disabled: true,
            ..Site::new("A-02", "A")
        },
    );
    assert_eq!(lock(&s, "A-01", "t1").unwrap(), LockOutcome::Locked);
    assert_eq!(lock(&s, "A-01", "t1").unwrap(), LockOutcome::AlreadyHeld);
    assert_eq!(
        lock(&s, "A-01", "t2").unwrap(),
        LockOutcome::HeldBy("t1".into())
    );
    assert_eq!(lock(&s, "A-02", "t2").unwrap(), LockOutcome::Disabled);
    put(
        &s,
        Site {
            sync_failed: true,
            ..Site::new("A-03", "A")
        },
    );
    assert_eq!(lock(&s, "A-03", "t2").unwrap(), LockOutcome::SyncFailed);
    assert!(matches!(
        lock(&s, "nope", "t2"),
        Err(StoreError::NotFound(_))
    ));
    assert!(lock(&s, "A-01", "").is_err(), "an owner is required");
    let site = get(&s, "A-01");
    assert!(site.locked && site.locked_by == "t1");
    // Only the successful lock was logged, by its owner.
    assert_eq!(
        log(&s, Some("A-01")),
        [
            ("A-01".into(), "create".into(), "api".into()),
            ("A-01".into(), "lock".into(), "t1".into())
        ]
    );
    // A locked site cannot be deleted.
    let e = s
        .write_blocking(|tx| tx.site_delete("A-01", API, 9))
        .unwrap_err();
    assert!(e.to_string().contains("locked by t1"), "{e}");
}

#[test]
fn unlock_checks_the_owner_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    for id in ["A-01", "A-02", "A-03"] {
        put(&s, Site::new(id, "A"));
    }
    lock(&s, "A-01", "t1").unwrap();
    lock(&s, "A-02", "t1").unwrap();
    lock(&s, "A-03", "t2").unwrap();
    let unlock = |id: &'static str, owner: Option<&'static str>| {
        s.write_blocking(move |tx| tx.site_unlock(id, owner, API, 8))
            .unwrap()
    };
    assert_eq!(
        unlock("A-03", Some("t1")),
        UnlockOutcome::HeldBy("t2".into())
    );
    assert_eq!(unlock("A-03", None), UnlockOutcome::Unlocked, "forced");
    assert_eq!(unlock("A-03", None), UnlockOutcome::NotLocked);
    assert_eq!(
        s.read_blocking(|rx| rx.sites_locked_by("t1")).unwrap(),
        ["A-01", "A-02"]
    );
    let released = s
        .write_blocking(|tx| tx.site_unlock_owned("t1", API, 9))
        .unwrap();
    assert_eq!(released, ["A-01", "A-02"]);
    assert!(s
        .read_blocking(|rx| rx.sites_locked_by("t1"))
        .unwrap()
        .is_empty());
    assert!(!get(&s, "A-01").locked);
}

#[test]
fn fill_and_empty_keep_content_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, Site::new("A-01", "A"));
    let set = |filled: bool, content: Option<&'static str>| {
        s.write_blocking(move |tx| tx.site_set_filled("A-01", filled, content, API, 3))
            .unwrap()
    };
    assert!(set(true, Some("pallet")));
    assert_eq!(
        (get(&s, "A-01").filled, get(&s, "A-01").content),
        (true, "pallet".into())
    );
    assert!(!set(true, None), "no change, no log row");
    assert!(set(false, None));
    assert_eq!(
        (get(&s, "A-01").filled, get(&s, "A-01").content),
        (false, String::new())
    );
    let actions: Vec<_> = log(&s, Some("A-01")).into_iter().map(|e| e.1).collect();
    assert_eq!(actions, ["create", "fill", "empty"]);
    let e = s
        .write_blocking(|tx| tx.site_set_filled("nope", true, None, API, 3))
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)));
}

#[test]
fn list_filters_order_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    for i in 0..6 {
        let mut site = Site::new(&format!("S-{i}"), if i < 3 { "A" } else { "B" });
        site.filled = i % 2 == 0;
        put(&s, site);
    }
    lock(&s, "S-4", "t9").unwrap();
    let ids = |f: SiteFilter, offset: usize, limit: usize| -> Vec<String> {
        s.read_blocking(move |rx| rx.site_list(&f, offset, limit))
            .unwrap()
            .into_iter()
            .map(|s| s.site_id)
            .collect()
    };
    let group_b = SiteFilter {
        group_name: Some("B".into()),
        ..Default::default()
    };
    assert_eq!(ids(group_b.clone(), 0, 10), ["S-3", "S-4", "S-5"]);
    let free_filled_b = SiteFilter {
        filled: Some(true),
        locked: Some(false),
        ..group_b.clone()
    };
    assert!(ids(free_filled_b, 0, 10).is_empty(), "S-4 is locked");
    let desc = SiteFilter {
        order_desc: true,
        ..Default::default()
    };
    assert_eq!(ids(desc, 1, 2), ["S-4", "S-3"]);
    let by_owner = SiteFilter {
        locked_by: Some("t9".into()),
        ..Default::default()
    };
    assert_eq!(ids(by_owner, 0, 10), ["S-4"]);
}

#[test]
fn the_change_log_keeps_the_newest_rows_past_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let o = opts(&dir);
    // Fill the log to its cap cheaply with SQL, then make real changes past it.
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO site_log (id, site_id, action, who, detail, created_ms) \
         SELECT i, 'old', 'create', 'seed', '', 0 FROM n",
        [limits::SITE_LOG_ROWS_MAX as i64],
    )
    .unwrap();
    drop(conn);
    put(&s, Site::new("A-01", "A"));
    lock(&s, "A-01", "t1").unwrap();
    let (rows, min, max): (i64, i64, i64) = s
        .read_blocking(|rx| {
            Ok((
                rx.rows("site_log"),
                rx.conn
                    .query_row("SELECT min(id) FROM site_log", [], |r| r.get(0))
                    .unwrap(),
                rx.conn
                    .query_row("SELECT max(id) FROM site_log", [], |r| r.get(0))
                    .unwrap(),
            ))
        })
        .unwrap();
    assert_eq!(rows, limits::SITE_LOG_ROWS_MAX as i64);
    assert_eq!((min, max), (3, limits::SITE_LOG_ROWS_MAX as i64 + 2));
    assert_eq!(
        log(&s, Some("A-01")).len(),
        2,
        "the newest changes are kept"
    );
}

#[test]
fn a_new_site_past_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, Site::new("A-01", "A"));
    // Pretend the table is full (the trigger-kept counter is what the check reads).
    let o = opts(&dir);
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    conn.execute(
        "UPDATE store_counter SET n = ?1 WHERE name = 'site'",
        [limits::SITES_MAX as i64],
    )
    .unwrap();
    drop(conn);
    let e = s
        .write_blocking(|tx| tx.site_put(&Site::new("A-02", "A"), API, 1))
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Limit {
            name: "SITES_MAX",
            value: limits::SITES_MAX as u64
        }
    );
    // Existing sites can still be replaced at the cap.
    assert!(!put(&s, Site::new("A-01", "B")));
    assert!(s.read_blocking(|rx| rx.site_get("A-02")).unwrap().is_none());
}

#[test]
fn a_version_4_database_gets_sites() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir);
    let s = inline(&dir);
    s.close();
    drop(s);
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    let fresh = site_schema(&conn);
    assert_eq!(fresh.len(), 7, "{fresh:?}");
    drop_v5(&conn);
    conn.pragma_update(None, "user_version", 4).unwrap();
    drop(conn);
    let s = inline(&dir);
    let version = s.read_blocking(|rx| Ok(rx.pragma("user_version"))).unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
    put(&s, Site::new("A-01", "A"));
    assert_eq!(s.read_blocking(|rx| rx.site_count()).unwrap(), 1);
    // The upgrade step (schema_v5.sql) and schema.sql define the same objects.
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    assert_eq!(site_schema(&conn), fresh);
}

/// (name, sql) of every schema object of the site tables.
fn site_schema(conn: &rusqlite::Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name IN ('site', 'site_log') \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn flags_change_and_gate_locking() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    put(&s, Site::new("A-01", "A"));
    let flags = |d: Option<bool>, f: Option<bool>| {
        s.write_blocking(move |tx| tx.site_set_flags("A-01", d, f, API, 4))
            .unwrap()
    };
    assert!(flags(Some(true), None));
    assert!(!flags(Some(true), None), "no change, no log row");
    assert_eq!(lock(&s, "A-01", "t1").unwrap(), LockOutcome::Disabled);
    assert!(flags(Some(false), Some(true)));
    assert_eq!(lock(&s, "A-01", "t1").unwrap(), LockOutcome::SyncFailed);
    assert!(flags(None, Some(false)));
    assert_eq!(lock(&s, "A-01", "t1").unwrap(), LockOutcome::Locked);
    let actions: Vec<_> = log(&s, Some("A-01")).into_iter().map(|e| e.1).collect();
    assert_eq!(actions, ["create", "disable", "enable", "sync-ok", "lock"]);
}

#[test]
fn a_large_write_keeps_a_bounded_set_of_live_events_ending_with_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let n = limits::SITE_EVENTS_PER_WRITE_MAX + 10;
    let (kept, newest) = s
        .write_blocking(move |tx| {
            for i in 0..n {
                tx.site_put(&Site::new(&format!("S-{i:03}"), "A"), API, 1)?;
            }
            let newest = tx.outbox_bounds()?.1;
            Ok((tx.take_site_events(), newest))
        })
        .unwrap();
    assert_eq!(kept.len(), limits::SITE_EVENTS_PER_WRITE_MAX);
    assert_eq!(kept.last().unwrap().id, newest, "the newest is always kept");
    let first: Vec<i64> = kept[..kept.len() - 1].iter().map(|e| e.id).collect();
    let want: Vec<i64> = (1..limits::SITE_EVENTS_PER_WRITE_MAX as i64).collect();
    assert_eq!(first, want, "then the first ones, in order");
    // Every event is in the outbox regardless.
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.rows("event_outbox"))).unwrap(),
        n as i64
    );
}
