-- The expiry as a column, set by the writer, instead of the index over
-- json_extract(data, '$.expiresAt') (006): a partial index's expression is
-- evaluated on every write of runs, so the single writer parsed each run's
-- JSON once more per insert and update.
DROP INDEX runs_expiring;
ALTER TABLE runs ADD COLUMN expires_at INTEGER;
UPDATE runs SET expires_at = CAST(ROUND((julianday(json_extract(data, '$.expiresAt')) - 2440587.5) * 86400000) AS INTEGER)
    WHERE json_extract(data, '$.expiresAt') IS NOT NULL;
CREATE INDEX runs_expiring ON runs (state) WHERE expires_at IS NOT NULL;
