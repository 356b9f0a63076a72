-- A run's tenant and environment as columns, written with every run: the
-- filters on them (the operator page, drift checks, budgets' totals) read
-- data->'stack'->>'tenant', which parses the whole json text and fails on
-- any run holding a \u0000 anywhere. Existing rows are filled from the text
-- itself (paved writes the stack as {"tenant":…,"environment":…}, names
-- that are DNS labels), which no escape can break.
ALTER TABLE runs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN environment TEXT NOT NULL DEFAULT '';
UPDATE runs SET
    tenant = COALESCE(substring(data::text from '"stack":\{"tenant":"([^"\\]*)"'), ''),
    environment = COALESCE(substring(data::text from '"stack":\{"tenant":"[^"\\]*","environment":"([^"\\]*)"'), '');
CREATE INDEX runs_tenant_environment ON runs (tenant, environment, state, created_at DESC);
