-- PostgreSQL's foreign keys become DEFERRABLE here, for restores. SQLite defers any foreign
-- key inside a transaction that asks (PRAGMA defer_foreign_keys), so nothing changes; the
-- migration exists to keep both engines' schema versions in step.
SELECT 1;
