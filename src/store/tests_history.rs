//! Store tests: history pruning, Inline mode, close, group commit, the writer queue bound, read concurrency, and
//! printed throughput figures.

use super::tests::{inline, new_task, opts, seed, start};
use super::*;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

fn finish(s: &Store, id: &str, ended_ms: i64) {
    let id = id.to_string();
    s.write_blocking(move |tx| {
        let t = new_task(&id);
        tx.admit_task(&t, usize::MAX)?;
        tx.set_task_status(&id, TaskStatus::Finished, 0, None, ended_ms)?;
        tx.block_started(&start(&id, 1, "b"))?;
        tx.task_log(&id, None, 1, "line", ended_ms)?;
        tx.put_checkpoint(&id, "{}", ended_ms)
    })
    .unwrap();
}

fn caps(task_rows: usize, block_record_rows: usize, task_log_rows: usize) -> HistoryCaps {
    HistoryCaps {
        task_rows,
        block_record_rows,
        task_log_rows,
        periodic_retention_ms: i64::MAX,
        outbox_rows: usize::MAX >> 1,
    }
}

#[test]
fn ended_periodic_runs_are_pruned_after_their_retention() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    for (id, periodic, ended) in [
        ("old-periodic", true, now - 25 * hour),
        ("new-periodic", true, now - hour),
        ("old-normal", false, now - 25 * hour),
    ] {
        let id = id.to_string();
        s.write_blocking(move |tx| {
            let mut t = new_task(&id);
            t.periodic = periodic;
            tx.admit_task(&t, usize::MAX)?;
            tx.set_task_status(&id, TaskStatus::Finished, 1003, None, ended)?;
            tx.task_log(&id, None, 1, "line", ended)
        })
        .unwrap();
    }
    let mut c = caps(1000, 1000, 1000);
    c.periodic_retention_ms = 24 * hour;
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 10))
        .unwrap();
    assert_eq!((r.tasks, r.task_logs, r.more), (1, 1, false));
    let left: Vec<String> = s
        .read_blocking(|rx| rx.tasks_with_status(TaskStatus::Finished, 10))
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, vec!["new-periodic", "old-normal"]);
}

#[test]
fn pruning_removes_only_the_oldest_terminal_tasks_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    // Ended in reverse admission order: t9 ended first, so it is the oldest history.
    for i in 0..10 {
        finish(&s, &format!("t{i}"), 1000 - i);
    }
    let t = new_task("queued");
    s.write_blocking(move |tx| tx.admit_task(&t, 100)).unwrap();
    let c = caps(4, 1000, 1000);
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 4))
        .unwrap();
    assert_eq!(
        (r.tasks, r.block_records, r.task_logs, r.checkpoints, r.more),
        (4, 4, 4, 4, true)
    );
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 4))
        .unwrap();
    assert_eq!((r.tasks, r.more), (2, false));
    let left = s
        .read_blocking(|rx| rx.tasks_with_status(TaskStatus::Finished, 100))
        .unwrap();
    let ids: Vec<&str> = left.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["t0", "t1", "t2", "t3"]);
    assert!(s.read_blocking(|rx| rx.task("queued")).unwrap().is_some());
    let rows = s
        .read_blocking(|rx| {
            Ok([
                rx.rows("block_record"),
                rx.rows("task_log"),
                rx.rows("task_checkpoint"),
            ])
        })
        .unwrap();
    assert_eq!(rows, [4, 4, 4]);
    assert_counters_match(&s);
}

#[test]
fn pruning_caps_block_records_and_logs_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    let t = new_task("t1");
    s.write_blocking(move |tx| {
        tx.admit_task(&t, 10)?;
        for seq in 1..=20 {
            tx.block_started(&start("t1", seq, "b"))?;
            tx.task_log("t1", None, 1, &format!("m{seq}"), seq)?;
        }
        Ok(())
    })
    .unwrap();
    let c = caps(100, 12, 5);
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 6))
        .unwrap();
    assert_eq!((r.block_records, r.task_logs, r.more), (6, 6, true));
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 6))
        .unwrap();
    assert_eq!((r.block_records, r.task_logs, r.more), (2, 6, true));
    let r = s
        .write_blocking(move |tx| tx.prune_history_with(&c, 6))
        .unwrap();
    assert_eq!((r.block_records, r.task_logs, r.more), (0, 3, false));
    let seqs: Vec<i64> = s
        .read_blocking(|rx| rx.block_records("t1", 100))
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .collect();
    assert_eq!(seqs, (9..=20).collect::<Vec<_>>());
    let logs = s.read_blocking(|rx| rx.task_logs("t1", 100)).unwrap();
    let msgs: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(msgs, vec!["m16", "m17", "m18", "m19", "m20"]);
    assert_counters_match(&s);
}

