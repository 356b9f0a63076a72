-- Events are small rows read by run: keyed by (run_id, seq) alone, without
-- a rowid, each is one B-tree insert instead of two (table and key index).
CREATE TABLE run_events_keyed (
    run_id  TEXT NOT NULL REFERENCES runs (id),
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO run_events_keyed (run_id, seq, at, state, message)
    SELECT run_id, seq, at, state, message FROM run_events;
DROP TABLE run_events;
ALTER TABLE run_events_keyed RENAME TO run_events;

-- A run has no pipeline until it is dispatched: a new run need not enter
-- this index.
DROP INDEX runs_pipeline;
CREATE INDEX runs_pipeline ON runs (pipeline_id) WHERE pipeline_id IS NOT NULL;
