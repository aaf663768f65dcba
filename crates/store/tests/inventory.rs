//! The inventory at scale (issue 19): with 100,000 certificates, 100,000 audit records and
//! 20,000 CSRs, each query behind the console's main pages reads through an index: the
//! certificate list's first page and count, unfiltered and with each filter the console offers,
//! a certificate, the audit list, the CSR list, the dashboard's totals, trend and expiry counts,
//! and the CA pages' counts. Nothing is timed; the plans are checked (`EXPLAIN QUERY PLAN` on
//! SQLite, `EXPLAIN (FORMAT JSON)` on PostgreSQL when CERTMINT_TEST_DATABASE_URL is set).
//!
//! Each statement is the one the store function sends, taken from it as it runs
//! ([`Reader::recording`]), so a change to a list's SQL that loses its index fails here.
//!
//! SQLite is left without statistics, as certmint runs it (it never runs ANALYZE), so these are
//! the plans it uses. PostgreSQL is analyzed, as autovacuum does, and explains with
//! `enable_seqscan = off`: the plan then shows whether an index can serve the statement at all,
//! whatever the table's size. The checks are strict on SQLite (which index, no sort of the
//! matches for a page) and on PostgreSQL only that no table is read row by row, since its
//! planner rightly walks the primary key and filters when most rows match.
//!
//! The substring search looks its text up in a trigram index (issue 25: FTS5 on SQLite,
//! pg_trgm on PostgreSQL) and reads only the rows the index names.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use certmint_store::testing::{Recorded, Statement, Value};
use certmint_store::{
    AuditFilter, Backend, CaId, CertFields, CertificateFilter, CertificateId, CertificateState,
    CsrStatus, NewCa, PageRequest, Reader, Store,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ROWS: i64 = 100_000;
const CSRS: i64 = 20_000;
/// The id of the one group, the team of some certificates.
const TEAM: i64 = 1;

/// A migrated store and its URL.
async fn store(dir: &std::path::Path) -> (Store, String) {
    let url = match std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => certmint_store::testing::fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("CERTMINT_TEST_DATABASE_URL is set, but PostgreSQL is unusable: {e}")
            }),
        None => format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
    };
    let store = Store::connect(&url, 2).await.expect("database");
    store.migrate().await.expect("migrations");
    (store, url)
}

fn ca(name: &str, now: OffsetDateTime) -> NewCa {
    NewCa {
        refid: format!("refid-{name}"),
        name: name.into(),
        description: None,
        ca_type: "root".into(),
        parent_id: None,
        key_id: None,
        path_len: None,
        is_default: false,
        source: certmint_store::CaSource::Imported,
        require_template: false,
        cert: CertFields {
            subject: format!("CN={name}"),
            common_name: Some(name.into()),
            issuer: format!("CN={name}"),
            serial: "01".into(),
            not_before: now,
            not_after: now + Duration::days(3650),
            key_type: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            subject_key_id: None,
            authority_key_id: None,
            fingerprint_sha256: format!("fp-{name}"),
            der: vec![0x30, 0x00],
        },
    }
}

