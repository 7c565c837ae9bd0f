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
