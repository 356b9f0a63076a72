-- A stack's runs, newest first (Query.Stack: the expiry scheduler, once a
-- minute for each ephemeral stack, and the stack-entity lookups): runs_on_stack
-- is partial (runs holding their stack), so without this a quiet stack's
-- runs were found by walking runs_created across the whole table.
CREATE INDEX runs_stack_created ON runs (stack_key, created_at DESC, id DESC);
