-- paved's run store on PostgreSQL. Times are timestamptz; ids compare
-- byte-wise (COLLATE "C") so that paging by id agrees with Go's order.
CREATE TABLE runs (
    id              TEXT COLLATE "C" PRIMARY KEY,
    portal          TEXT NOT NULL,
    portal_run_id   TEXT NOT NULL,
    action          TEXT NOT NULL,
    state           TEXT NOT NULL,
    stack_key       TEXT NOT NULL,
    pipeline_id     BIGINT,
    pipeline_status TEXT NOT NULL DEFAULT '',
    -- The whole run as JSON (json, not jsonb: kept as written, \u0000 included).
    data            JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    -- The run's pipeline exists and has not finished in GitLab.
    pipeline_active BOOLEAN GENERATED ALWAYS AS (
        pipeline_id IS NOT NULL AND pipeline_status NOT IN ('success', 'failed', 'canceled', 'skipped')) STORED,
    -- The run holds its stack (dispatching, running, or ended while its
    -- pipeline still winds down) or waits in line for it (queued).
    on_stack        BOOLEAN GENERATED ALWAYS AS (
        state IN ('queued', 'dispatching', 'running')
        OR (state IN ('canceled', 'timed_out') AND pipeline_id IS NOT NULL
            AND pipeline_status NOT IN ('success', 'failed', 'canceled', 'skipped'))) STORED,
    UNIQUE (portal, portal_run_id)
);
CREATE INDEX runs_state ON runs (state, updated_at);
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_pipeline ON runs (pipeline_id) WHERE pipeline_id IS NOT NULL;
-- Only the few runs on a stack, not its history: what a dispatch claim reads.
CREATE INDEX runs_on_stack ON runs (stack_key, created_at, id) WHERE on_stack;

-- The audit trail: append-only.
CREATE TABLE run_events (
    run_id  TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    seq     BIGINT NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    state   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Work written with the state change that causes it. Of the open tasks of
-- one (run, kind) only the oldest is the head, and only a head is claimed,
-- so a run's reports go out in order. A dispatch head found waiting for its
-- stack is parked (next_at moves on) until a run of the stack lets go.
CREATE TABLE outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    kind       TEXT NOT NULL,
    stack_key  TEXT NOT NULL,
    payload    JSON NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    TIMESTAMPTZ NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    done_at    TIMESTAMPTZ,
    head       BOOLEAN NOT NULL,
    parked     BOOLEAN NOT NULL DEFAULT false
);
-- A claim reads due heads of a kind, earliest first, and stops at its batch.
CREATE INDEX outbox_due_heads ON outbox (kind, next_at, id) WHERE head AND done_at IS NULL;
-- The next head of a (run, kind), found when its head completes.
CREATE INDEX outbox_open ON outbox (run_id, kind, id) WHERE done_at IS NULL;
-- The heads of a stack's runs, among them the dispatches its release wakes.
-- (Not limited to kind 'dispatch': such an index would also match the
-- claim's scan of due dispatch heads, and the planner could read it whole.)
CREATE INDEX outbox_stack_heads ON outbox (stack_key, id) WHERE head AND done_at IS NULL;
CREATE INDEX outbox_pending ON outbox (kind) WHERE done_at IS NULL;

-- Log lines the pipeline posted, one row each, kept byte for byte (bytea:
-- a line may hold NUL or bytes that are not UTF-8).
CREATE TABLE run_logs (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    seq    BIGINT NOT NULL,
    at     TIMESTAMPTZ NOT NULL,
    line   BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- One row the readiness probe writes, to prove the store can write.
CREATE TABLE store_health (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TIMESTAMPTZ NOT NULL
);