#[test]
fn the_writer_prunes_every_n_commits_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&dir);
    o.history_caps = caps(3, 1000, 1000);
    o.prune_every_commits = 5;
    let s = Store::open(o).unwrap();
    seed(&s);
    for i in 0..12 {
        finish(&s, &format!("t{i:02}"), i);
    }
    // 13 commits: passes after commit 5 and 10 (commits 1..=5 include the seed).
    let st = s.stats();
    assert_eq!(st.prune_passes, 2);
    for _ in 0..5 {
        s.write_blocking(|_| Ok(())).unwrap();
    }
    let n = s
        .read_blocking(|rx| rx.status_count(TaskStatus::Finished))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(s.stats().pruned_tasks, 9);
}

/// Trigger-kept counters equal real counts.
fn assert_counters_match(s: &Store) {
    s.read_blocking(|rx| {
        for st in TaskStatus::ALL {
            let real: i64 = rx.conn.query_row(
                "SELECT count(*) FROM task_record WHERE status = ?1",
                [st.as_str()],
                |r| r.get(0),
            )?;
            assert_eq!(rx.status_count(st)?, real, "{st}");
        }
        for t in ["block_record", "task_log", "data_cache"] {
            assert_eq!(rx.counter(t)?, rx.rows(t), "{t}");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn cascade_deletes_keep_counters_right() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    finish(&s, "t1", 5);
    s.write_blocking(|tx| {
        Ok(tx
            .conn
            .execute("DELETE FROM task_record WHERE id = 't1'", [])?)
    })
    .unwrap();
    assert_counters_match(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_answers_every_job_in_fewer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let mut handles = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |tx| tx.cache_set(&format!("k{i}"), "v", i).map(|_| i))
                .await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap().unwrap(), i as i64);
    }
    let st = s.stats();
    assert_eq!(st.jobs, 200);
    assert!(st.commits < 200, "{st:?}");
    assert!(st.largest_batch > 1 && st.largest_batch <= limits::GROUP_COMMIT_MAX);
    assert_eq!(s.read(|rx| rx.cache_len()).await.unwrap(), 200);
    println!(
        "group commit: 200 jobs in {} commits, largest batch {}",
        st.commits, st.largest_batch
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_does_not_lose_the_others_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let release = block_writer(&s);
    let mut handles = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |tx| {
                tx.cache_set(&format!("k{i}"), "v", 1)?;
                if i == 5 {
                    return Err(StoreError::Conflict("job 5 fails".into()));
                }
                Ok(i)
            })
            .await
        }));
    }
    while s.stats().writer_queue_len < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    release.send(()).unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.unwrap();
        if i == 5 {
            assert_eq!(r.unwrap_err(), StoreError::Conflict("job 5 fails".into()));
        } else {
            assert_eq!(r.unwrap(), i);
        }
    }
    assert_eq!(s.read(|rx| rx.cache_len()).await.unwrap(), 9);
    assert!(s.read(|rx| rx.cache_get("k5")).await.unwrap().is_none());
    let st = s.stats();
    assert_eq!((st.largest_batch, st.failed_jobs, st.commits), (10, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_makes_senders_wait() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let release = block_writer(&s);
    let cap = limits::WRITER_QUEUE_MAX;
    let mut handles = Vec::new();
    for i in 0..cap + 20 {
        let s = s.clone();
        handles.push(tokio::spawn(async move { s.write(move |_| Ok(i)).await }));
    }
    while s.stats().writer_queue_len < cap {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The queue holds exactly its capacity; the rest wait in `send`, nothing grows.
    let late = tokio::time::timeout(Duration::from_millis(100), s.write(|_| Ok(()))).await;
    assert!(late.is_err(), "a write got through a full queue");
    let st = s.stats();
    assert_eq!((st.writer_queue_len, st.writer_queue_capacity), (cap, cap));
    assert_eq!(handles.iter().filter(|h| h.is_finished()).count(), 0);
    release.send(()).unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap().unwrap(), i);
    }
    assert_eq!(s.stats().writer_queue_len, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drains_queued_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let release = block_writer(&s);
    let mut handles = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |tx| tx.cache_set(&format!("k{i}"), "v", 1))
                .await
        }));
    }
    while s.stats().writer_queue_len < 50 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let s2 = s.clone();
    let closer = std::thread::spawn(move || s2.close());
    std::thread::sleep(Duration::from_millis(20));
    release.send(()).unwrap();
    closer.join().unwrap();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    drop(s);
    let s = Store::open(opts(&dir)).unwrap();
    assert_eq!(s.read(|rx| rx.cache_len()).await.unwrap(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_concurrently_up_to_the_pool_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let size = limits::READ_POOL_SIZE as usize;
    // Every read waits at a barrier of `size`: it only opens if `size` reads run at once.
    let barrier = Arc::new(std::sync::Barrier::new(size));
    let mut handles = Vec::new();
    for _ in 0..size * 3 {
        let (s, b) = (s.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            s.read(move |rx| {
                b.wait();
                rx.cache_len()
            })
            .await
        }));
    }
    for h in handles {
        tokio::time::timeout(Duration::from_secs(20), h)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let st = s.stats();
    assert_eq!(
        (st.reads_in_use_peak, st.read_pool_size, st.reads_in_use),
        (size, size as u32, 0)
    );
}

