//! Tests of the listing queries (`Rx::list_tasks`, `Rx::status_counts`), their query plans, and
//! the schema upgrade from version 1 that adds their indexes.

use super::queries::list_sql;
use super::tests::{inline, new_task, opts, seed};
use super::*;

/// Admits t01..t10 (seq 1..10): labels alternate "even"/"odd", created_ms is not in seq order,
/// statuses: t02, t05 running; t03, t07 finished; t09 failed; the rest queued.
fn ten_tasks(s: &Store) {
    seed(s);
    s.write_blocking(|tx| {
        for i in 1..=10i64 {
            let mut t = new_task(&format!("t{i:02}"));
            t.def_label = if i % 2 == 0 { "even" } else { "odd" }.into();
            t.created_ms = 1000 + (i * 7 % 10) * 100;
            tx.admit_task(&t, 100)?;
        }
        for (id, st) in [
            ("t02", TaskStatus::Running),
            ("t05", TaskStatus::Running),
            ("t03", TaskStatus::Finished),
            ("t07", TaskStatus::Finished),
            ("t09", TaskStatus::Failed),
        ] {
            tx.set_task_status(id, st, 0, None, 5000)?;
        }
        Ok(())
    })
    .unwrap();
}

fn list(s: &Store, f: &TaskFilter, limit: usize) -> Vec<TaskRecord> {
    let f = f.clone();
    s.read_blocking(move |rx| rx.list_tasks(&f, limit)).unwrap()
}

fn ids(v: &[TaskRecord]) -> Vec<&str> {
    v.iter().map(|r| r.id.as_str()).collect()
}

/// What `f` should select from `all`, computed in Rust.
fn expected<'a>(all: &'a [TaskRecord], f: &TaskFilter) -> Vec<&'a str> {
    all.iter()
        .filter(|r| f.status.is_none_or(|s| r.status == s))
        .filter(|r| f.def_label.as_ref().is_none_or(|l| &r.def_label == l))
        .filter(|r| f.created_from_ms.is_none_or(|t| r.created_ms >= t))
        .filter(|r| f.created_to_ms.is_none_or(|t| r.created_ms < t))
        .filter(|r| f.before_seq.is_none_or(|b| r.seq < b))
        .map(|r| r.id.as_str())
        .collect()
}

