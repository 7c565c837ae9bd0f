//! The appliance assembled: store, scheduler (with recovery and periodic definitions), the demo
//! definitions on a fresh store, and the HTTP API on its listener — started as one [`Running`]
//! that shuts down in order (stop accepting, stop admitting, let steps commit, close the store).

use crate::api::{self, ApiConfig, App};
use crate::config::Config;
use crate::fleet::sim::SimFleet;
use crate::flow::load;
use crate::limits::SHUTDOWN_GRACE_MS;
use crate::scheduler::Scheduler;
use crate::script::{AppHost, ScriptConfig, ScriptPool, ScriptStore};
use crate::store::{Store, StoreOptions};
use crate::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Definitions a fresh store starts with (embedded in the binary).
pub const DEMO_DEFINITIONS: &[(&str, &str)] = &[
    (
        "example_while_break",
        include_str!("../assets/demo/example_while_break.json"),
    ),
    (
        "example_cache_counter",
        include_str!("../assets/demo/example_cache_counter.json"),
    ),
    ("demo_bench", include_str!("../assets/demo/demo_bench.json")),
];

/// Storage sites a fresh store starts with (a JSON array of sites, embedded in the binary).
pub const DEMO_SITES: &str = include_str!("../assets/demo-sites.json");

/// A running appliance.
pub struct Running {
    /// The address the API listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    app: Arc<App>,
    sched: Scheduler,
    store: Store,
    tasks: Tasks,
    scripts: Arc<ScriptPool>,
}

/// Opens the store in `config.data_dir`, starts the scheduler and serves the API.
pub async fn start(config: &Config) -> Result<Running, String> {
    config.check_open().map_err(|e| e.to_string())?;
    let mut opts = StoreOptions::new(config.data_dir.join("vwed.db"));
    opts.synchronous_full = true;
    let store = Store::open(opts).map_err(|e| {
        format!(
            "cannot open the store in {}: {e}",
            config.data_dir.display()
        )
    })?;
    // Scheduler, accept loop and the like, plus one task per allowed connection.
    let tasks =
        Tasks::with_capacity(crate::limits::TASKS_TRACKED_MAX + config.http.connections_max);
    let (fleet, sim) = build_fleet(&config.fleet)?;
    let sched = Scheduler::start_with_fleet(store.clone(), config.scheduler.clone(), fleet, &tasks)
        .await
        .map_err(|e| e.to_string())?;
    install_demos(&sched).await?;
    install_demo_sites(&sched).await?;
    reconcile_site_locks(&sched).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let api_config = ApiConfig {
        tokens: config.tokens.clone(),
        mutations_need_token: config.mutations_need_token() || !config.tokens.is_empty(),
        connections_max: config.http.connections_max,
        body_bytes_max: config.http.body_bytes_max,
        header_timeout_ms: config.http.header_timeout_ms,
        handler_timeout_ms: config.http.handler_timeout_ms,
    };
    let hook_stats = api::webhooks::WebhookStats::new(&config.webhooks);
    let script_store = ScriptStore::open(&config.data_dir).map_err(|e| e.to_string())?;
    let scripts = start_scripts(script_store, &sched)?;
    let app = App::new(
        sched.clone(),
        api_config,
        hook_stats.clone(),
        sim,
        scripts.clone(),
    );
    if !config.webhooks.is_empty() {
        // Subscribed before the cursors are read, so no committed event goes unnoticed.
        let outbox = sched.subscribe_outbox();
        let delivery =
            api::webhooks::Delivery::prepare(store.clone(), config.webhooks.clone(), hook_stats)
                .await
                .map_err(|e| format!("cannot read the webhook cursors: {e}"))?;
        tasks
            .spawn("webhooks", delivery.run(outbox, app.stopping()))
            .map_err(|e| e.to_string())?;
    }
    let serve = api::serve(listener, app.clone(), tasks.clone());
    tasks
        .spawn("http-accept", serve)
        .map_err(|e| e.to_string())?;
    Ok(Running {
        addr,
        app,
        sched,
        store,
        tasks,
        scripts,
    })
}

/// The script pool over `store` (the server's is `<data_dir>/scripts/`), its `jj` host
/// reaching the scheduler, store, fleet and HTTP client; the scheduler's script blocks call it.
pub fn start_scripts(store: ScriptStore, sched: &Scheduler) -> Result<Arc<ScriptPool>, String> {
    let host = Arc::new(AppHost::new(sched.clone()));
    let pool =
        ScriptPool::start(ScriptConfig::default(), store, host).map_err(|e| e.to_string())?;
    let pool = Arc::new(pool);
    if sched.set_scripts(pool.clone()).is_err() {
        return Err("the scheduler has a script runtime already".into());
    }
    Ok(pool)
}

impl Running {
    /// The scheduler behind the API.
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The script runtime (the scripts of `<data_dir>/scripts/`).
    pub fn scripts(&self) -> &Arc<ScriptPool> {
        &self.scripts
    }

    /// Graceful stop within `SHUTDOWN_GRACE_MS`: no new connections or requests, runs stop at
    /// their next commit (they resume on the next start), the store is flushed and closed.
    pub async fn shutdown(self) {
        self.app.stop();
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        let ordered = async {
            // First: a running script is interrupted (its host calls reach the scheduler).
            self.scripts.shutdown(grace).await;
            self.sched.shutdown().await;
            self.tasks.join_all().await;
        };
        if tokio::time::timeout(grace, ordered).await.is_err() {
            log::error!("shutdown grace period ({SHUTDOWN_GRACE_MS} ms) ran out; exiting anyway");
        }
        self.store.close();
    }
}