/// Prints commits/s of one-job transactions against group commit on this disk (no assertion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let n = 200;
    let t0 = Instant::now();
    for i in 0..n {
        s.write(move |tx| tx.cache_set(&format!("a{i}"), "v", i))
            .await
            .unwrap();
    }
    let single = t0.elapsed();
    let t0 = Instant::now();
    let before = s.stats().commits;
    let mut hs = Vec::new();
    for i in 0..n * 10 {
        let s = s.clone();
        hs.push(tokio::spawn(async move {
            s.write(move |tx| tx.cache_set(&format!("b{i}"), "v", i))
                .await
        }));
    }
    for h in hs {
        h.await.unwrap().unwrap();
    }
    let grouped = t0.elapsed();
    let commits = s.stats().commits - before;
    println!(
        "synchronous=FULL: sequential {:.0} jobs/s ({:.0} commits/s); concurrent {:.0} jobs/s in {} commits",
        n as f64 / single.as_secs_f64(),
        n as f64 / single.as_secs_f64(),
        (n * 10) as f64 / grouped.as_secs_f64(),
        commits
    );
}

/// Paused time needs tokio's `test-util` feature (not enabled here); a current-thread runtime
/// shows the same property: nothing leaves the calling thread.
#[tokio::test(flavor = "current_thread")]
async fn inline_mode_runs_in_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    let v = s
        .write(|tx| tx.cache_set("a", "1", 1).map(|_| 7))
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(
        s.read(|rx| rx.cache_get("a")).await.unwrap().as_deref(),
        Some("1")
    );
    // A failing job rolls back only itself.
    let err = s
        .write(|tx| {
            tx.cache_set("b", "2", 1)?;
            Err::<(), _>(StoreError::NotFound("x".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotFound("x".into()));
    assert!(s.read(|rx| rx.cache_get("b")).await.unwrap().is_none());
    let st = s.stats();
    assert_eq!((st.commits, st.jobs, st.failed_jobs), (2, 2, 1));
    s.close();
    assert_eq!(s.write(|_| Ok(())).await.unwrap_err(), StoreError::Closed);
}

#[test]
fn close_then_write_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(opts(&dir)).unwrap();
    let s2 = s.clone();
    s.write_blocking(|tx| tx.cache_set("a", "1", 1)).unwrap();
    s.close();
    assert_eq!(
        s2.write_blocking(|_| Ok(())).unwrap_err(),
        StoreError::Closed
    );
    assert_eq!(
        s2.read_blocking(|rx| rx.cache_get("a")).unwrap_err(),
        StoreError::Closed
    );
    s2.close(); // idempotent
}

/// Blocks the writer thread until the returned sender is used (or dropped).
fn block_writer(s: &Store) -> std_mpsc::Sender<()> {
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let (entered_tx, entered_rx) = std_mpsc::channel::<()>();
    let s2 = s.clone();
    std::thread::spawn(move || {
        s2.write_blocking(move |_| {
            entered_tx.send(()).unwrap();
            let _ = release_rx.recv();
            Ok(())
        })
        .unwrap();
    });
    entered_rx.recv().unwrap();
    release_tx
}

/// Prints the cost of the backlog check: trigger-kept counter vs an indexed count (no assertion).
#[test]
fn print_backlog_count_cost() {
    let dir = tempfile::tempdir().unwrap();
    let s = inline(&dir);
    seed(&s);
    s.write_blocking(|tx| {
        for i in 0..20_000 {
            tx.admit_task(&new_task(&format!("t{i}")), usize::MAX)?;
        }
        Ok(())
    })
    .unwrap();
    let (counter, scan) = s
        .read_blocking(|rx| {
            let t0 = Instant::now();
            for _ in 0..100 {
                rx.status_count(TaskStatus::Queued)?;
            }
            let counter = t0.elapsed() / 100;
            let t0 = Instant::now();
            for _ in 0..100 {
                let sql = "SELECT count(*) FROM task_record WHERE status = 'queued'";
                rx.conn.query_row(sql, [], |r| r.get::<_, i64>(0))?;
            }
            Ok((counter, t0.elapsed() / 100))
        })
        .unwrap();
    println!("backlog check with 20000 queued: counter {counter:?}, indexed count(*) {scan:?}");
}
