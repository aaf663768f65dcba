-- The console's lists at scale (issue 19): a page shows 50 rows of 100,000 or
-- more, and must not read or sort the others.

-- A page of certificates in one state, newest first, walks this index in id
-- order, checks the expiry in the index itself and stops after the page. The
-- (status, not_after, id) index serves the counts; ranging over it for a page
-- meant fetching and sorting every match (most of the table for "active").
CREATE INDEX certificates_state ON certificates (status, id, not_after);

-- Counting one CA's certificates in one state (the list with both filters, the
-- check before a CA is deleted) reads index entries alone.
CREATE INDEX certificates_ca_state ON certificates (ca_id, status, not_after);

-- The dashboard's revocations per day read the period's revocations alone.
-- status leads so that SQLite, which keeps no statistics here, prefers this
-- index (an equality and a range) to certificates_state (an equality).
CREATE INDEX certificates_revoked_at ON certificates (status, revoked_at)
    WHERE status = 'revoked';

-- The signed CSRs come newest signed first: in this index's order, not sorted.
CREATE INDEX csrs_signed ON csrs (status, signed_at, id) WHERE status = 'signed';