/// Fills the tables in one statement each: certificates stored ten minutes apart over the past
/// two years, split between two CAs, a tenth revoked, a fifth expired, the rest ending over the
/// coming two years, a third of each key type, a seventh each by ACME and EST, one in fifty a
/// renewal of the one before, one in a hundred with an IP address, one in twenty of a team;
/// tags: a quarter `prod`, one in a hundred `pci`; an audit record per certificate; CSRs, half
/// of them signed.
async fn fill(store: &Store, first_ca: CaId, now: OffsetDateTime) -> TestResult {
    let now_us = now.unix_timestamp() * 1_000_000;
    let der = match store.backend() {
        Backend::Sqlite => "x'3000'",
        Backend::Postgres => "'\\x3000'::bytea",
    };
    let numbers = |n: i64| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < {n})"
        )
    };
    let certificates = format!(
        "{} INSERT INTO certificates (refid, ca_id, sans, status, revoked_at, \
           revocation_reason, subject, common_name, issuer, serial, not_before, not_after, \
           key_type, signature_algorithm, fingerprint_sha256, source, renewed_from, der, is_ca, \
           team_id, created_at, updated_at) \
         SELECT 'ref-' || i, {first_ca} + (i % 2), 'dns:host' || i || '.example.test' || \
           CASE WHEN i % 100 = 0 THEN ' ip:10.0.' || (i % 250) || '.1' ELSE '' END, \
           CASE WHEN i % 10 = 0 THEN 'revoked' ELSE 'valid' END, \
           CASE WHEN i % 10 = 0 THEN {now_us} - (i % 90) * 86400000000 END, \
           CASE WHEN i % 10 = 0 THEN 'keyCompromise' END, \
           'CN=host' || i || '.example.test', 'host' || i || '.example.test', 'CN=CA', \
           'serial' || i, {now_us} - 86400000000, \
           CASE WHEN i % 5 = 0 THEN {now_us} - 3600000000 \
                ELSE {now_us} + (i % 730) * 86400000000 END, \
           CASE i % 3 WHEN 0 THEN 'RSA 2048' WHEN 1 THEN 'EC P-256' ELSE 'Ed25519' END, \
           CASE i % 3 WHEN 0 THEN 'sha256WithRSAEncryption' WHEN 1 THEN 'ecdsa-with-SHA256' \
             ELSE 'ed25519' END, \
           'fp' || i, CASE i % 7 WHEN 0 THEN 'acme' WHEN 1 THEN 'est' ELSE 'api' END, \
           CASE WHEN i % 50 = 0 THEN i - 1 END, {der}, 0, \
           CASE WHEN i % 20 = 0 THEN {TEAM} END, {now_us} - ({ROWS} - i) * 600000000, {now_us} \
         FROM n",
        numbers(ROWS)
    );
    let mut tx = store.begin_write().await?;
    let team = tx
        .insert_group(
            &certmint_store::GroupFields {
                name: "web".into(),
                description: None,
                role: None,
                permissions: Vec::new(),
            },
            now,
        )
        .await?;
    tx.commit().await?;
    assert_eq!(team, TEAM, "the team's id, which the rows name");
    assert_eq!(
        store.execute_raw(&certificates).await?,
        u64::try_from(ROWS)?
    );
    let tags = "INSERT INTO certificate_tags (certificate_id, tag) \
         SELECT id, 'prod' FROM certificates WHERE id % 4 = 0 \
         UNION ALL SELECT id, 'pci' FROM certificates WHERE id % 100 = 1";
    assert_eq!(
        store.execute_raw(tags).await?,
        u64::try_from(ROWS / 4 + ROWS / 100)?
    );
    let audit = format!(
        "{} INSERT INTO audit_log (id, created_at, username, action, resource_type, \
           resource_id, details, success, prev_hash, hash) \
         SELECT i, {now_us} - ({ROWS} - i) * 600000000, 'admin', 'certificate.issue', \
           'certificate', 'ref-' || i, 'CN=host' || i || '.example.test', 1, 'p', 'h' \
         FROM n",
        numbers(ROWS)
    );
    assert_eq!(store.execute_raw(&audit).await?, u64::try_from(ROWS)?);
    let csrs = format!(
        "{} INSERT INTO csrs (refid, name, subject, common_name, sans, key_type, \
           signature_algorithm, public_key, status, source, der, created_at, signed_at, \
           updated_at) \
         SELECT 'csr-' || i, 'csr ' || i, 'CN=csr' || i || '.example.test', \
           'csr' || i || '.example.test', 'dns:csr' || i || '.example.test', 'EC P-256', \
           'ecdsa-with-SHA256', {der}, \
           CASE WHEN i % 2 = 0 THEN 'signed' ELSE 'pending' END, 'uploaded', {der}, \
           {now_us} - ({CSRS} - i) * 600000000, \
           CASE WHEN i % 2 = 0 THEN {now_us} - ({CSRS} - i) * 300000000 END, {now_us} \
         FROM n",
        numbers(CSRS)
    );
    assert_eq!(store.execute_raw(&csrs).await?, u64::try_from(CSRS)?);
    if store.backend() == Backend::Postgres {
        store.execute_raw("ANALYZE").await?;
    }
    Ok(())
}