/// A fleet for the scheduler, and the simulator when it is the fleet.
pub type BuiltFleet = (Arc<dyn crate::fleet::Fleet>, Option<Arc<SimFleet>>);

/// The fleet `[fleet]` names, and the simulator when it is one (its failure injection is then
/// reachable through the API). Called inside the runtime: the simulator's clock is tokio's.
pub fn build_fleet(config: &crate::config::FleetConfig) -> Result<BuiltFleet, String> {
    match config.kind {
        crate::config::FleetKind::Sim => {
            let sim = Arc::new(SimFleet::new(config.sim_config()?));
            Ok((sim.clone(), Some(sim)))
        }
        crate::config::FleetKind::RdsCore => {
            let core = crate::fleet::rdscore::RdsCoreFleet::new(config.rdscore_config()?)
                .map_err(|e| format!("fleet.url: {e}"))?;
            log::info!(
                "robot blocks drive RDSCore at {}",
                config.url.as_deref().unwrap_or("")
            );
            Ok((Arc::new(core), None))
        }
    }
}

/// Stores the demo definitions when the store has no definition at all.
async fn install_demos(sched: &Scheduler) -> Result<(), String> {
    let existing = sched
        .store()
        .read(|rx| rx.definitions(1))
        .await
        .map_err(|e| e.to_string())?;
    if !existing.is_empty() {
        return Ok(());
    }
    for (name, text) in DEMO_DEFINITIONS {
        for raw in load::load_text(text, name) {
            let raw = raw.map_err(|e| format!("demo {name}: {e}"))?;
            sched
                .save_definition(raw)
                .await
                .map_err(|e| format!("demo {name}: {e}"))?;
        }
    }
    log::info!("stored {} demo definitions", DEMO_DEFINITIONS.len());
    Ok(())
}

/// Stores the demo sites when the store has never held a site (no site and no site change
/// logged), so sites an operator deleted do not come back at the next start.
async fn install_demo_sites(sched: &Scheduler) -> Result<(), String> {
    let sites: Vec<crate::store::Site> =
        serde_json::from_str(DEMO_SITES).map_err(|e| format!("demo sites: {e}"))?;
    let n = put_sites(sched, sites, "demo sites for a fresh data dir").await?;
    if n > 0 {
        log::info!("stored {n} demo sites");
    }
    Ok(())
}

/// Stores `sites` as the caller `startup` with reason `why`, only when the store has never held
/// a site; how many were stored.
pub async fn put_sites(
    sched: &Scheduler,
    sites: Vec<crate::store::Site>,
    why: &'static str,
) -> Result<usize, String> {
    let now = sched.now_ms();
    sched
        .store()
        .write(move |tx| {
            if tx.site_count()? > 0 || !tx.site_log_entries(None, 1)?.is_empty() {
                return Ok(0);
            }
            let by = crate::store::SiteActor {
                who: "startup",
                why,
            };
            for site in &sites {
                tx.site_put(site, by, now)?;
            }
            // Nobody listens yet; the events stay in the outbox for replay.
            tx.take_site_events();
            Ok(sites.len())
        })
        .await
        .map_err(|e| format!("sites: {e}"))
}

/// At startup: sites still locked by runs that have already ended (a crash between a run's end
/// and a separate release, or a lock taken for a run after it ended) are reported, and released
/// when the run's definition's release policy says so; the others are kept, as RDS keeps a
/// normally ended run's locks.
async fn reconcile_site_locks(sched: &Scheduler) -> Result<(), String> {
    use crate::flow::model::ReleasePolicy;
    let held = sched
        .store()
        .read(|rx| rx.sites_held_by_ended_runs(crate::limits::SITES_MAX))
        .await
        .map_err(|e| format!("site locks: {e}"))?;
    let (release, keep): (Vec<_>, Vec<_>) = held.into_iter().partition(|h| {
        ReleasePolicy::from_flags(h.release_sites, h.release_always).releases(h.code, h.manual_end)
    });
    for h in &keep {
        log::info!(
            "site {} stays locked by ended task {} (code {}): its definition keeps locks then",
            h.site_id,
            h.task_id,
            h.code
        );
    }
    if release.is_empty() {
        return Ok(());
    }
    let now = sched.now_ms();
    let pairs: Vec<(String, String)> = release
        .into_iter()
        .map(|h| (h.site_id, h.task_id))
        .collect();
    let n = pairs.len();
    let changes = sched
        .store()
        .write(move |tx| {
            let by = crate::store::SiteActor {
                who: "startup",
                why: "locked by an ended task whose release policy releases it",
            };
            for (site, task) in &pairs {
                log::warn!("site {site} was still locked by ended task {task}; releasing it");
                tx.site_unlock(site, Some(task), by, now)?;
            }
            // Nobody listens yet; the events stay in the outbox for replay.
            tx.take_site_events();
            Ok(tx.take_site_changes())
        })
        .await
        .map_err(|e| format!("site locks: {e}"))?;
    sched.sites_changed(changes).await;
    log::warn!("released {n} site locks held by ended tasks");
    Ok(())
}
