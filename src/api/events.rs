//! `GET /api/events`: server-sent events from the persisted outbox. Each event carries its
//! outbox id; `Last-Event-ID` (header or `?lastEventId=`) replays what came after it from the
//! store, then the stream follows new commits live. A client asking for events already pruned
//! gets an explicit `reset` event first, never a silent gap; a live client that falls behind the
//! in-memory buffer re-reads from the store by id.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::limits::{SSE_KEEPALIVE_MS, SSE_REPLAY_PAGE};
use crate::store::OutboxEvent;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{header, Request, Response, StatusCode};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Where a client's stream stands.
enum Phase {
    /// Decide between replay, reset and live from the outbox bounds.
    Start(Option<i64>),
    /// Read stored events after this id.
    Replay(i64),
    /// Follow commits; the last id sent.
    Live(i64),
    Done,
}

/// What to do for a client that last saw `last` when the outbox holds `oldest..=newest`.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// Nothing asked for: follow from the newest.
    Live(i64),
    /// Replay from after this id.
    Replay(i64),
    /// The events after `last` were pruned: say so, then replay from the oldest kept.
    Reset { replay_after: i64 },
}

/// The resume decision (pure, tested on its own).
pub fn resume(last: Option<i64>, oldest: i64, newest: i64) -> Resume {
    match last {
        None => Resume::Live(newest),
        Some(l) if oldest > 0 && l + 1 < oldest => Resume::Reset {
            replay_after: oldest - 1,
        },
        Some(l) => Resume::Replay(l.min(newest)),
    }
}

struct St {
    app: Arc<App>,
    rx: Receiver<Arc<OutboxEvent>>,
    stop: tokio::sync::watch::Receiver<bool>,
    phase: Phase,
    out: VecDeque<Bytes>,
}

fn frame(e: &OutboxEvent) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id, e.kind, e.payload
    ))
}

fn last_event_id(req: &Request<Incoming>) -> Result<Option<i64>, ApiError> {
    let header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = http::query(req)
        .into_iter()
        .find(|(k, _)| k == "lastEventId")
        .map(|(_, v)| v);
    match header.or(query) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::field("Last-Event-ID", "Last-Event-ID must be an integer")),
    }
}

/// `GET /api/events`.
pub async fn stream(app: &Arc<App>, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let last = last_event_id(req)?;
    // Subscribe before reading the store, so nothing committed in between is missed.
    let rx = app.sched.subscribe_outbox();
    let st = St {
        app: app.clone(),
        rx,
        stop: app.stopping(),
        phase: Phase::Start(last),
        out: VecDeque::new(),
    };
    let body = stream::unfold(st, |mut st| async move {
        loop {
            if let Some(bytes) = st.out.pop_front() {
                return Some((Ok::<_, Infallible>(Frame::data(bytes)), st));
            }
            if matches!(st.phase, Phase::Done) {
                return None;
            }
            advance(&mut st).await;
        }
    });
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(StreamBody::new(body).boxed())
        .expect("a valid response");
    Ok(resp)
}

/// Moves the stream one step: queues frames in `st.out` or changes phase.
async fn advance(st: &mut St) {
    match st.phase {
        Phase::Start(last) => {
            let bounds = st.app.sched.store().read(|rx| rx.outbox_bounds()).await;
            let Ok((oldest, newest)) = bounds else {
                st.phase = Phase::Done;
                return;
            };
            st.phase = match resume(last, oldest, newest) {
                Resume::Live(n) => Phase::Live(n),
                Resume::Replay(n) => Phase::Replay(n),
                Resume::Reset { replay_after } => {
                    let data = format!(
                        "{{\"reason\":\"events after {} were pruned (OUTBOX_ROWS_MAX)\",\
                         \"oldest\":{oldest}}}",
                        last.unwrap_or(0)
                    );
                    st.out
                        .push_back(Bytes::from(format!("event: reset\ndata: {data}\n\n")));
                    Phase::Replay(replay_after)
                }
            };
        }
        Phase::Replay(after) => {
            let page = st
                .app
                .sched
                .store()
                .read(move |rx| rx.outbox_after(after, SSE_REPLAY_PAGE))
                .await;
            match page {
                Ok(events) if events.is_empty() => st.phase = Phase::Live(after),
                Ok(events) => {
                    let last = events.last().map_or(after, |e| e.id);
                    st.out.extend(events.iter().map(frame));
                    st.phase = Phase::Replay(last);
                }
                Err(_) => st.phase = Phase::Done,
            }
        }
        Phase::Live(last) => live(st, last).await,
        Phase::Done => {}
    }
}

async fn live(st: &mut St, last: i64) {
    let keepalive = Duration::from_millis(SSE_KEEPALIVE_MS);
    let next = tokio::select! {
        next = tokio::time::timeout(keepalive, st.rx.recv()) => next,
        _ = super::stopped(&mut st.stop) => {
            st.phase = Phase::Done;
            return;
        }
    };
    match next {
        Err(_) => st.out.push_back(Bytes::from_static(b": keepalive\n\n")),
        Ok(Ok(e)) if e.id <= last => {}
        // Commits are broadcast from more than one place, so ids can arrive out of order:
        // a gap is filled from the store, where every committed id already is.
        Ok(Ok(e)) if e.id > last + 1 => st.phase = Phase::Replay(last),
        Ok(Ok(e)) => {
            st.out.push_back(frame(&e));
            st.phase = Phase::Live(e.id);
        }
        Ok(Err(RecvError::Lagged(_))) => st.phase = Phase::Replay(last),
        Ok(Err(RecvError::Closed)) => st.phase = Phase::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_decisions() {
        assert_eq!(resume(None, 5, 9), Resume::Live(9));
        assert_eq!(resume(Some(7), 5, 9), Resume::Replay(7));
        assert_eq!(
            resume(Some(4), 5, 9),
            Resume::Replay(4),
            "the next one is still there"
        );
        assert_eq!(resume(Some(2), 5, 9), Resume::Reset { replay_after: 4 });
        assert_eq!(resume(Some(0), 0, 0), Resume::Replay(0), "empty outbox");
        assert_eq!(
            resume(Some(50), 5, 9),
            Resume::Replay(9),
            "a future id waits for new ones"
        );
    }
}
