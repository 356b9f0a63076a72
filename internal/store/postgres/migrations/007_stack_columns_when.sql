-- runs_stack_columns (006) has work only when a writer left tenant or
-- environment empty (a replica older than 005): with the test in the
-- trigger's WHEN, PostgreSQL no longer calls the function for every other
-- write of runs, each intake's among them.
DROP TRIGGER runs_stack_columns ON runs;
CREATE TRIGGER runs_stack_columns BEFORE INSERT OR UPDATE ON runs FOR EACH ROW
    WHEN (NEW.tenant = '' OR NEW.environment = '') EXECUTE FUNCTION runs_stack_columns();
