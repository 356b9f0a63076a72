-- The events one change records (an intake writes four) may share one row:
-- message is the first, more a JSON array of the ones after it, whose seqs
-- follow the row's. One B-tree insert and one foreign-key check instead of
-- one each per event, on the single writer's path. Older rows have none.
ALTER TABLE run_events ADD COLUMN more TEXT;
