-- Fill tenant and environment from the json text when a writer left them
-- empty (a replica older than 005, still running during a rolling upgrade),
-- and fill them again for rows 005 may have read wrongly: its pattern took
-- the first {"stack":{"tenant":… in the text, and a request's inputs or
-- entity properties come before the run's own stack. The run's stack comes
-- right after its operation and blueprint (paved writes them in that
-- order), which an input cannot precede. Also repairs a database that
-- applied 003 before it kept the expiry as a column.
CREATE FUNCTION runs_stack_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant = '' OR NEW.environment = '' THEN
        NEW.tenant := COALESCE(substring(NEW.data::text from '"operation":"[^"\\]*","blueprint":"[^"\\]*","stack":\{"tenant":"([^"\\]*)"'), '');
        NEW.environment := COALESCE(substring(NEW.data::text from '"operation":"[^"\\]*","blueprint":"[^"\\]*","stack":\{"tenant":"[^"\\]*","environment":"([^"\\]*)"'), '');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER runs_stack_columns BEFORE INSERT OR UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION runs_stack_columns();

UPDATE runs SET
    tenant = COALESCE(substring(data::text from '"operation":"[^"\\]*","blueprint":"[^"\\]*","stack":\{"tenant":"([^"\\]*)"'), tenant),
    environment = COALESCE(substring(data::text from '"operation":"[^"\\]*","blueprint":"[^"\\]*","stack":\{"tenant":"[^"\\]*","environment":"([^"\\]*)"'), environment);

ALTER TABLE runs ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;
DROP INDEX IF EXISTS runs_expiring;
CREATE INDEX runs_expiring ON runs (state) WHERE expires_at IS NOT NULL;
