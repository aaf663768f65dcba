-- Foreign keys may be checked at commit instead of per statement, so that a restore can load
-- tables in any order, rows that point at each other included (SET CONSTRAINTS ALL DEFERRED
-- inside its transaction). Every other transaction still checks them per statement
-- (INITIALLY IMMEDIATE). Later migrations declare new references DEFERRABLE too; a store test
-- checks that none is left out.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conrelid::regclass AS tbl, conname
        FROM pg_constraint
        WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I DEFERRABLE INITIALLY IMMEDIATE',
                       c.tbl, c.conname);
    END LOOP;
END $$;
