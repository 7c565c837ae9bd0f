//! `AppHost`: the appliance's [`ScriptHost`]. Script slots are plain OS threads, so each `jj`
//! call blocks its slot on the async operation through a tokio `Handle`: the data cache and
//! sites through the scheduler and store, robots through the fleet, HTTP through the bounded
//! `api::client::HttpClient`.

use super::{CallContext, ScriptHost};
use crate::api::client::{HttpClient, Outbound};
use crate::limits::API_LIST_MAX;
use crate::limits::SCRIPT_CALL_MS_MAX;
use crate::scheduler::Scheduler;
use crate::store::SiteFilter;
use serde_json::Value;
use tokio::runtime::Handle;

/// The appliance's host for scripts.
pub struct AppHost {
    sched: Scheduler,
    handle: Handle,
    http: HttpClient,
}

impl AppHost {
    /// A host over `sched`; must be called inside the tokio runtime it will block on.
    pub fn new(sched: Scheduler) -> AppHost {
        AppHost {
            http: sched.http_client(),
            sched,
            handle: Handle::current(),
        }
    }

    /// `jj.httpGet`/`jj.httpPost` through the HTTP blocks' bounded client (it waits for a
    /// place like a block does), each request, its wait for a place included, given at most
    /// `SCRIPT_CALL_MS_MAX`.
    fn http(&self, method: &str, url: &str, body: Option<&Value>) -> Result<String, String> {
        let body = match body {
            Some(v) => Some((
                "application/json",
                serde_json::to_vec(v).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let out = Outbound {
            method,
            url,
            headers: &[],
            body,
            timeout_ms: Some(SCRIPT_CALL_MS_MAX),
        };
        // The wait for a place among the HTTP blocks' requests counts too.
        let limit = std::time::Duration::from_millis(SCRIPT_CALL_MS_MAX);
        let (status, bytes) = self
            .handle
            .block_on(async { tokio::time::timeout(limit, self.http.send(out)).await })
            .map_err(|_| format!("no answer within SCRIPT_CALL_MS_MAX ({SCRIPT_CALL_MS_MAX} ms)"))?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}: {}", super::jj::cut(&text, 512)));
        }
        Ok(text)
    }
}

impl ScriptHost for AppHost {
    /// One task log line of the calling run (level info), attributed to its block; the
    /// process log gets it too when the store refuses it.
    fn log(&self, call: &CallContext, message: &str) {
        let (run, block, text) = (
            call.record_id.clone(),
            call.block_id.clone(),
            format!("[script] {message}"),
        );
        let now = self.sched.now_ms();
        let written = self.handle.block_on(
            self.sched
                .store()
                .write(move |tx| tx.task_log(&run, Some(&block), 1, &text, now)),
        );
        if let Err(e) = written {
            log::info!(
                target: "vwed::script",
                "[{}][{}][{}] {message} (not in the task log: {e})",
                call.task_id,
                call.record_id,
                call.block_id
            );
        }
    }

    fn get_cache(&self, key: &str) -> Result<Option<String>, String> {
        let key = key.to_string();
        self.handle
            .block_on(self.sched.store().read(move |rx| rx.cache_get(&key)))
            .map_err(|e| e.to_string())
    }

    fn put_cache(&self, key: &str, value: &str) -> Result<(), String> {
        self.handle.block_on(self.sched.cache_set(key, value))
    }

    fn get_site(&self, site_id: &str) -> Result<Option<Value>, String> {
        let id = site_id.to_string();
        let site = self
            .handle
            .block_on(self.sched.store().read(move |rx| rx.site_get(&id)))
            .map_err(|e| e.to_string())?;
        Ok(site.map(|s| serde_json::to_value(s).unwrap_or(Value::Null)))
    }

    fn sites(&self, group: Option<&str>) -> Result<Value, String> {
        let filter = SiteFilter {
            group_name: group.map(str::to_string),
            ..SiteFilter::default()
        };
        let sites = self
            .handle
            .block_on(
                self.sched
                    .store()
                    .read(move |rx| rx.site_list(&filter, 0, API_LIST_MAX)),
            )
            .map_err(|e| e.to_string())?;
        serde_json::to_value(sites).map_err(|e| e.to_string())
    }

    fn get_robot(&self, id: &str) -> Result<Option<Value>, String> {
        let robots = self
            .handle
            .block_on(self.sched.fleet().robots())
            .map_err(|e| e.to_string())?;
        Ok(robots
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null)))
    }

    fn robots(&self) -> Result<Value, String> {
        let robots = self
            .handle
            .block_on(self.sched.fleet().robots())
            .map_err(|e| e.to_string())?;
        serde_json::to_value(robots).map_err(|e| e.to_string())
    }

    fn http_get(&self, url: &str) -> Result<String, String> {
        self.http("GET", url, None)
    }

    fn http_post(&self, url: &str, body: &str) -> Result<String, String> {
        let json = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
        self.http("POST", url, Some(&json))
    }
}
