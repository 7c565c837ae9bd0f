//! Store tests: opening, pragmas, definitions, tasks, records, cache, and the writer's modes.

use super::*;

pub(super) fn opts(dir: &tempfile::TempDir) -> StoreOptions {
    StoreOptions::new(dir.path().join("sub").join("vwed.db"))
}

pub(super) fn inline(dir: &tempfile::TempDir) -> Store {
    let mut o = opts(dir);
    o.writer = WriterMode::Inline;
    Store::open(o).unwrap()
}

pub(super) fn new_def(id: &str, label: &str, body: &str) -> NewDefinition {
    NewDefinition {
        id: id.into(),
        label: label.into(),
        body: body.into(),
        periodic: false,
        if_enable: false,
        period_ms: 0,
        delay_ms: 0,
        release_sites: true,
        release_always: false,
        now_ms: 1,
    }
}

pub(super) fn new_task(id: &str) -> NewTask {
    NewTask {
        id: id.into(),
        def_id: "d1".into(),
        def_label: "flow".into(),
        def_version: 1,
        priority: 0,
        level: 0,
        input_params: "[]".into(),
        request_hash: Some(format!("h-{id}")),
        created_ms: 10,
        parent_id: None,
        root_id: None,
        periodic: false,
    }
}

/// Saves definition d1 so tasks can pin it.
pub(super) fn seed(store: &Store) {
    store
        .write_blocking(|tx| tx.save_definition(&new_def("d1", "flow", "{}")))
        .unwrap();
}

impl Rx<'_> {
    pub(super) fn rows(&self, table: &str) -> i64 {
        self.conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
    pub(super) fn pragma(&self, name: &str) -> String {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    }
}

#[test]
fn open_close_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(opts(&dir)).unwrap();
    seed(&store);
    store
        .write_blocking(|tx| tx.cache_set("k", "v", 5))
        .unwrap();
    store.close();
    drop(store);
    let store = Store::open(opts(&dir)).unwrap();
    let v = store.read_blocking(|rx| rx.cache_get("k")).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    assert_eq!(
        store
            .read_blocking(|rx| rx.definition("d1"))
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert!(Store::sqlite_version() >= "3.51.3");
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir);
    Store::open(o.clone()).unwrap().close();
    let conn = rusqlite::Connection::open(&o.path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(o).err().unwrap();
    assert_eq!(
        err,
        StoreError::SchemaTooNew {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
    assert!(err.to_string().contains("newer"));
}

#[test]
fn pragmas_are_in_effect_on_writer_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(opts(&dir)).unwrap();
    let check = |rx: &Rx<'_>| {
        assert_eq!(rx.pragma("journal_mode"), "wal");
        assert_eq!(rx.pragma("synchronous"), "2");
        assert_eq!(rx.pragma("foreign_keys"), "1");
        assert_eq!(rx.pragma("mmap_size"), "0");
        assert_eq!(
            rx.pragma("cache_size"),
            format!("-{}", limits::SQLITE_CACHE_KIB)
        );
        assert_eq!(
            rx.pragma("busy_timeout"),
            limits::BUSY_TIMEOUT_MS.to_string()
        );
        let jsl = limits::SQLITE_JOURNAL_SIZE_LIMIT_BYTES.to_string();
        assert_eq!(rx.pragma("journal_size_limit"), jsl);
        assert_eq!(rx.pragma("user_version"), SCHEMA_VERSION.to_string());
    };
    store
        .write_blocking(move |tx| {
            check(tx);
            assert_eq!(tx.pragma("query_only"), "0");
            Ok(())
        })
        .unwrap();
    store
        .read_blocking(|rx| {
            check(rx);
            assert_eq!(rx.pragma("query_only"), "1");
            assert_eq!(
                rx.pragma("hard_heap_limit"),
                limits::SQLITE_HARD_HEAP_LIMIT_BYTES.to_string()
            );
            Ok(())
        })
        .unwrap();
    let mut o = opts(&dir);
    o.synchronous_full = false;
    store.close();
    let store = Store::open(o).unwrap();
    assert_eq!(
        store
            .read_blocking(|rx| Ok(rx.pragma("synchronous")))
            .unwrap(),
        "1"
    );
}

