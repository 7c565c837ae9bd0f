-- vwed SQLite schema, version 5 (PRAGMA user_version). This file is the WHOLE schema at the
-- current version: a new database gets it in one IMMEDIATE transaction. Older databases are
-- brought up to date by the upgrade steps in src/store/schema.rs, so a change here needs a step
-- there and a bump of SCHEMA_VERSION. Row counts that must be cheap (backlog, history caps,
-- cache size) are kept by triggers in the same transaction as the change they count.

-- Task definitions: one head row per definition id, one row per saved version of the body.
CREATE TABLE task_def (
    id             TEXT PRIMARY KEY NOT NULL,
    label          TEXT NOT NULL,
    version        INTEGER NOT NULL,
    periodic       INTEGER NOT NULL DEFAULT 0,
    if_enable      INTEGER NOT NULL DEFAULT 0,
    period_ms      INTEGER NOT NULL DEFAULT 0,
    delay_ms       INTEGER NOT NULL DEFAULT 0,
    release_sites  INTEGER NOT NULL DEFAULT 1,
    release_always INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL
);
-- A label names at most one live definition; deleting frees it.
CREATE UNIQUE INDEX task_def_label_live ON task_def(label) WHERE deleted = 0;
CREATE INDEX task_def_periodic ON task_def(periodic) WHERE deleted = 0 AND periodic = 1;

CREATE TABLE task_def_version (
    def_id     TEXT NOT NULL REFERENCES task_def(id),
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (def_id, version)
);

