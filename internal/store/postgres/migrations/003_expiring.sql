-- When an ephemeral stack's CREATE expires (run.Run.ExpiresAt, also in
-- data): a column, not an index over data->>'expiresAt', because reading a
-- key of a json value parses the whole text, and a run's data may hold a
-- \u0000 PostgreSQL refuses to turn into text. The expiry scheduler reads
-- only the runs that hold one, however many the store has.
ALTER TABLE runs ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX runs_expiring ON runs (state) WHERE expires_at IS NOT NULL;