#[test]
fn definition_versioning() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let save = |d: NewDefinition| s.write_blocking(move |tx| tx.save_definition(&d));
    let a = save(new_def("d1", "flow", "{\"v\":1}")).unwrap();
    assert_eq!((a.version, a.changed), (1, true));
    let b = save(new_def("d1", "flow", "{\"v\":1}")).unwrap();
    assert_eq!((b.version, b.changed), (1, false));
    let c = save(new_def("d1", "flow", "{\"v\":2}")).unwrap();
    assert_eq!((c.version, c.changed), (2, true));
    let mut flags = new_def("d1", "flow", "{\"v\":2}");
    flags.periodic = true;
    assert_eq!(save(flags).unwrap().version, 3);
    let old = s
        .read_blocking(|rx| rx.definition_version("d1", 1))
        .unwrap()
        .unwrap();
    assert_eq!(old.body, "{\"v\":1}");
    let cur = s
        .read_blocking(|rx| rx.definition_by_label("flow"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (cur.version, cur.body.as_str(), cur.periodic),
        (3, "{\"v\":2}", true)
    );
    let versions = s.read_blocking(|rx| rx.definition_versions("d1")).unwrap();
    assert_eq!(
        versions.iter().map(|v| v.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        s.read_blocking(|rx| rx.periodic_definitions())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn definition_labels_enable_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let save = |d: NewDefinition| s.write_blocking(move |tx| tx.save_definition(&d));
    save(new_def("d1", "flow", "{\"v\":1}")).unwrap();
    save(new_def("d1", "flow", "{\"v\":2}")).unwrap();
    // Label conflict names the label.
    let err = save(new_def("d2", "flow", "{}")).unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("flow")),
        "{err}"
    );
    // Enable toggle, then delete frees the label; old versions stay readable.
    assert!(s
        .write_blocking(|tx| tx.set_definition_enabled("d1", true))
        .unwrap());
    assert!(
        s.read_blocking(|rx| rx.definition("d1"))
            .unwrap()
            .unwrap()
            .if_enable
    );
    assert!(s.write_blocking(|tx| tx.delete_definition("d1")).unwrap());
    assert!(!s.write_blocking(|tx| tx.delete_definition("d1")).unwrap());
    assert!(s
        .read_blocking(|rx| rx.definition_by_label("flow"))
        .unwrap()
        .is_none());
    assert!(s
        .read_blocking(|rx| rx.definition_version("d1", 2))
        .unwrap()
        .is_some());
    assert_eq!(save(new_def("d2", "flow", "{}")).unwrap().version, 1);
    assert_eq!(s.read_blocking(|rx| rx.definitions(10)).unwrap().len(), 1);
    // Body size is bounded.
    let big = "x".repeat(limits::DEFINITION_BYTES_MAX + 1);
    let err = save(new_def("d3", "big", &big)).unwrap_err();
    assert!(matches!(
        err,
        StoreError::Limit {
            name: "DEFINITION_BYTES_MAX",
            ..
        }
    ));
}

#[test]
fn admission_is_idempotent_and_bounded_by_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let admit = |id: &str, max: usize| {
        let t = new_task(id);
        s.write_blocking(move |tx| tx.admit_task(&t, max)).unwrap()
    };
    assert!(matches!(admit("t1", 3), Admit::Inserted { seq: 1 }));
    assert!(matches!(admit("t2", 3), Admit::Inserted { seq: 2 }));
    match admit("t1", 3) {
        Admit::Existing(r) => assert_eq!((r.seq, r.request_hash.as_deref()), (1, Some("h-t1"))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(admit("t3", 3), Admit::Inserted { seq: 3 }));
    for id in ["t4", "t5"] {
        assert!(matches!(admit(id, 3), Admit::BacklogFull { limit: 3 }));
    }
    assert!(s.read_blocking(|rx| rx.task("t4")).unwrap().is_none());
    // Running tasks leave the backlog: admission works again, seq keeps growing.
    s.write_blocking(|tx| tx.set_task_status("t1", TaskStatus::Running, 0, None, 20))
        .unwrap();
    assert!(matches!(admit("t4", 3), Admit::Inserted { seq: 4 }));
    let q = s.read_blocking(|rx| rx.queued_in_level(0, 2, 10)).unwrap();
    assert_eq!(
        q.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["t3", "t4"]
    );
    assert_eq!(s.read_blocking(|rx| rx.queued_levels()).unwrap(), vec![0]);
    assert_eq!(
        s.read_blocking(|rx| rx.active_count_for_definition("d1"))
            .unwrap(),
        4
    );
    let counts = s.read_blocking(|rx| rx.count_by_status()).unwrap();
    assert!(counts.contains(&("queued".into(), 3)) && counts.contains(&("running".into(), 1)));
    // An unknown definition version is refused by the foreign key.
    let mut bad = new_task("t9");
    bad.def_version = 7;
    let err = s
        .write_blocking(move |tx| tx.admit_task(&bad, 100))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

#[test]
fn status_transitions_set_start_and_end_times() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let t = new_task("t1");
    s.write_blocking(move |tx| tx.admit_task(&t, 10)).unwrap();
    let set = |st: TaskStatus, now: i64, why: Option<&'static str>| {
        s.write_blocking(move |tx| tx.set_task_status("t1", st, 1000, why, now))
            .unwrap()
    };
    assert!(set(TaskStatus::Running, 100, None));
    assert!(set(TaskStatus::Paused, 150, None));
    assert!(set(TaskStatus::Running, 200, None));
    let r = s.read_blocking(|rx| rx.task("t1")).unwrap().unwrap();
    assert_eq!(
        (r.status, r.started_ms, r.ended_ms),
        (TaskStatus::Running, Some(100), None)
    );
    assert!(set(TaskStatus::Failed, 300, Some("robot lost")));
    let r = s.read_blocking(|rx| rx.task("t1")).unwrap().unwrap();
    assert_eq!(
        (r.ended_ms, r.ended_reason.as_deref()),
        (Some(300), Some("robot lost"))
    );
    assert!(set(TaskStatus::Running, 400, None)); // retry
    assert_eq!(
        s.read_blocking(|rx| rx.task("t1"))
            .unwrap()
            .unwrap()
            .ended_ms,
        None
    );
    assert!(set(TaskStatus::Finished, 500, None));
    let missing = s.write_blocking(|tx| tx.set_task_status("no", TaskStatus::Running, 0, None, 1));
    assert!(!missing.unwrap());
}

