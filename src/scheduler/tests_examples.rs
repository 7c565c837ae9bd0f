//! The examples of `../shared/docs/wind-task-examples` that use site and robot blocks, and the
//! corpus definitions that use only robot, site and core blocks, run through the scheduler
//! against the simulated fleet and the demo sites on tokio's paused clock, checked against
//! what their README says (examples) or run to their end (corpus).

use super::tests::{env, Env};
use super::*;
use crate::flow::load;
use crate::store::Site;
use serde_json::Value;

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/docs/wind-task-examples/"
);

impl Env {
    /// Stores the first definition of `path` and starts it with `inputs`: the run's id.
    pub(super) async fn submit_file(&self, path: &str, inputs: Value) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let raw = load::load_text(&text, path).remove(0).unwrap();
        let (saved, _) = self.sched.save_definition(raw).await.unwrap();
        let req = SubmitRequest {
            def_id: Some(saved.id),
            inputs: inputs.as_object().cloned().unwrap_or_default(),
            ..SubmitRequest::default()
        };
        self.sched.submit(req).await.unwrap().id
    }

    async fn example(&self, file: &str, inputs: Value) -> TaskRecord {
        let id = self.submit_file(&format!("{EXAMPLES}{file}"), inputs).await;
        self.sched.wait_terminal(&id).await.unwrap()
    }

    pub(super) async fn demo_sites(&self) {
        let sites: Vec<Site> = serde_json::from_str(crate::server::DEMO_SITES).unwrap();
        crate::server::put_sites(&self.sched, sites, "test")
            .await
            .unwrap();
    }

    /// Stores `sites` as they are (filled ones too), as the sites the corpus names.
    pub(super) async fn corpus_sites(&self, sites: Vec<Site>) {
        let now = self.sched.now_ms();
        self.sched
            .store()
            .write(move |tx| {
                let by = crate::store::SiteActor {
                    who: "test",
                    why: "sites the corpus names",
                };
                for site in &sites {
                    tx.site_put(site, by, now)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    async fn site_state(&self, id: &str) -> (bool, bool, String) {
        let id = id.to_string();
        let s = self
            .sched
            .store()
            .read(move |rx| rx.site_get(&id))
            .await
            .unwrap()
            .unwrap();
        (s.filled, s.locked, s.content)
    }
}

fn variables(rec: &TaskRecord) -> Value {
    serde_json::from_str(&rec.variables).unwrap()
}

#[tokio::test(start_paused = true)]
async fn example_01_carries_a_pallet_from_pick_to_drop() {
    let e = env(Config::default()).await;
    e.demo_sites().await;
    let rec = e
        .example("01-serial-transport-site-lock.json", serde_json::json!({}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(
        rec.state_description.as_deref(),
        Some(r#"{"from":"PICK-01","to":"DROP-01"}"#)
    );
    assert_eq!(e.site_state("PICK-01").await, (false, false, String::new()));
    let (filled, locked, _) = e.site_state("DROP-01").await;
    assert!(filled && !locked);
}

#[tokio::test(start_paused = true)]
async fn example_02_prints_while_the_robot_travels() {
    let e = env(Config::default()).await;
    let rec = e
        .example("02-parallel-branches.json", serde_json::json!({}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(variables(&rec)["moved"], true);
    let logs = e.logs(&rec.id).await;
    let travelling = logs
        .iter()
        .filter(|l| l.contains("robot still travelling to LM2"))
        .count();
    assert!(travelling > 5, "{logs:?}");
    assert!(
        logs.iter().any(|l| l.contains("both branches done")),
        "{logs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn example_03_takes_the_preferred_drop_site_when_it_is_free() {
    let e = env(Config::default()).await;
    e.demo_sites().await;
    let rec = e
        .example("03-if-else-fallback-site.json", serde_json::json!({}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(variables(&rec)["dropSite"], "DROP-01");
    assert!(!e.site_state("PICK-01").await.0, "pick emptied");
    let (filled, locked, _) = e.site_state("DROP-01").await;
    assert!(filled && !locked);
}

#[tokio::test(start_paused = true)]
async fn example_03_falls_back_to_the_buffer_when_drop_stays_locked() {
    let e = env(Config::default()).await;
    e.demo_sites().await;
    let now = e.sched.now_ms();
    e.sched
        .store()
        .write(move |tx| {
            let by = crate::store::SiteActor {
                who: "operator",
                why: "test",
            };
            tx.site_lock("DROP-01", "operator", by, now).map(|_| ())
        })
        .await
        .unwrap();
    let t0 = tokio::time::Instant::now();
    let rec = e
        .example("03-if-else-fallback-site.json", serde_json::json!({}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(variables(&rec)["dropSite"], "BUFFER-01");
    assert!(
        t0.elapsed() >= std::time::Duration::from_secs(4),
        "three tries ~2 s apart"
    );
    let (filled, locked, _) = e.site_state("BUFFER-01").await;
    assert!(filled && !locked);
}

#[tokio::test(start_paused = true)]
async fn example_05_visits_three_stops_in_one_order() {
    let e = env(Config::default()).await;
    let rec = e
        .example("05-iterate-list.json", serde_json::json!({}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(rec.state_description.as_deref(), Some("visiting LM3 (3/3)"));
    let logs = e.logs(&rec.id).await;
    assert!(
        logs.iter().any(|l| l.contains("visited 3 stops")),
        "{logs:?}"
    );
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/defs/");

/// Every corpus definition that uses only robot, site and core blocks runs to its end on the
/// simulator and the demo sites (plus the sites it names), with the inputs its template
/// expects. Locations the demo map does not know (S1, R1, LM165) are placed by name.
/// (`asam-rds-robot-task` asks for robot group `T1`: see the next test.)
#[tokio::test(start_paused = true)]
async fn corpus_robot_and_site_definitions_run_to_their_end() {
    let e = env(Config::default()).await;
    e.demo_sites().await;
    let mut pg = Site::new("PG-01", "PICK-GROUP");
    pg.filled = true;
    let odd = Site::new("50-10-03B-01-1", "");
    crate::server::put_sites(&e.sched, vec![], "none")
        .await
        .unwrap();
    e.corpus_sites(vec![pg, odd]).await;
    let cases = [
        (
            "nowystyl-doc-8_1-prosty-przejazd-do-wskazanego-miejsca.json",
            serde_json::json!({"targetSite": "LM2", "keyRoute": "LM1"}),
        ),
        (
            "nowystyl-doc-8_3-iteracja-po-liscie-punktow.json",
            serde_json::json!({"keyRoute": "LM1"}),
        ),
        (
            "nowystyl-doc-8_4-if-else-z-fallback-brak-miejsca-bufor.json",
            serde_json::json!({"keyRoute": "LM1"}),
        ),
        (
            "nowystyl-doc-8_7-repeatnum-retry-operacji-n-razy.json",
            serde_json::json!({"keyRoute": "LM1"}),
        ),
        (
            "nowystyl-doc-8_9-iteratelist-z-taskstate-w-kazdym-kroku.json",
            serde_json::json!({"keyRoute": "LM1"}),
        ),
        ("nowystyl-doc-api-demo-task.json", serde_json::json!({})),
        ("nowystyl-goto-lm165.json", serde_json::json!({})),
        (
            "seer-doc-taskstopped-event-test.json",
            serde_json::json!({}),
        ),
        (
            "dispatch-service-seed-default.json",
            serde_json::json!({"sitePath": "[]"}),
        ),
    ];
    for (file, inputs) in cases {
        let text = std::fs::read_to_string(format!("{CORPUS}{file}")).unwrap();
        let raw = load::load_text(&text, file).remove(0).unwrap();
        let (saved, _) = e.sched.save_definition(raw).await.unwrap();
        let req = SubmitRequest {
            def_id: Some(saved.id),
            inputs: inputs.as_object().cloned().unwrap_or_default(),
            ..SubmitRequest::default()
        };
        let id = e.sched.submit(req).await.unwrap().id;
        let rec = e.sched.wait_terminal(&id).await.unwrap();
        assert_eq!(rec.status, TaskStatus::Finished, "{file}: {rec:?}");
    }
}

/// `asam-rds-robot-task` asks for robot group `T1`: on a simulator whose robots are in that
/// group (`[fleet] group = "T1"`) it jacks a load at AP45 and sets it down at AP47.
#[tokio::test(start_paused = true)]
async fn corpus_asam_robot_task_runs_on_a_t1_fleet() {
    use crate::fleet::sim::{SimConfig, SimFleet};
    let dir = tempfile::tempdir().unwrap();
    let tasks = crate::tasks::Tasks::new();
    let sim = SimFleet::new(SimConfig {
        group: "T1".into(),
        ..SimConfig::default()
    });
    let store = super::tests::open_store(&dir);
    let sched = Scheduler::start_with_fleet(store, Config::default(), Arc::new(sim), &tasks)
        .await
        .unwrap();
    let e = Env { sched, tasks, dir };
    let text = std::fs::read_to_string(format!("{CORPUS}asam-rds-robot-task.json")).unwrap();
    let raw = load::load_text(&text, "asam").remove(0).unwrap();
    let (saved, _) = e.sched.save_definition(raw).await.unwrap();
    let req = SubmitRequest {
        def_id: Some(saved.id),
        ..SubmitRequest::default()
    };
    let id = e.sched.submit(req).await.unwrap().id;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
}
