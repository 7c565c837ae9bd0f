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