-- Task records (runs). seq is the admission order, from store_counter 'task_seq'.
CREATE TABLE task_record (
    id                TEXT PRIMARY KEY NOT NULL,
    seq               INTEGER NOT NULL UNIQUE,
    def_id            TEXT NOT NULL,
    def_label         TEXT NOT NULL,
    def_version       INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                        ('queued','running','paused','finished','failed','interrupted','stopped')),
    code              INTEGER NOT NULL DEFAULT 0,
    priority          INTEGER NOT NULL DEFAULT 0,
    level             INTEGER NOT NULL DEFAULT 0,
    created_ms        INTEGER NOT NULL,
    started_ms        INTEGER,
    ended_ms          INTEGER,
    ended_reason      TEXT,
    input_params      TEXT NOT NULL DEFAULT '[]',
    variables         TEXT NOT NULL DEFAULT '{}',
    state_description TEXT,
    out_order_no      TEXT,
    manual_end        INTEGER NOT NULL DEFAULT 0,
    parent_id         TEXT,
    root_id           TEXT,
    periodic          INTEGER NOT NULL DEFAULT 0,
    request_hash      TEXT,
    -- A run pins the definition version it was admitted with; versions are never deleted.
    FOREIGN KEY (def_id, def_version) REFERENCES task_def_version(def_id, version)
);
CREATE INDEX task_record_ready ON task_record(status, level, seq);
CREATE INDEX task_record_def ON task_record(def_id, status);
CREATE INDEX task_record_out_order ON task_record(out_order_no) WHERE out_order_no IS NOT NULL;
CREATE INDEX task_record_parent ON task_record(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX task_record_ended ON task_record(ended_ms) WHERE ended_ms IS NOT NULL;
-- Listing newest first (version 2): by status, by definition label, by creation time; the
-- unfiltered list walks the seq UNIQUE index.
CREATE INDEX task_record_status_seq ON task_record(status, seq);
CREATE INDEX task_record_label_seq ON task_record(def_label, seq);
CREATE INDEX task_record_created ON task_record(created_ms);

-- Task counts per status, kept by the triggers below (backlog check and history cap are O(1)).
CREATE TABLE task_status_count (
    status TEXT PRIMARY KEY NOT NULL,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO task_status_count(status, n) VALUES
    ('queued', 0), ('running', 0), ('paused', 0), ('finished', 0), ('failed', 0),
    ('interrupted', 0), ('stopped', 0);

CREATE TRIGGER task_record_count_ins AFTER INSERT ON task_record BEGIN
    UPDATE task_status_count SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER task_record_count_upd AFTER UPDATE OF status ON task_record
WHEN OLD.status <> NEW.status BEGIN
    UPDATE task_status_count SET n = n - 1 WHERE status = OLD.status;
    UPDATE task_status_count SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER task_record_count_del AFTER DELETE ON task_record BEGIN
    UPDATE task_status_count SET n = n - 1 WHERE status = OLD.status;
END;

-- Named counters: 'task_seq' (last admission number handed out) and row counts of the capped
-- tables, kept by triggers.
CREATE TABLE store_counter (
    name TEXT PRIMARY KEY NOT NULL,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_counter(name, n) VALUES
    ('task_seq', 0), ('block_record', 0), ('task_log', 0), ('data_cache', 0);

-- The run's resumable state, written in the same transaction as the block record.
CREATE TABLE task_checkpoint (
    task_id    TEXT PRIMARY KEY NOT NULL REFERENCES task_record(id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- One row per block execution; seq is the run's own record number.
CREATE TABLE block_record (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES task_record(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    block_id     INTEGER NOT NULL,
    block_name   TEXT NOT NULL,
    block_type   TEXT NOT NULL,
    iteration    TEXT NOT NULL DEFAULT '',
    status       INTEGER NOT NULL DEFAULT 0,
    started_ms   INTEGER NOT NULL,
    ended_ms     INTEGER,
    ended_reason TEXT,
    inputs       TEXT,
    outputs      TEXT,
    UNIQUE (task_id, seq)
);
CREATE TRIGGER block_record_count_ins AFTER INSERT ON block_record BEGIN
    UPDATE store_counter SET n = n + 1 WHERE name = 'block_record';
END;
CREATE TRIGGER block_record_count_del AFTER DELETE ON block_record BEGIN
    UPDATE store_counter SET n = n - 1 WHERE name = 'block_record';
END;

CREATE TABLE task_log (
    id         INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL REFERENCES task_record(id) ON DELETE CASCADE,
    block_name TEXT,
    level      INTEGER NOT NULL,
    message    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX task_log_task ON task_log(task_id, id);
CREATE TRIGGER task_log_count_ins AFTER INSERT ON task_log BEGIN
    UPDATE store_counter SET n = n + 1 WHERE name = 'task_log';
END;
CREATE TRIGGER task_log_count_del AFTER DELETE ON task_log BEGIN
    UPDATE store_counter SET n = n - 1 WHERE name = 'task_log';
END;

-- Data cache (CacheDataBp / GetCacheParamBp and the cache API).
CREATE TABLE data_cache (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TRIGGER data_cache_count_ins AFTER INSERT ON data_cache BEGIN
    UPDATE store_counter SET n = n + 1 WHERE name = 'data_cache';
END;
CREATE TRIGGER data_cache_count_del AFTER DELETE ON data_cache BEGIN
    UPDATE store_counter SET n = n - 1 WHERE name = 'data_cache';
END;

-- Event outbox (schema 3): every task and block change in commit order, replayed to
-- `/api/events` clients by `Last-Event-ID`; pruned to OUTBOX_ROWS_MAX, oldest first. Ids never
-- repeat: a new rowid is max(id) + 1 and pruning never deletes the newest row (cheaper than
-- AUTOINCREMENT, which updates sqlite_sequence on every insert).
CREATE TABLE event_outbox (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    task_id    TEXT,
    payload    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Webhook delivery: the last outbox id each webhook (by URL) acknowledged or skipped.
CREATE TABLE webhook_cursor (
    url     TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
-- Storage sites (库位), RDS's worksite fields. A lock is (locked = 1, locked_by = owner); the
-- CHECK keeps the pair consistent so no half-locked row can exist.
CREATE TABLE site (
    site_id     TEXT PRIMARY KEY NOT NULL,
    site_name   TEXT NOT NULL DEFAULT '',
    group_name  TEXT NOT NULL DEFAULT '',
    area        TEXT NOT NULL DEFAULT '',
    type        INTEGER NOT NULL DEFAULT 0,
    content     TEXT NOT NULL DEFAULT '',
    filled      INTEGER NOT NULL DEFAULT 0,
    locked      INTEGER NOT NULL DEFAULT 0,
    locked_by   TEXT NOT NULL DEFAULT '',
    disabled    INTEGER NOT NULL DEFAULT 0,
    sync_failed INTEGER NOT NULL DEFAULT 0,
    tags        TEXT NOT NULL DEFAULT '',
    attributes  TEXT NOT NULL DEFAULT '{}',
    row_num     TEXT,
    col_num     TEXT,
    level       TEXT,
    depth       TEXT,
    no          TEXT,
    updated_ms  INTEGER NOT NULL,
    CHECK ((locked = 0 AND locked_by = '') OR (locked = 1 AND locked_by <> ''))
);
CREATE INDEX site_group ON site(group_name, site_id);
CREATE INDEX site_locked_by ON site(locked_by) WHERE locked = 1;
CREATE TRIGGER site_count_ins AFTER INSERT ON site BEGIN
    UPDATE store_counter SET n = n + 1 WHERE name = 'site';
END;
CREATE TRIGGER site_count_del AFTER DELETE ON site BEGIN
    UPDATE store_counter SET n = n - 1 WHERE name = 'site';
END;
INSERT INTO store_counter(name, n) VALUES ('site', 0);

-- Site change log: who (task id or API caller) changed which site, how and why. Capped at
-- SITE_LOG_ROWS_MAX rows, oldest deleted first in the same transaction; the newest row is never
-- deleted, so ids (max + 1) never repeat.
CREATE TABLE site_log (
    id         INTEGER PRIMARY KEY,
    site_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    who        TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX site_log_site ON site_log(site_id, id);
-- Site operations runs asked for (the persisted site wait queue). A row is either waiting
-- (reply IS NULL: served in priority-then-arrival order when a site change lets it through) or
-- answered and not yet taken by its run (the answer survives a crash, so a restarted run gets
-- the same site instead of locking a second one). Deleted when the run takes the answer,
-- leaves the wait (stop, pause, interrupt) or ends.
CREATE TABLE site_request (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    fiber      INTEGER NOT NULL,
    token      INTEGER NOT NULL,
    priority   INTEGER NOT NULL,
    block      TEXT NOT NULL,
    op         TEXT NOT NULL,
    fair_key   TEXT,
    -- Prefilters for a change of one site: the op's site id / group (NULL: any).
    site_key   TEXT,
    group_key  TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    reply      TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (run_id, token)
);
CREATE INDEX site_request_waiting ON site_request(priority DESC, id) WHERE reply IS NULL;
