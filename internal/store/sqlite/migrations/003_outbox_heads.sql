-- Only the oldest open task of a (run, kind) may be claimed, so that a
-- run's reports reach the portal in order. head marks it, maintained when
-- tasks are written and completed, so a claim reads due heads from an index
-- instead of testing every open task against all the others.
ALTER TABLE outbox ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET head = 1 WHERE done_at IS NULL AND id IN (
    SELECT MIN(id) FROM outbox WHERE done_at IS NULL GROUP BY run_id, kind);
CREATE INDEX outbox_heads ON outbox (kind, next_at) WHERE head = 1 AND done_at IS NULL;
DROP INDEX outbox_due;
CREATE INDEX outbox_open ON outbox (kind) WHERE done_at IS NULL;