#[test]
fn task_fields_priority_and_manual_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let t = new_task("t1");
    s.write_blocking(move |tx| tx.admit_task(&t, 10)).unwrap();
    s.write_blocking(|tx| tx.set_task_status("t1", TaskStatus::Running, 0, None, 100))
        .unwrap();
    s.write_blocking(|tx| tx.set_task_status("t1", TaskStatus::Finished, 0, None, 500))
        .unwrap();
    let fields = TaskFields {
        variables: Some("{\"a\":1}".into()),
        state_description: Some("x".repeat(limits::STATE_DESCRIPTION_BYTES_MAX + 10)),
        out_order_no: Some("OUT-1".into()),
    };
    s.write_blocking(move |tx| tx.set_task_fields("t1", &fields))
        .unwrap();
    s.write_blocking(|tx| tx.set_task_priority("t1", 5, 2))
        .unwrap();
    s.write_blocking(|tx| tx.set_manual_end("t1")).unwrap();
    let r = s.read_blocking(|rx| rx.task("t1")).unwrap().unwrap();
    assert_eq!(
        (r.status, r.ended_ms, r.started_ms),
        (TaskStatus::Finished, Some(500), Some(100))
    );
    assert_eq!((r.priority, r.level, r.manual_end), (5, 2, true));
    assert_eq!(r.variables, "{\"a\":1}");
    assert!(r.state_description.unwrap().len() <= limits::STATE_DESCRIPTION_BYTES_MAX);
    assert_eq!(
        s.read_blocking(|rx| rx.tasks_by_out_order_no("OUT-1"))
            .unwrap(),
        vec!["t1"]
    );
    let done = s
        .read_blocking(|rx| rx.tasks_with_status(TaskStatus::Finished, 10))
        .unwrap();
    assert_eq!(done.len(), 1);
    let big = TaskFields {
        variables: Some("x".repeat(limits::VARIABLES_BYTES_MAX + 1)),
        ..Default::default()
    };
    let err = s
        .write_blocking(move |tx| tx.set_task_fields("t1", &big))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Limit {
            name: "VARIABLES_BYTES_MAX",
            ..
        }
    ));
}

pub(super) fn start(task: &str, seq: i64, name: &str) -> BlockStart {
    BlockStart {
        task_id: task.into(),
        seq,
        block_id: seq,
        block_name: name.into(),
        block_type: "ScriptBp".into(),
        iteration: String::new(),
        inputs: Some("{}".into()),
        started_ms: seq * 10,
    }
}

