-- How many runs hold or wait for each stack (dispatching, running, queued),
-- kept by a trigger on every write of runs, so that a new run's place in
-- line is one row read instead of a count over the whole line.
CREATE TABLE stack_lines (
    stack_key TEXT PRIMARY KEY,
    depth     INTEGER NOT NULL
);

INSERT INTO stack_lines (stack_key, depth)
    SELECT stack_key, COUNT(*) FROM runs WHERE state IN ('dispatching', 'running', 'queued') GROUP BY stack_key;

CREATE FUNCTION runs_line() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was BOOLEAN := TG_OP <> 'INSERT' AND OLD.state IN ('dispatching', 'running', 'queued');
    now_in BOOLEAN := TG_OP <> 'DELETE' AND NEW.state IN ('dispatching', 'running', 'queued');
BEGIN
    IF was AND (NOT now_in OR NEW.stack_key <> OLD.stack_key) THEN
        UPDATE stack_lines SET depth = depth - 1 WHERE stack_key = OLD.stack_key;
    END IF;
    IF now_in AND (NOT was OR NEW.stack_key <> OLD.stack_key) THEN
        INSERT INTO stack_lines (stack_key, depth) VALUES (NEW.stack_key, 1)
            ON CONFLICT (stack_key) DO UPDATE SET depth = stack_lines.depth + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_line AFTER INSERT OR DELETE OR UPDATE OF state, stack_key ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_line();
