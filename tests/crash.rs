//! Crash recovery: a `vwed bench` child process is killed with SIGKILL while runs are
//! mid-flight, restarted on the same data dir, and the store is checked: no accepted task is
//! lost or duplicated, no finished block ran again, every run reached a terminal state.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vwed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vwed"))
}

fn db(dir: &Path) -> Connection {
    let conn = Connection::open_with_flags(dir.join("vwed.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the store read-only");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

fn bench(dir: &Path, tasks: usize) -> Command {
    let mut cmd = vwed();
    cmd.args([
        "bench",
        "--json",
        "--concurrency",
        "16",
        "--delay-ms",
        "300",
    ])
    .args(["--tasks", &tasks.to_string()])
    .arg("--data")
    .arg(dir)
    .env("VWED_LOG", "error")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

#[test]
fn killed_mid_flight_then_restarted_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bench(dir.path(), 400).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the bench never got going");
        std::thread::sleep(Duration::from_millis(50));
        if !dir.path().join("vwed.db").exists() {
            continue;
        }
        let finished = count(
            &db(dir.path()),
            "SELECT count(*) FROM task_record WHERE status = 'finished'",
        );
        if finished >= 40 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let conn = db(dir.path());
    let accepted = count(&conn, "SELECT count(*) FROM task_record");
    let in_flight = count(
        &conn,
        // Accepted but not ended: a kill that lands between two waves of the bench finds the
        // next wave queued rather than running (seen once under a loaded test run).
        "SELECT count(*) FROM task_record WHERE status IN ('running', 'queued')",
    );
    assert!(in_flight > 0, "the kill should catch runs mid-flight");
    drop(conn);

    let out = bench(dir.path(), 0).output().unwrap();
    assert!(out.status.success(), "restart failed: {out:?}");
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["ended_in_store"], serde_json::json!(accepted));

    let conn = db(dir.path());
    assert_eq!(
        count(&conn, "SELECT count(*) FROM task_record"),
        accepted,
        "no task lost or added"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM task_record WHERE status <> 'finished'"
        ),
        0,
        "every run finished"
    );
    let repeated = count(
        &conn,
        "SELECT count(*) FROM (SELECT task_id, block_id, iteration FROM block_record \
         WHERE status = 1003 GROUP BY task_id, block_id, iteration HAVING count(*) > 1)",
    );
    assert_eq!(repeated, 0, "a finished block ran again");
    let prints = count(
        &conn,
        "SELECT count(*) FROM task_log WHERE message LIKE '[PrintBp]%'",
    );
    assert_eq!(prints, accepted, "each run printed exactly once");
    assert_eq!(count(&conn, "SELECT count(*) FROM task_checkpoint"), 0);
}
