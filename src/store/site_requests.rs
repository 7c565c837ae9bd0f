//! The persisted site wait queue (`site_request`): a run's site operation is answered at once
//! or kept as a waiter, served in priority-then-arrival order when a site change lets it
//! through. Answers of writing operations are kept until the run has taken them, so a crash
//! between the answer and the run's next step never applies an operation twice.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use std::collections::HashMap;

use super::error::{n64, Result};
use super::{Rx, SiteActor, SiteChanges, Tx};
use crate::limits::{SITE_OP_BYTES_MAX, SITE_SERVE_PAGE, SITE_WAITERS_MAX};
use crate::sites::{SiteOp, SiteReply};

/// A site operation a run asks for: the wait `token` of `fiber`.
#[derive(Debug, Clone)]
pub struct SiteRequest {
    pub run_id: String,
    pub fiber: u32,
    pub token: u64,
    pub priority: i64,
    /// The block's name (the change log's "why").
    pub block: String,
    pub op: SiteOp,
}

/// A waiting request, as listed by `GET /api/sites/waiters`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteWaiter {
    /// Arrival order.
    pub id: i64,
    pub task_id: String,
    pub fiber: u32,
    pub token: u64,
    pub priority: i64,
    pub block: String,
    pub op: SiteOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_key: Option<String>,
    /// Tries so far (the first at arrival, then one per site change that concerned it).
    pub attempts: u64,
    pub created_ms: i64,
}

/// What became of a submitted request.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    Answered(SiteReply),
    /// Kept as a waiter.
    Waiting,
    /// The run is no longer running (stopped, paused, ended while the request was on its
    /// way): nothing was done.
    Dropped,
}

/// A waiting row as a serve pass reads it (the op is parsed only when needed).
struct Candidate {
    id: i64,
    task_id: String,
    fiber: u32,
    token: u64,
    block: String,
    op: String,
    fair_key: Option<String>,
    attempts: u64,
    priority: i64,
    created_ms: i64,
}

/// A serve pass in progress.
struct Pass {
    /// Every waiter is tried (the changed sites are not known).
    all: bool,
    /// The changed sites, as they are now.
    states: Vec<super::Site>,
    /// Fair keys whose head was not served: the waiters behind it are not tried.
    blocked: Vec<String>,
    /// Whether an op (by its text) touches `states`: waiters of one flow share one answer
    /// until a served waiter changes the states.
    touch: HashMap<String, bool>,
    served: Vec<Served>,
    now_ms: i64,
}

impl Candidate {
    fn served(self, reply: SiteReply) -> Served {
        Served {
            run_id: self.task_id,
            fiber: self.fiber,
            token: self.token,
            reply,
        }
    }
}

/// A waiter a serve pass answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub run_id: String,
    pub fiber: u32,
    pub token: u64,
    pub reply: SiteReply,
}

const WAITER_COLUMNS: &str =
    "id, run_id, fiber, token, priority, block, op, fair_key, attempts, created_ms";

/// A row of `WAITER_COLUMNS`, its op unparsed.
fn candidate_from_row(r: &Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: r.get(0)?,
        task_id: r.get(1)?,
        fiber: r.get(2)?,
        token: r.get::<_, i64>(3)? as u64,
        priority: r.get(4)?,
        block: r.get(5)?,
        op: r.get(6)?,
        fair_key: r.get(7)?,
        attempts: r.get::<_, i64>(8)? as u64,
        created_ms: r.get(9)?,
    })
}

/// A row of `WAITER_COLUMNS` with its op parsed.
fn waiter_from_row(r: &Row<'_>) -> rusqlite::Result<SiteWaiter> {
    let c = candidate_from_row(r)?;
    let op = serde_json::from_str(&c.op).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(SiteWaiter {
        id: c.id,
        task_id: c.task_id,
        fiber: c.fiber,
        token: c.token,
        priority: c.priority,
        block: c.block,
        op,
        fair_key: c.fair_key,
        attempts: c.attempts,
        created_ms: c.created_ms,
    })
}

/// The prefilter columns of an op: the one site and the one group a change must concern.
fn keys(op: &SiteOp) -> (Option<&str>, Option<&str>) {
    match op {
        SiteOp::GetIdle { filter, .. } => (filter.site_id.as_deref(), filter.group_name.as_deref()),
        SiteOp::Crowded { groups, .. } if groups.len() == 1 => (None, Some(groups[0].as_str())),
        SiteOp::Lock { site_id, .. } | SiteOp::Unlock { site_id, .. } => {
            (Some(site_id.as_str()), None)
        }
        _ => (None, None),
    }
}

/// A crowded search that has used its attempts gives up with `""`.
fn gave_up(op: &SiteOp, attempts: u64) -> bool {
    matches!(op, SiteOp::Crowded { attempts_max, .. } if *attempts_max > 0 && attempts >= *attempts_max)
}

