-- Log lines the pipeline posted, one row each: appending a line never
-- rewrites the run.
CREATE TABLE run_logs (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- One row the readiness probe writes, to prove the store can write.
CREATE TABLE store_health (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