/// How a statement must read one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Only what its conditions select, through an index, in the order asked for: no sort of
    /// the matches (SQLite `SEARCH`, without a temporary B-tree for ORDER BY).
    Searched,
    /// Only the index entries its conditions select, never the table's rows (SQLite `SEARCH
    /// … USING COVERING INDEX`): a count or a sum.
    Counted,
    /// A count of everything: index entries only, a whole index at most (SQLite `… USING
    /// COVERING INDEX`).
    Tallied,
    /// The newest rows first along the primary key (SQLite's rowid tree), stopping after the
    /// page: a page without conditions.
    Newest,
    /// For a list of few matches (the store's FEW_MATCHES, 10,000, or fewer): their ids
    /// found through an index (SQLite: a list subquery, then the page's rows by rowid), sorted
    /// if need be, never the table read row by row.
    Few,
    /// Only the entries of a partial index, which holds the matches and nothing else (SQLite:
    /// `SCAN … USING [COVERING] INDEX`), in id order.
    Partial,
    /// Only the rows a trigram index names for a text (SQLite: an FTS5 `MATCH`, then the rows
    /// by rowid; PostgreSQL: a bitmap scan of the trigram index).
    Matched,
}

/// Where the plans are asked for: a connection of the test's own to the same database.
enum Explainer {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Explainer {
    async fn connect(url: &str, backend: Backend) -> Result<Self, sqlx::Error> {
        Ok(match backend {
            Backend::Sqlite => Self::Sqlite(sqlx::SqliteConnection::connect(url).await?),
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut conn)
                    .await?;
                Self::Postgres(conn)
            }
        })
    }

    /// The plan of `statement` with its values bound: SQLite's plan lines, or PostgreSQL's
    /// plan as JSON.
    async fn plan(&mut self, statement: &Statement) -> Result<String, sqlx::Error> {
        macro_rules! bound {
            ($sql:expr) => {
                statement
                    .values
                    .iter()
                    .fold(sqlx::query(AssertSqlSafe($sql)), |q, value| match value {
                        Value::Int(v) => q.bind(*v),
                        Value::Text(v) => q.bind(v.clone()),
                        Value::Null => q.bind(None::<i64>),
                    })
            };
        }
        match self {
            Self::Sqlite(conn) => {
                let rows = bound!(format!("EXPLAIN QUERY PLAN {}", statement.sql))
                    .fetch_all(&mut *conn)
                    .await?;
                let lines: Result<Vec<String>, _> =
                    rows.iter().map(|r| r.try_get("detail")).collect();
                Ok(lines?.join("\n"))
            }
            Self::Postgres(conn) => {
                let row = bound!(format!("EXPLAIN (FORMAT JSON) {}", statement.sql))
                    .fetch_one(&mut *conn)
                    .await?;
                // A json column, whose wire form is its text.
                row.try_get_unchecked::<String, _>(0)
            }
        }
    }
}

/// What a plan does with `table`: the SQLite lines or PostgreSQL nodes that read it.
#[derive(Debug, Default)]
struct Reads {
    /// SQLite: `SEARCH table …`; PostgreSQL: an index scan with an index condition, or a
    /// bitmap scan.
    searched: usize,
    /// SQLite: `SCAN table USING [COVERING] INDEX …`; PostgreSQL: an index scan without a
    /// condition.
    index_walks: usize,
    /// SQLite: through a covering index (whether searched or walked).
    covering: usize,
    /// SQLite: `SCAN table`, its rowid tree; PostgreSQL: `Seq Scan`.
    table_walks: usize,
    /// PostgreSQL: a condition checked on each row read (`Filter`), with its text.
    filters: Vec<String>,
    /// Lookups of a text in a trigram index, anywhere in the plan: SQLite's `SCAN … VIRTUAL
    /// TABLE INDEX n:M…` (an FTS5 MATCH), PostgreSQL's bitmap scans of a `…_search` index.
    text_lookups: usize,
    /// Sorts the rows it read to answer ORDER BY (SQLite's temporary B-tree; PostgreSQL's Sort
    /// nodes are not counted: its planner may sort a few matches where that is cheaper).
    sorts: bool,
}