#[test]
fn list_is_newest_first_and_each_filter_works_alone_and_combined() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    ten_tasks(&s);
    let all = list(&s, &TaskFilter::default(), 100);
    let want: Vec<String> = (1..=10).rev().map(|i| format!("t{i:02}")).collect();
    assert_eq!(ids(&all), want);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));

    let status = |st| TaskFilter {
        status: Some(st),
        ..Default::default()
    };
    let label = |l: &str| TaskFilter {
        def_label: Some(l.into()),
        ..Default::default()
    };
    let range = |from, to| TaskFilter {
        created_from_ms: from,
        created_to_ms: to,
        ..Default::default()
    };
    // Alone, with explicit expectations.
    let got = list(&s, &status(TaskStatus::Running), 100);
    assert_eq!(ids(&got), ["t05", "t02"]);
    assert_eq!(ids(&list(&s, &status(TaskStatus::Paused), 100)), [""; 0]);
    let got = list(&s, &label("even"), 100);
    assert_eq!(ids(&got), ["t10", "t08", "t06", "t04", "t02"]);
    // created_ms: t01 1700, t02 1400, t03 1100, t04 1800, t05 1500, t06 1200, t07 1900,
    // t08 1600, t09 1300, t10 1000. From inclusive, to exclusive.
    let got = list(&s, &range(Some(1300), Some(1600)), 100);
    assert_eq!(ids(&got), ["t09", "t05", "t02"]);
    let got = list(&s, &range(Some(1800), None), 100);
    assert_eq!(ids(&got), ["t07", "t04"]);
    let got = list(&s, &range(None, Some(1100)), 100);
    assert_eq!(ids(&got), ["t10"]);
    let cursor = TaskFilter {
        before_seq: Some(4),
        ..Default::default()
    };
    assert_eq!(ids(&list(&s, &cursor, 100)), ["t03", "t02", "t01"]);
    // Combined (AND).
    let f = TaskFilter {
        status: Some(TaskStatus::Queued),
        def_label: Some("even".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(&s, &f, 100)), ["t10", "t08", "t06", "t04"]);
    let f = TaskFilter {
        def_label: Some("odd".into()),
        created_from_ms: Some(1300),
        created_to_ms: Some(1800),
        ..Default::default()
    };
    assert_eq!(ids(&list(&s, &f, 100)), ["t09", "t05", "t01"]);
    let f = TaskFilter {
        status: Some(TaskStatus::Finished),
        def_label: Some("odd".into()),
        created_from_ms: Some(1000),
        created_to_ms: Some(2000),
        before_seq: Some(7),
    };
    assert_eq!(ids(&list(&s, &f, 100)), ["t03"]);
    // Every combination of filters agrees with a filter computed in Rust.
    let statuses = [None, Some(TaskStatus::Queued), Some(TaskStatus::Finished)];
    let labels = [None, Some("odd"), Some("even")];
    let froms = [None, Some(1200)];
    let tos = [None, Some(1700)];
    let befores = [None, Some(8)];
    let mut checked = 0;
    for st in statuses {
        for l in labels {
            for from in froms {
                for to in tos {
                    for b in befores {
                        let f = TaskFilter {
                            status: st,
                            def_label: l.map(String::from),
                            created_from_ms: from,
                            created_to_ms: to,
                            before_seq: b,
                        };
                        assert_eq!(ids(&list(&s, &f, 100)), expected(&all, &f), "{f:?}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 72);
}

#[test]
fn limit_is_respected_and_unknown_label_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    ten_tasks(&s);
    assert_eq!(
        ids(&list(&s, &TaskFilter::default(), 4)),
        ["t10", "t09", "t08", "t07"]
    );
    assert_eq!(list(&s, &TaskFilter::default(), 1).len(), 1);
    assert!(list(&s, &TaskFilter::default(), 0).is_empty());
    let odd = TaskFilter {
        def_label: Some("odd".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(&s, &odd, 2)), ["t09", "t07"]);
    let unknown = TaskFilter {
        def_label: Some("no such flow".into()),
        ..Default::default()
    };
    assert!(list(&s, &unknown, 100).is_empty());
    // A label that looks like SQL is just a value.
    let tricky = TaskFilter {
        def_label: Some("x' OR '1'='1".into()),
        ..Default::default()
    };
    assert!(list(&s, &tricky, 100).is_empty());
    // Empty store: empty list.
    let dir2 = tempfile::tempdir().unwrap();
    let empty = inline(&dir2);
    assert!(list(&empty, &TaskFilter::default(), 10).is_empty());
}

#[test]
fn cursor_paging_walks_every_record_once_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    ten_tasks(&s);
    let all = list(&s, &TaskFilter::default(), 100);
    for base in [
        TaskFilter::default(),
        TaskFilter {
            def_label: Some("odd".into()),
            ..Default::default()
        },
        TaskFilter {
            status: Some(TaskStatus::Queued),
            ..Default::default()
        },
    ] {
        let mut walked: Vec<TaskRecord> = Vec::new();
        let mut f = base.clone();
        let mut pages = 0;
        loop {
            let page = list(&s, &f, 3);
            assert!(page.len() <= 3);
            pages += 1;
            let Some(last) = page.last() else { break };
            f.before_seq = Some(last.seq);
            let short = page.len() < 3;
            walked.extend(page);
            if short {
                break;
            }
        }
        let want = expected(&all, &base);
        assert_eq!(ids(&walked), want, "{base:?}");
        assert!(pages >= want.len().div_ceil(3));
        let mut seen: Vec<i64> = walked.iter().map(|r| r.seq).collect();
        seen.dedup();
        assert_eq!(seen.len(), walked.len(), "no record twice");
    }
}

#[test]
fn status_counts_include_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let empty = s.read_blocking(|rx| rx.status_counts()).unwrap();
    assert_eq!(
        empty,
        TaskStatus::ALL
            .iter()
            .map(|&st| (st, 0))
            .collect::<Vec<_>>()
    );
    ten_tasks(&s);
    let counts = s.read_blocking(|rx| rx.status_counts()).unwrap();
    assert_eq!(
        counts,
        vec![
            (TaskStatus::Queued, 5),
            (TaskStatus::Running, 2),
            (TaskStatus::Paused, 0),
            (TaskStatus::Finished, 2),
            (TaskStatus::Failed, 1),
            (TaskStatus::Interrupted, 0),
            (TaskStatus::Stopped, 0),
        ]
    );
}

impl Rx<'_> {
    /// The `EXPLAIN QUERY PLAN` detail lines of `list_tasks` for `f`.
    fn list_plan(&self, f: &TaskFilter) -> Vec<String> {
        let (sql, values) = list_sql(f, 50);
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    fn index_names(&self) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }
}

#[test]
fn list_queries_use_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    ten_tasks(&s);
    let cases: Vec<(TaskFilter, &str)> = vec![
        (TaskFilter::default(), "sqlite_autoindex_task_record"),
        (
            TaskFilter {
                before_seq: Some(5),
                ..Default::default()
            },
            "sqlite_autoindex_task_record",
        ),
        (
            TaskFilter {
                status: Some(TaskStatus::Finished),
                ..Default::default()
            },
            "task_record_status_seq",
        ),
        (
            TaskFilter {
                status: Some(TaskStatus::Finished),
                before_seq: Some(5),
                ..Default::default()
            },
            "task_record_status_seq",
        ),
        (
            TaskFilter {
                def_label: Some("odd".into()),
                ..Default::default()
            },
            "task_record_label_seq",
        ),
        (
            TaskFilter {
                created_from_ms: Some(1000),
                created_to_ms: Some(1500),
                ..Default::default()
            },
            "task_record_created",
        ),
    ];
    for (f, index) in cases {
        let plan = s.read_blocking(|rx| Ok(rx.list_plan(&f))).unwrap();
        let text = plan.join(" | ");
        assert!(
            plan.iter()
                .any(|l| l.contains("task_record") && l.contains(index)),
            "{f:?}: {text}"
        );
        assert!(
            !plan.iter().any(|l| l.trim() == "SCAN task_record"),
            "{f:?}: {text}"
        );
        // Newest first straight off the seq-ordered indexes: no sort step.
        if f.created_from_ms.is_none() {
            assert!(!text.contains("TEMP B-TREE"), "{f:?}: {text}");
        }
    }
}