impl Tx<'_> {
    /// Submits a run's site operation: the kept answer when it was answered before (a restart
    /// or a resume asks again), nothing new when it already waits; otherwise it is tried now
    /// (unless a fair waiter of its key with at least its priority is ahead) and either
    /// answered or kept as a waiter. Past `SITE_WAITERS_MAX` waiters the answer is a failure
    /// naming the limit.
    pub fn site_request_submit(&mut self, req: &SiteRequest, now_ms: i64) -> Result<Submitted> {
        let running = self
            .conn
            .prepare_cached("SELECT status = 'running' FROM task_record WHERE id = ?1")?
            .query_row([&req.run_id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false);
        if !running {
            return Ok(Submitted::Dropped);
        }
        let kept: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT reply FROM site_request WHERE run_id = ?1 AND token = ?2")?
            .query_row(params![req.run_id, n64(req.token as usize)], |r| r.get(0))
            .optional()?;
        match kept {
            Some(Some(reply)) => return Ok(Submitted::Answered(parse_reply(&reply))),
            Some(None) => return Ok(Submitted::Waiting),
            None => {}
        }
        let op_text = serde_json::to_string(&req.op).unwrap_or_default();
        if op_text.len() > SITE_OP_BYTES_MAX {
            return Ok(Submitted::Answered(SiteReply::Failed(format!(
                "the site operation takes {} bytes, more than SITE_OP_BYTES_MAX \
                 ({SITE_OP_BYTES_MAX})",
                op_text.len()
            ))));
        }
        let fair_key = req.op.fair_key();
        let behind = match &fair_key {
            Some(key) => self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM site_request WHERE reply IS NULL \
                     AND fair_key = ?1 AND priority >= ?2)",
                )?
                .query_row(params![key, req.priority], |r| r.get(0))?,
            None => false,
        };
        let by = SiteActor {
            who: &req.run_id,
            why: &req.block,
        };
        let answer = if behind {
            None
        } else {
            self.site_exec(&req.op, by, now_ms)?
        };
        let attempts = u64::from(!behind);
        let answer = match answer {
            None if gave_up(&req.op, attempts) => Some(SiteReply::Found(String::new())),
            None if !req.op.may_wait() => Some(SiteReply::Failed(
                "the site operation cannot wait and was not answered".into(),
            )),
            None if self.site_waiters_len()? >= SITE_WAITERS_MAX => {
                Some(SiteReply::Failed(format!(
                    "{SITE_WAITERS_MAX} site waiters are queued (SITE_WAITERS_MAX); \
                     this block cannot wait"
                )))
            }
            other => other,
        };
        if let Some(reply) = &answer {
            if !req.op.writes() {
                return Ok(Submitted::Answered(reply.clone()));
            }
        }
        let (site_key, group_key) = keys(&req.op);
        let reply_text = answer.as_ref().map(reply_json);
        self.conn
            .prepare_cached(
                "INSERT INTO site_request (run_id, fiber, token, priority, block, op, fair_key, \
                 site_key, group_key, attempts, reply, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                req.run_id,
                req.fiber,
                n64(req.token as usize),
                req.priority,
                req.block,
                op_text,
                fair_key,
                site_key,
                group_key,
                n64(attempts as usize),
                reply_text,
                now_ms,
            ])?;
        Ok(match answer {
            Some(reply) => Submitted::Answered(reply),
            None => Submitted::Waiting,
        })
    }

    /// Serves the waiters a change may concern, in priority-then-arrival order: `changes`
    /// names the changed sites (`all`: check every waiter). A waiter is tried only when its op
    /// [`touches`](SiteOp::touches) the current state of a changed site, so a release tries
    /// the waiters of that site's group and stops concerning the rest once it is taken. A fair
    /// waiter that is not served blocks its key for the waiters behind it.
    pub fn site_serve(&mut self, changes: &SiteChanges, now_ms: i64) -> Result<Vec<Served>> {
        let mut pass = Pass {
            all: changes.all,
            states: Vec::new(),
            blocked: Vec::new(),
            touch: HashMap::new(),
            served: Vec::new(),
            now_ms,
        };
        for id in &changes.ids {
            if let Some(site) = self.site_get(id)? {
                pass.states.push(site);
            }
        }
        if !pass.all && pass.states.is_empty() {
            return Ok(Vec::new());
        }
        let mut after = None;
        loop {
            let page = self.waiters_concerned(&pass, after)?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some((last.priority, last.id));
            for c in page {
                self.serve_one(c, &mut pass)?;
            }
        }
        Ok(pass.served)
    }

    /// One candidate of a serve pass: skipped (its fair key is blocked, or its op is known not
    /// to touch the changed sites), tried, or answered.
    fn serve_one(&mut self, c: Candidate, pass: &mut Pass) -> Result<()> {
        if c.fair_key
            .as_ref()
            .is_some_and(|k| pass.blocked.contains(k))
        {
            return Ok(());
        }
        let known_untouched = !pass.all && pass.touch.get(&c.op) == Some(&false);
        let reply = if known_untouched {
            None
        } else {
            match serde_json::from_str::<SiteOp>(&c.op) {
                Ok(op) => self.try_waiter(&c, &op, pass)?,
                // Written by another version: the block fails instead of waiting on.
                Err(e) => Some(SiteReply::Failed(format!(
                    "stored site operation unreadable: {e}"
                ))),
            }
        };
        let Some(reply) = reply else {
            if let Some(k) = c.fair_key {
                pass.blocked.push(k);
            }
            return Ok(());
        };
        self.site_request_answer(c.id, &reply)?;
        for state in pass.states.iter_mut() {
            if let Some(fresh) = self.site_get(&state.site_id)? {
                *state = fresh;
            }
        }
        pass.touch.clear();
        pass.served.push(c.served(reply));
        Ok(())
    }

    /// Tries one waiter whose op a change may concern: its answer, or `None` (still waiting,
    /// one attempt more; a crowded search past its attempts gives up with `""`).
    fn try_waiter(
        &mut self,
        c: &Candidate,
        op: &SiteOp,
        pass: &mut Pass,
    ) -> Result<Option<SiteReply>> {
        if !pass.all {
            let touches = pass.states.iter().any(|s| op.touches(s));
            pass.touch.insert(c.op.clone(), touches);
            if !touches {
                return Ok(None);
            }
        }
        let by = SiteActor {
            who: &c.task_id,
            why: &c.block,
        };
        if let Some(reply) = self.site_exec(op, by, pass.now_ms)? {
            return Ok(Some(reply));
        }
        self.conn
            .prepare_cached("UPDATE site_request SET attempts = attempts + 1 WHERE id = ?1")?
            .execute([c.id])?;
        Ok(gave_up(op, c.attempts + 1).then(|| SiteReply::Found(String::new())))
    }

    fn site_request_answer(&mut self, id: i64, reply: &SiteReply) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE site_request SET reply = ?2 WHERE id = ?1")?
            .execute(params![id, reply_json(reply)])?;
        Ok(())
    }

    /// The next page (`SITE_SERVE_PAGE` rows after `after`) of the waiters whose prefilter
    /// columns the changed sites may concern (every waiter when `pass.all`), in service order,
    /// with their ops unparsed. Pages bound the memory of a pass over many waiters.
    fn waiters_concerned(&self, pass: &Pass, after: Option<(i64, i64)>) -> Result<Vec<Candidate>> {
        let ids: Vec<&str> = pass.states.iter().map(|s| s.site_id.as_str()).collect();
        let groups: Vec<&str> = pass.states.iter().map(|s| s.group_name.as_str()).collect();
        let (after_priority, after_id) = after.unwrap_or((i64::MAX, 0));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {WAITER_COLUMNS} FROM site_request WHERE reply IS NULL \
             AND (priority < ?5 OR (priority = ?5 AND id > ?6)) AND (?1 OR ( \
             (site_key IS NULL OR site_key IN (SELECT value FROM json_each(?2))) \
             AND (group_key IS NULL OR group_key IN (SELECT value FROM json_each(?3))))) \
             ORDER BY priority DESC, id LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                pass.all,
                serde_json::to_string(&ids).unwrap_or_default(),
                serde_json::to_string(&groups).unwrap_or_default(),
                n64(SITE_SERVE_PAGE),
                after_priority,
                after_id,
            ],
            candidate_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The run took the answers of `tokens` (or left those waits): their rows go.
    pub fn site_requests_close(&mut self, run_id: &str, tokens: &[u64]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM site_request WHERE run_id = ?1 AND token = ?2")?;
        for t in tokens {
            stmt.execute(params![run_id, n64(*t as usize)])?;
        }
        Ok(())
    }

    /// The run stopped waiting (paused, interrupted): it leaves every queue. Answers it has
    /// not taken yet are kept for its resume.
    pub fn site_requests_leave(&mut self, run_id: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM site_request WHERE run_id = ?1 AND reply IS NULL")?
            .execute([run_id])?;
        Ok(())
    }

    /// The run ended: every row of it goes.
    pub fn site_requests_end(&mut self, run_id: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM site_request WHERE run_id = ?1")?
            .execute([run_id])?;
        Ok(())
    }

    /// A run's priority changed: its waiters move to their new place in the queue.
    pub fn site_requests_priority(&mut self, run_id: &str, priority: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE site_request SET priority = ?2 WHERE run_id = ?1")?
            .execute(params![run_id, priority])?;
        Ok(())
    }
}

impl Rx<'_> {
    /// Waiting requests in service order (priority, then arrival), at most `limit`.
    pub fn site_waiters(&self, limit: usize) -> Result<Vec<SiteWaiter>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {WAITER_COLUMNS} FROM site_request WHERE reply IS NULL \
             ORDER BY priority DESC, id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([n64(limit)], waiter_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of waiting requests.
    pub fn site_waiters_len(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM site_request WHERE reply IS NULL")?
            .query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }
}

fn reply_json(reply: &SiteReply) -> String {
    serde_json::to_string(reply).unwrap_or_default()
}

/// A kept answer; one that cannot be read (written by another version) fails the block.
fn parse_reply(text: &str) -> SiteReply {
    serde_json::from_str(text)
        .unwrap_or_else(|e| SiteReply::Failed(format!("stored site answer unreadable: {e}")))
}