fn sqlite_reads(plan: &str, table: &str) -> Reads {
    let mut reads = Reads::default();
    for line in plan.lines().map(str::trim) {
        if line == "USE TEMP B-TREE FOR ORDER BY" {
            reads.sorts = true;
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (name, how) = rest.split_once(' ').unwrap_or((rest, ""));
        if verb == "SCAN"
            && how
                .strip_prefix("VIRTUAL TABLE INDEX ")
                .and_then(|index| index.split_once(':'))
                .is_some_and(|(_, constraints)| constraints.starts_with('M'))
        {
            reads.text_lookups += 1;
        }
        if name != table {
            continue;
        }
        match verb {
            "SEARCH" => reads.searched += 1,
            "SCAN" if how.starts_with("USING") => reads.index_walks += 1,
            "SCAN" => reads.table_walks += 1,
            _ => {}
        }
        if how.contains("COVERING INDEX") {
            reads.covering += 1;
        }
    }
    reads
}

fn postgres_reads(plan: &str, table: &str) -> Reads {
    fn walk(node: &serde_json::Value, table: &str, reads: &mut Reads) {
        let field = |name: &str| node.get(name).and_then(serde_json::Value::as_str);
        if field("Node Type") == Some("Bitmap Index Scan")
            && field("Index Name").is_some_and(|i| i.ends_with("_search"))
        {
            reads.text_lookups += 1;
        }
        if field("Relation Name") == Some(table) {
            match field("Node Type") {
                Some("Seq Scan") => reads.table_walks += 1,
                Some("Bitmap Heap Scan") => reads.searched += 1,
                Some("Index Scan" | "Index Only Scan") if field("Index Cond").is_some() => {
                    reads.searched += 1;
                }
                Some("Index Scan" | "Index Only Scan") => reads.index_walks += 1,
                _ => {}
            }
            if let Some(filter) = field("Filter") {
                reads.filters.push(filter.to_owned());
            }
        }
        for child in node
            .get("Plans")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, table, reads);
        }
    }
    let json: serde_json::Value = serde_json::from_str(plan).expect("EXPLAIN gives JSON");
    let mut reads = Reads::default();
    for root in json.as_array().into_iter().flatten() {
        if let Some(node) = root.get("Plan") {
            walk(node, table, &mut reads);
        }
    }
    reads
}

/// Why `reads` of a table break `rule`, if they do.
fn broken(backend: Backend, rule: Read, r: &Reads) -> Option<&'static str> {
    let read = r.searched + r.index_walks + r.table_walks;
    match (backend, rule) {
        (_, _) if read == 0 => Some("the plan does not read the table"),
        (Backend::Sqlite, Read::Searched) if r.searched != read => {
            Some("reads more than its conditions select")
        }
        (Backend::Sqlite, Read::Searched) if r.sorts => Some("sorts every match to keep a page"),
        (Backend::Sqlite, Read::Few) if r.table_walks > 0 => Some("reads the table row by row"),
        (Backend::Sqlite, Read::Partial) if r.index_walks != read => {
            Some("does not walk one index")
        }
        (Backend::Sqlite, Read::Partial) if r.sorts => Some("sorts what it walks"),
        (Backend::Sqlite, Read::Counted) if r.searched != read => {
            Some("reads more than its conditions select")
        }
        (Backend::Sqlite, Read::Counted | Read::Tallied) if r.covering != read => {
            Some("reads the table's rows to count")
        }
        (Backend::Sqlite, Read::Newest) if r.searched + r.table_walks + r.index_walks != 1 => {
            Some("does not walk one tree")
        }
        (Backend::Sqlite, Read::Newest) if r.sorts => Some("sorts the table to keep a page"),
        (_, Read::Matched) if r.text_lookups == 0 => {
            Some("does not look the text up in its trigram index")
        }
        (Backend::Sqlite, Read::Matched) if r.searched != read => {
            Some("reads more than the index names")
        }
        (Backend::Postgres, _) if r.table_walks > 0 => {
            Some("reads the table row by row where no index serves it")
        }
        _ => None,
    }
}

/// Explains what a store function ran and checks it; collects the failures and the plans.
struct Checks {
    explainer: Explainer,
    backend: Backend,
    report: String,
    failures: Vec<String>,
}

