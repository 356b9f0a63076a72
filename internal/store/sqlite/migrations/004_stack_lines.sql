-- How many runs hold or wait for each stack (dispatching, running, queued),
-- kept by triggers on every write of runs, so that a new run's place in
-- line is one row read instead of a count over the whole line.
CREATE TABLE stack_lines (
    stack_key TEXT PRIMARY KEY,
    depth     INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO stack_lines (stack_key, depth)
    SELECT stack_key, COUNT(*) FROM runs WHERE state IN ('dispatching', 'running', 'queued') GROUP BY stack_key;

CREATE TRIGGER runs_line_insert AFTER INSERT ON runs
WHEN NEW.state IN ('dispatching', 'running', 'queued')
BEGIN
    INSERT INTO stack_lines (stack_key, depth) VALUES (NEW.stack_key, 1)
        ON CONFLICT (stack_key) DO UPDATE SET depth = depth + 1;
END;

CREATE TRIGGER runs_line_leave AFTER UPDATE OF state, stack_key ON runs
WHEN OLD.state IN ('dispatching', 'running', 'queued')
    AND (NEW.state NOT IN ('dispatching', 'running', 'queued') OR NEW.stack_key <> OLD.stack_key)
BEGIN
    UPDATE stack_lines SET depth = depth - 1 WHERE stack_key = OLD.stack_key;
END;

CREATE TRIGGER runs_line_enter AFTER UPDATE OF state, stack_key ON runs
WHEN NEW.state IN ('dispatching', 'running', 'queued')
    AND (OLD.state NOT IN ('dispatching', 'running', 'queued') OR NEW.stack_key <> OLD.stack_key)
BEGIN
    INSERT INTO stack_lines (stack_key, depth) VALUES (NEW.stack_key, 1)
        ON CONFLICT (stack_key) DO UPDATE SET depth = depth + 1;
END;

CREATE TRIGGER runs_line_delete AFTER DELETE ON runs
WHEN OLD.state IN ('dispatching', 'running', 'queued')
BEGIN
    UPDATE stack_lines SET depth = depth - 1 WHERE stack_key = OLD.stack_key;
END;