#[test]
fn block_records_checkpoints_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let t = new_task("t1");
    s.write_blocking(move |tx| tx.admit_task(&t, 10)).unwrap();
    s.write_blocking(|tx| {
        tx.block_started(&start("t1", 1, "b1"))?;
        tx.block_ended("t1", 1, 1, Some("ok"), Some("{\"out\":1}"), 15)?;
        tx.block_started(&start("t1", 1, "b1-again"))?; // replay after recovery replaces
        tx.block_started(&start("t1", 2, "b2"))?;
        assert!(tx.block_status("t1", 2, 7, Some("waiting"))?);
        assert!(!tx.block_ended("t1", 9, 1, None, None, 1)?);
        let big = "y".repeat(limits::RECORD_VALUE_BYTES_MAX * 2);
        tx.block_ended("t1", 2, 1, None, Some(&big), 30)?;
        tx.put_checkpoint("t1", "{\"cursor\":2}", 30)?;
        tx.task_log("t1", Some("b1"), 1, "first", 10)?;
        tx.task_log(
            "t1",
            None,
            2,
            &"z".repeat(limits::LOG_LINE_BYTES_MAX * 2),
            20,
        )?;
        tx.task_log("t1", None, 1, "third", 30)
    })
    .unwrap();
    let recs = s.read_blocking(|rx| rx.block_records("t1", 10)).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (
            recs[0].block_name.as_str(),
            recs[0].ended_ms,
            recs[0].status
        ),
        ("b1-again", None, BLOCK_STATUS_STARTED)
    );
    assert_eq!((recs[1].status, recs[1].ended_ms), (1, Some(30)));
    assert!(recs[1].outputs.as_ref().unwrap().len() <= limits::RECORD_VALUE_BYTES_MAX);
    let cp = s.read_blocking(|rx| rx.checkpoint("t1")).unwrap();
    assert_eq!(cp.as_deref(), Some("{\"cursor\":2}"));
    let logs = s.read_blocking(|rx| rx.task_logs("t1", 2)).unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs[0].message.len() <= limits::LOG_LINE_BYTES_MAX && logs[1].message == "third");
    s.write_blocking(|tx| {
        for seq in 3..=10 {
            tx.block_started(&start("t1", seq, "b"))?;
        }
        assert_eq!(tx.prune_task_block_records("t1", 3)?, 7);
        tx.delete_checkpoint("t1")
    })
    .unwrap();
    let seqs: Vec<i64> = s
        .read_blocking(|rx| rx.block_records("t1", 10))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![8, 9, 10]);
    assert!(s.read_blocking(|rx| rx.checkpoint("t1")).unwrap().is_none());
}

#[test]
fn oversized_checkpoints_and_records_of_unknown_tasks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let t = new_task("t1");
    s.write_blocking(move |tx| tx.admit_task(&t, 10)).unwrap();
    let huge = "c".repeat(limits::CHECKPOINT_BYTES_MAX + 1);
    let err = s
        .write_blocking(move |tx| tx.put_checkpoint("t1", &huge, 1))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Limit {
            name: "CHECKPOINT_BYTES_MAX",
            ..
        }
    ));
    // A record for an unknown task is refused.
    let err = s
        .write_blocking(|tx| tx.block_started(&start("ghost", 1, "b")))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
}

#[test]
fn cache_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let big = "v".repeat(limits::CACHE_VALUE_BYTES_MAX + 1);
    let err = s
        .write_blocking(move |tx| tx.cache_set("k", &big, 1))
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Limit {
            name: "CACHE_VALUE_BYTES_MAX",
            value: limits::CACHE_VALUE_BYTES_MAX as u64
        }
    );
    s.write_blocking(|tx| {
        for i in 0..limits::CACHE_ENTRIES_MAX {
            tx.cache_set(&format!("k{i:05}"), "v", 1)?;
        }
        Ok(())
    })
    .unwrap();
    let err = s
        .write_blocking(|tx| tx.cache_set("one-more", "v", 2))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Limit {
            name: "CACHE_ENTRIES_MAX",
            ..
        }
    ));
    // Overwrite and delete still work at the limit; a delete makes room.
    s.write_blocking(|tx| tx.cache_set("k00000", "new", 3))
        .unwrap();
    assert!(s.write_blocking(|tx| tx.cache_delete("k00001")).unwrap());
    s.write_blocking(|tx| tx.cache_set("one-more", "v", 4))
        .unwrap();
    assert_eq!(
        s.read_blocking(|rx| rx.cache_get("k00000"))
            .unwrap()
            .as_deref(),
        Some("new")
    );
    let all = s.read_blocking(|rx| rx.cache_all(3)).unwrap();
    assert_eq!(all[0], ("k00000".to_string(), "new".to_string(), 3));
    let n = s
        .read_blocking(|rx| Ok((rx.cache_len()?, rx.rows("data_cache"))))
        .unwrap();
    assert_eq!(
        n,
        (
            limits::CACHE_ENTRIES_MAX as i64,
            limits::CACHE_ENTRIES_MAX as i64
        )
    );
}