impl Checks {
    /// The statements `recorded` holds, the function named `what` having run them, read each
    /// table as `expected` says (one entry per statement, in order).
    async fn expect(&mut self, recorded: &Recorded, what: &str, expected: &[&[(&str, Read)]]) {
        let statements = recorded.take();
        if statements.len() != expected.len() {
            self.failures.push(format!(
                "{what}: ran {} statements through the recorded path, expected {}: {statements:#?}",
                statements.len(),
                expected.len()
            ));
            return;
        }
        for (statement, tables) in statements.iter().zip(expected) {
            let plan = self.explainer.plan(statement).await.expect("EXPLAIN");
            let shown = match self.backend {
                Backend::Sqlite => plan.clone(),
                Backend::Postgres => summary(&plan),
            };
            self.report.push_str(&format!(
                "-- {what}\n{}\n{}\n\n",
                statement.sql,
                shown.trim_end()
            ));
            for (table, rule) in *tables {
                let reads = match self.backend {
                    Backend::Sqlite => sqlite_reads(&plan, table),
                    Backend::Postgres => postgres_reads(&plan, table),
                };
                if let Some(why) = broken(self.backend, *rule, &reads) {
                    self.failures.push(format!(
                        "{what}: {table} {why} (expected {rule:?}):\n{}\n{shown}",
                        statement.sql
                    ));
                }
            }
        }
    }
}

/// A PostgreSQL JSON plan, one node a line: type, relation, index, condition, filter.
fn summary(plan: &str) -> String {
    fn walk(node: &serde_json::Value, depth: usize, out: &mut String) {
        let field = |name: &str| {
            node.get(name)
                .and_then(serde_json::Value::as_str)
                .map(|v| format!(" {name}: {v}"))
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "{}{}{}{}{}{}\n",
            "  ".repeat(depth),
            node.get("Node Type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?"),
            field("Relation Name"),
            field("Index Name"),
            field("Index Cond"),
            field("Filter"),
        ));
        for child in node
            .get("Plans")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, depth + 1, out);
        }
    }
    let json: serde_json::Value = serde_json::from_str(plan).unwrap_or_default();
    let mut out = String::new();
    for root in json.as_array().into_iter().flatten() {
        if let Some(node) = root.get("Plan") {
            walk(node, 0, &mut out);
        }
    }
    out
}

/// How the statements of a list read `table`: the count (capped at 20,000), then, for a list
/// with more matches, the ends of the primary key and the estimate's sample (runs of ids,
/// through the primary key only), then the page.
fn list_reads(
    table: &'static str,
    estimated: bool,
    count: Read,
    page: Read,
) -> Vec<Vec<(&'static str, Read)>> {
    let mut statements = vec![vec![(table, count)]];
    if estimated {
        statements.extend([vec![(table, Read::Searched)], vec![(table, Read::Searched)]]);
    }
    statements.push(vec![(table, page)]);
    statements
}

/// That `page`'s total is an estimate, marked as one, within 5% of `actual`.
fn assert_close<T>(page: &certmint_store::Page<T>, actual: i64) {
    assert!(
        page.estimated,
        "{} of {actual} is not marked an estimate",
        page.total
    );
    assert!(
        (page.total - actual).abs() * 20 <= actual,
        "estimated {} of {actual}",
        page.total
    );
}

