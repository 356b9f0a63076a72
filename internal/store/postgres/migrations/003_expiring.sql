-- The runs that made an ephemeral stack and hold its expiry: the expiry
-- scheduler reads only these, however many runs the store holds.
CREATE INDEX runs_expiring ON runs (state) WHERE (data->>'expiresAt') IS NOT NULL;