const NEW_INDEXES: [&str; 3] = [
    "task_record_created",
    "task_record_label_seq",
    "task_record_status_seq",
];

#[test]
fn a_version_1_database_upgrades_to_the_current_version_with_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir);
    // What a fresh database looks like at the current version.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = inline(&fresh_dir);
    let fresh_indexes = fresh.read_blocking(|rx| Ok(rx.index_names())).unwrap();
    fresh.close();
    for name in NEW_INDEXES {
        assert!(fresh_indexes.iter().any(|n| n == name), "{name}");
    }
    // Build a version-1 database: the current schema without version 2's indexes.
    let s = inline(&dir);
    ten_tasks(&s);
    let before = list(&s, &TaskFilter::default(), 100);
    s.close();
    drop(s);
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    for name in NEW_INDEXES {
        conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
    super::tests_sites::drop_v5(&conn);
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);

    let s = inline(&dir);
    let (version, indexes) = s
        .read_blocking(|rx| Ok((rx.pragma("user_version"), rx.index_names())))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
    assert_eq!(indexes, fresh_indexes);
    let after = list(&s, &TaskFilter::default(), 100);
    assert_eq!(after.len(), 10);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(
            (&a.id, a.seq, &a.def_label, a.status, a.created_ms),
            (&b.id, b.seq, &b.def_label, b.status, b.created_ms)
        );
    }
    assert_eq!(
        s.read_blocking(|rx| rx.status_counts()).unwrap()[0],
        (TaskStatus::Queued, 5)
    );
    // The upgraded database still admits (seq counter intact) and lists by the new indexes.
    let t = new_task("t11");
    let admitted = s.write_blocking(move |tx| tx.admit_task(&t, 100)).unwrap();
    assert!(matches!(admitted, Admit::Inserted { seq: 11 }));
    let odd = TaskFilter {
        def_label: Some("odd".into()),
        ..Default::default()
    };
    let plan = s.read_blocking(|rx| Ok(rx.list_plan(&odd))).unwrap();
    assert!(plan.join(" ").contains("task_record_label_seq"), "{plan:?}");
    // Opening again is a no-op.
    s.close();
    drop(s);
    let s = inline(&dir);
    assert_eq!(
        s.read_blocking(|rx| Ok(rx.pragma("user_version"))).unwrap(),
        SCHEMA_VERSION.to_string()
    );
}

/// A store with ten tasks made to look like schema `version` (`undo` drops what the steps
/// after it added besides the site tables), then opened again: upgraded to `SCHEMA_VERSION`.
fn upgraded_from(dir: &tempfile::TempDir, version: i64, undo: &str) -> Store {
    let s = inline(dir);
    ten_tasks(&s);
    s.close();
    drop(s);
    let conn = rusqlite::Connection::open(&opts(dir).path).unwrap();
    conn.execute_batch(undo).unwrap();
    super::tests_sites::drop_v5(&conn);
    conn.pragma_update(None, "user_version", version).unwrap();
    drop(conn);
    let s = inline(dir);
    let now = s.read_blocking(|rx| Ok(rx.pragma("user_version"))).unwrap();
    assert_eq!(now, SCHEMA_VERSION.to_string());
    s
}

#[test]
fn a_version_2_database_gets_the_event_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let s = upgraded_from(&dir, 2, "DROP TABLE event_outbox");
    let e = s
        .write_blocking(|tx| tx.outbox_append("task", Some("t"), "{}", 1))
        .unwrap();
    assert_eq!(e.id, 1);
    assert_eq!(
        list(&s, &TaskFilter::default(), 100).len(),
        10,
        "data intact"
    );
}

#[test]
fn a_version_3_database_gets_webhook_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let s = upgraded_from(&dir, 3, "DROP TABLE webhook_cursor");
    s.write_blocking(|tx| tx.set_webhook_cursor("http://h:1/", 3))
        .unwrap();
    let got = s.read_blocking(|rx| rx.webhook_cursor("http://h:1/"));
    assert_eq!(got.unwrap(), Some(3));
    assert_eq!(list(&s, &TaskFilter::default(), 100).len(), 10);
}
