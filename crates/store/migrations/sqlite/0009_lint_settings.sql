-- Lint rules a CA downgrades to warnings, comma-separated rule names; empty: every rule refuses.
ALTER TABLE cas ADD COLUMN lint_warn_only TEXT NOT NULL DEFAULT '';