/// The statements' expectations as [`Checks::expect`] takes them.
fn slices<'a>(statements: &'a [Vec<(&'static str, Read)>]) -> Vec<&'a [(&'static str, Read)]> {
    statements.iter().map(Vec::as_slice).collect()
}

const FIRST_PAGE: PageRequest = PageRequest {
    page: 1,
    per_page: 50,
    after: None,
};

#[tokio::test]
async fn the_console_pages_read_a_large_inventory_through_indexes() -> TestResult {
    use Read::{Counted, Few, Matched, Newest, Partial, Searched, Tallied};
    const C: &str = "certificates";

    let dir = tempfile::tempdir()?;
    let (store, url) = store(dir.path()).await;
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let first = tx.insert_ca(&ca("one", now), now).await?;
    tx.insert_ca(&ca("two", now), now).await?;
    tx.commit().await?;
    fill(&store, first, now).await?;

    let (reader, recorded): (Reader, Recorded) = store.recording();
    let mut checks = Checks {
        explainer: Explainer::connect(&url, store.backend()).await?,
        backend: store.backend(),
        report: String::new(),
        failures: Vec::new(),
    };

    // The certificate list: a count and a page, for each filter the console offers.
    let in_state = |state| CertificateFilter::in_state(state);
    let lists = [
        ("unfiltered", CertificateFilter::default(), Tallied, Newest),
        (
            "active",
            in_state(CertificateState::Active),
            Counted,
            Searched,
        ),
        (
            "expired",
            in_state(CertificateState::Expired),
            Counted,
            Searched,
        ),
        (
            "revoked",
            in_state(CertificateState::Revoked),
            Counted,
            Searched,
        ),
        (
            "expiring within 30 days",
            in_state(CertificateState::ExpiringBefore(now + Duration::days(30))),
            Counted,
            Searched,
        ),
        (
            "by CA",
            CertificateFilter {
                ca_id: Some(first),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "active, by CA",
            CertificateFilter {
                state: Some(CertificateState::Active),
                ca_id: Some(CaId(first.0 + 1)),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "revoked, by CA",
            CertificateFilter {
                state: Some(CertificateState::Revoked),
                ca_id: Some(first),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "search",
            CertificateFilter {
                search: Some("host12345".into()),
                ..Default::default()
            },
            Matched,
            Matched,
        ),
        (
            "search, revoked",
            CertificateFilter {
                state: Some(CertificateState::Revoked),
                search: Some("HOST1234".into()),
                ..Default::default()
            },
            Matched,
            Matched,
        ),
        (
            "search, a serial typed with colons",
            CertificateFilter {
                search: Some("0A:1B:2C:3D:4E".into()),
                ..Default::default()
            },
            Matched,
            Matched,
        ),
    ];
    // The other filters, one at a time, and the other orders.
    let window = certmint_store::TimeWindow {
        from: Some(now - Duration::days(30)),
        until: Some(now + Duration::days(30)),
    };
    let filters = [
        (
            "from a template",
            CertificateFilter {
                template_id: Some(certmint_store::TemplateId(1)),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "by source",
            CertificateFilter {
                source: Some(certmint_store::CertificateSource::Est),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "by key type",
            CertificateFilter {
                key_type: Some("RSA 2048".into()),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "by signature algorithm",
            CertificateFilter {
                signature_algorithm: Some("ed25519".into()),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "by issuer",
            CertificateFilter {
                issuer: Some("CN=CA".into()),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "by owner",
            CertificateFilter {
                owner_id: Some(1),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "of a team",
            CertificateFilter {
                team_id: Some(TEAM),
                ..Default::default()
            },
            Counted,
            Few,
        ),
        (
            "with a rare tag",
            CertificateFilter {
                tag: Some("pci".into()),
                ..Default::default()
            },
            Searched,
            Few,
        ),
        (
            "with a common tag",
            CertificateFilter {
                tag: Some("prod".into()),
                ..Default::default()
            },
            Searched,
            Newest,
        ),
        (
            "with an IP address SAN",
            CertificateFilter {
                san_kind: Some(certmint_store::SanKind::Ip),
                ..Default::default()
            },
            Partial,
            Few,
        ),
        (
            "valid from within a window",
            CertificateFilter {
                valid_from: window,
                ..Default::default()
            },
            Counted,
            Newest,
        ),
        (
            "expiring within a window",
            CertificateFilter {
                valid_until: window,
                ..Default::default()
            },
            Counted,
            Newest,
        ),
        (
            "expiring within a narrow window",
            CertificateFilter {
                valid_until: certmint_store::TimeWindow {
                    from: Some(now + Duration::days(100)),
                    until: Some(now + Duration::days(101)),
                },
                ..Default::default()
            },
            Counted,
            Few,
        ),
        (
            "valid from a time none is",
            CertificateFilter {
                valid_from: certmint_store::TimeWindow {
                    from: Some(now),
                    until: None,
                },
                ..Default::default()
            },
            Counted,
            Few,
        ),
        (
            "renewed",
            CertificateFilter {
                renewed: Some(true),
                ..Default::default()
            },
            Searched,
            Searched,
        ),
        (
            "expiring, not renewed",
            CertificateFilter {
                state: Some(CertificateState::ExpiringBefore(now + Duration::days(30))),
                renewed: Some(false),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "key held here",
            CertificateFilter {
                has_key: Some(true),
                ..Default::default()
            },
            Counted,
            Few,
        ),
        (
            "key not held here",
            CertificateFilter {
                has_key: Some(false),
                ..Default::default()
            },
            Counted,
            Searched,
        ),
        (
            "sorted by expiry, soonest first",
            CertificateFilter {
                order: certmint_store::CertificateOrder::ExpiresFirst,
                ..Default::default()
            },
            Tallied,
            Newest,
        ),
        (
            "sorted by notBefore, latest first",
            CertificateFilter {
                order: certmint_store::CertificateOrder::ValidFromLast,
                ..Default::default()
            },
            Tallied,
            Newest,
        ),
        (
            "oldest first",
            CertificateFilter {
                order: certmint_store::CertificateOrder::Oldest,
                ..Default::default()
            },
            Tallied,
            Newest,
        ),
    ];
    for (label, filter, count, page) in lists.iter().chain(&filters) {
        let listed = reader.certificates(filter, now, FIRST_PAGE).await?;
        checks
            .expect(
                &recorded,
                &format!("certificate list, {label}"),
                &slices(&list_reads(C, listed.estimated, *count, *page)),
            )
            .await;
    }
    // A keyset page halfway down reads from where it starts, as the first page does.
    let halfway = PageRequest {
        after: Some(ROWS / 2),
        ..FIRST_PAGE
    };
    for (label, filter, count) in [
        ("unfiltered", CertificateFilter::default(), Tallied),
        ("revoked", in_state(CertificateState::Revoked), Counted),
        ("active", in_state(CertificateState::Active), Counted),
    ] {
        let listed = reader.certificates(&filter, now, halfway).await?;
        checks
            .expect(
                &recorded,
                &format!("certificate list, {label}, a page halfway down by cursor"),
                &slices(&list_reads(C, listed.estimated, count, Searched)),
            )
            .await;
    }
    // A common tag's count reads the tag's index entries only as far as the cap, each with
    // its certificate by primary key; the estimate and the page follow as for any list.
    let prod = CertificateFilter {
        tag: Some("prod".into()),
        ..Default::default()
    };
    let listed = reader.certificates(&prod, now, FIRST_PAGE).await?;
    let mut statements = list_reads(C, listed.estimated, Searched, Newest);
    statements[0].push(("certificate_tags", Counted));
    checks
        .expect(
            &recorded,
            "certificate list, with a common tag, its count from the tag's index",
            &slices(&statements),
        )
        .await;
    reader.certificate(CertificateId(4242)).await?;
    checks
        .expect(&recorded, "a certificate", &[&[(C, Searched)]])
        .await;

    // The audit list's first page.
    reader
        .audit_list(&AuditFilter::default(), FIRST_PAGE)
        .await?;
    checks
        .expect(
            &recorded,
            "audit list",
            &slices(&list_reads("audit_log", false, Tallied, Newest)),
        )
        .await;
    reader
        .audit_list(
            &AuditFilter::default(),
            PageRequest {
                after: Some(ROWS / 2),
                ..FIRST_PAGE
            },
        )
        .await?;
    checks
        .expect(
            &recorded,
            "audit list, a page halfway down by cursor",
            &slices(&list_reads("audit_log", false, Tallied, Searched)),
        )
        .await;

    // The CSR list: all, pending, signed (newest signed first).
    for (label, status, page) in [
        ("all", None, Newest),
        ("pending", Some(CsrStatus::Pending), Searched),
        ("signed", Some(CsrStatus::Signed), Searched),
    ] {
        reader.csrs(status, FIRST_PAGE).await?;
        let count = if status.is_some() { Counted } else { Tallied };
        checks
            .expect(
                &recorded,
                &format!("CSR list, {label}"),
                &[&[("csrs", count)], &[("csrs", page)]],
            )
            .await;
    }

    // The dashboard: totals, the trend, the expiry counts, the latest activity.
    reader.totals().await?;
    checks
        .expect(
            &recorded,
            "dashboard totals",
            &[&[(C, Tallied), ("csrs", Tallied)]],
        )
        .await;
    reader.certificate_trend(now, 30).await?;
    checks
        .expect(
            &recorded,
            "dashboard trend (issued, revoked)",
            &[&[(C, Counted)], &[(C, Counted)]],
        )
        .await;
    for days in [7, 30, 90] {
        let until = now + Duration::days(days);
        reader
            .count_certificates(&in_state(CertificateState::ExpiringBefore(until)), now)
            .await?;
        checks
            .expect(
                &recorded,
                &format!("dashboard, expiring within {days} days"),
                &[&[(C, Counted)]],
            )
            .await;
    }
    reader.audit_recent(10, 0).await?;
    checks
        .expect(&recorded, "dashboard activity", &[&[("audit_log", Newest)]])
        .await;

    // The CA pages: certificates per CA.
    reader.certificates_per_ca().await?;
    checks
        .expect(&recorded, "certificates per CA", &[&[(C, Tallied)]])
        .await;

    eprintln!("{}", checks.report);
    assert!(
        checks.failures.is_empty(),
        "{} statements do not read as expected:\n\n{}",
        checks.failures.len(),
        checks.failures.join("\n\n")
    );

    // An import's "stored already?" check finds certificates through the serial index.
    let plan = store
        .explain_certificate_known("fp4242", "serial4242")
        .await?;
    assert!(
        plan.contains("certificates_serial_tail"),
        "the known-certificate check does not use the serial index:\n{plan}"
    );
    let mut tx = store.begin_write().await?;
    assert!(tx.certificate_known("fp4242", "serial4242").await?);
    assert!(!tx.certificate_known("fp4242", "serial4243").await?);
    assert!(!tx.certificate_known("fp4243", "serial4242").await?);
    drop(tx);

    // And the pages are right: counts match the fill pattern.
    let page = PageRequest {
        page: 3,
        per_page: 50,
        after: None,
    };
    let revoked = store
        .certificates(&in_state(CertificateState::Revoked), now, page)
        .await?;
    // 10,000 matches are counted, one by one.
    assert_eq!((revoked.total, revoked.estimated), (ROWS / 10, false));
    assert_eq!(revoked.items.len(), 50);
    assert!(
        revoked
            .items
            .iter()
            .all(|c| c.status == certmint_store::CertificateStatus::Revoked)
    );
    // Newest first, page 3 of the multiples of ten.
    assert_eq!(revoked.items[0].refid, format!("ref-{}", ROWS - 100 * 10));
    let by_ca = store
        .certificates(
            &CertificateFilter {
                ca_id: Some(first),
                ..Default::default()
            },
            now,
            page,
        )
        .await?;
    // Past 20,000 matches, a list estimates, and says so.
    assert_close(&by_ca, ROWS / 2);
    // Multiples of 5 that are not multiples of 10 (those are revoked).
    let expired = store
        .certificates(&in_state(CertificateState::Expired), now, page)
        .await?;
    assert_eq!(expired.total, ROWS / 10);
    assert!(expired.items.iter().all(|c| c.cert.not_after <= now));
    let active = store
        .certificates(&in_state(CertificateState::Active), now, FIRST_PAGE)
        .await?;
    assert_close(&active, ROWS - ROWS / 10 - ROWS / 10);
    let everything = store
        .certificates(&CertificateFilter::default(), now, FIRST_PAGE)
        .await?;
    assert_close(&everything, ROWS);
    // A tag a quarter of the rows carry: estimated from the runs, each row's tag looked up;
    // a rare one counted.
    let tagged = |tag: &str| CertificateFilter {
        tag: Some(tag.into()),
        ..Default::default()
    };
    let prod = store.certificates(&tagged("prod"), now, FIRST_PAGE).await?;
    assert_close(&prod, ROWS / 4);
    assert!(prod.items.iter().all(|c| c.tags == ["prod"]));
    let pci = store.certificates(&tagged("pci"), now, FIRST_PAGE).await?;
    assert_eq!((pci.total, pci.estimated), (ROWS / 100, false));
    assert_eq!(active.items[0].refid, format!("ref-{}", ROWS - 1));
    let search = store
        .certificates(
            &CertificateFilter {
                search: Some("HOST4242.example".into()),
                ..Default::default()
            },
            now,
            PageRequest {
                page: 1,
                per_page: 10,
                after: None,
            },
        )
        .await?;
    assert_eq!(search.total, 1);
    let signed = store.csrs(Some(CsrStatus::Signed), FIRST_PAGE).await?;
    assert_eq!(signed.total, CSRS / 2);
    assert_eq!(signed.items[0].refid, format!("csr-{CSRS}"));
    let trend = store.certificate_trend(now, 30).await?;
    assert_eq!(trend.len(), 30);
    assert!(trend.iter().map(|d| d.revoked).sum::<i64>() > 0);

    // A passing run drops its PostgreSQL database (a failing one keeps it, to look at).
    drop(checks);
    store.close().await;
    if let Some(admin) = std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let name = url
            .split('?')
            .next()
            .and_then(|base| base.rsplit('/').next())
            .unwrap_or_default();
        assert!(name.starts_with("certmint_test_"), "{url}");
        let server = Store::connect(&admin, 1).await?;
        server
            .execute_raw(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        server.close().await;
    }
    Ok(())
}
