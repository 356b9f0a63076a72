CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    portal        TEXT NOT NULL,
    portal_run_id TEXT NOT NULL,
    action        TEXT NOT NULL,
    state         TEXT NOT NULL,
    stack_key     TEXT NOT NULL,
    pipeline_id   INTEGER,
    data          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (portal, portal_run_id)
);
CREATE INDEX runs_state ON runs (state, updated_at);
CREATE INDEX runs_stack ON runs (stack_key, state);
CREATE INDEX runs_pipeline ON runs (pipeline_id);

-- The audit trail: append-only.
CREATE TABLE run_events (
    run_id  TEXT NOT NULL REFERENCES runs (id),
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL REFERENCES runs (id),
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    done_at    INTEGER
);
CREATE INDEX outbox_due ON outbox (kind, done_at, next_at);
CREATE INDEX outbox_run ON outbox (run_id, kind, done_at, id);
