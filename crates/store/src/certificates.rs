use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::cert_fields::{CERT_COLUMN_COUNT, CERT_COLUMNS, CertFields};
use crate::db::{
    Arg, Backend, Filter, first, glob_any_case, ids_by_refid, like_escaped, like_pattern,
};
use crate::words::{CertificateSource, CertificateStatus};
use crate::{
    CaId, CertificateId, Error, KeyId, Page, PageRequest, Reader, TemplateId, WriteTx, from_micros,
    to_micros,
};

/// A certificate as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Integer id.
    pub id: CertificateId,
    /// Public identifier.
    pub refid: String,
    /// Issuing CA, when certmint holds it.
    pub ca_id: Option<CaId>,
    /// Private key, when certmint holds it.
    pub key_id: Option<KeyId>,
    /// Template it was issued from.
    pub template_id: Option<TemplateId>,
    /// Who answers for it: its requester unless reassigned.
    pub owner_id: Option<i64>,
    /// The group (team) that answers for it.
    pub team_id: Option<i64>,
    /// Its labels, sorted.
    pub tags: Vec<String>,
    /// The certificate this one renewed.
    pub renewed_from: Option<CertificateId>,
    /// Free text.
    pub description: Option<String>,
    /// SANs as `kind:value`.
    pub sans: Vec<String>,
    /// `valid` or `revoked`.
    pub status: CertificateStatus,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 reason name.
    pub revocation_reason: Option<String>,
    /// Why, in words.
    pub revocation_comment: Option<String>,
    /// When its key is known or suspected to have been compromised.
    pub invalidity_date: Option<OffsetDateTime>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Where it came from: api, acme, est, scep, import, discovery.
    pub source: CertificateSource,
    /// The certificate.
    pub cert: CertFields,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A certificate to store.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Public identifier.
    pub refid: String,
    /// Issuing CA.
    pub ca_id: Option<CaId>,
    /// Private key.
    pub key_id: Option<KeyId>,
    /// Template.
    pub template_id: Option<TemplateId>,
    /// Owner.
    pub owner_id: Option<i64>,
    /// Renewed certificate.
    pub renewed_from: Option<CertificateId>,
    /// Free text.
    pub description: Option<String>,
    /// SANs as `kind:value`.
    pub sans: Vec<String>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Origin.
    pub source: CertificateSource,
    /// The certificate.
    pub cert: CertFields,
}

/// Which certificates a list shows, by state at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateState {
    /// Not revoked and not expired.
    Active,
    /// Not revoked, past its notAfter.
    Expired,
    /// Revoked (including on hold).
    Revoked,
    /// Active and expiring before the given time.
    ExpiringBefore(OffsetDateTime),
}

impl CertificateState {
    /// The state a certificate with `status` (as stored) and `not_after` is in at `now`, by the
    /// rules the list's filters apply in SQL: [`CertificateState::Revoked`],
    /// [`CertificateState::Expired`] or [`CertificateState::Active`].
    pub fn of(status: CertificateStatus, not_after: OffsetDateTime, now: OffsetDateTime) -> Self {
        if status == CertificateStatus::Revoked {
            Self::Revoked
        } else if not_after <= now {
            Self::Expired
        } else {
            Self::Active
        }
    }

    /// Its name in the API: `active`, `expired`, `revoked` or `expiring`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::ExpiringBefore(_) => "expiring",
        }
    }
}

/// Filters for the certificate list. Each filter on a column equal to a value reads that
/// column's index in id order (migration 0036), so a page of matches newest first stops after
/// the page; a window in time is counted through its index and checked on the rows a page
/// walks.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    /// By state.
    pub state: Option<CertificateState>,
    /// By issuing CA.
    pub ca_id: Option<CaId>,
    /// Text in the common name, a SAN, the serial, the subject or the fingerprint; see
    /// [`text_search`].
    pub search: Option<String>,
    /// Issued from this template.
    pub template_id: Option<TemplateId>,
    /// Came in by this door.
    pub source: Option<CertificateSource>,
    /// Key algorithm and size as stored, e.g. `EC P-256`, `RSA 2048`, `Ed25519`.
    pub key_type: Option<String>,
    /// Signature algorithm as stored, e.g. `ecdsa-with-SHA256`.
    pub signature_algorithm: Option<String>,
    /// Issuer, RFC 4514, exactly as stored.
    pub issuer: Option<String>,
    /// Owned by this user (its requester unless reassigned).
    pub owner_id: Option<i64>,
    /// Answered for by this group.
    pub team_id: Option<i64>,
    /// Labelled with this tag.
    pub tag: Option<String>,
    /// Holds a SAN of this kind.
    pub san_kind: Option<SanKind>,
    /// notBefore within this window.
    pub valid_from: TimeWindow,
    /// notAfter within this window.
    pub valid_until: TimeWindow,
    /// `true`: a later certificate renewed (replaced) it; `false`: none has.
    pub renewed: Option<bool>,
    /// Whether certmint holds its private key.
    pub has_key: Option<bool>,
    /// The order of a page; a count ignores it.
    pub order: CertificateOrder,
}

/// A window in time, each end optional: from `from` (inclusive) to `until` (exclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// Not before this.
    pub from: Option<OffsetDateTime>,
    /// Before this.
    pub until: Option<OffsetDateTime>,
}

/// The kinds of subject alternative name, as the stored `kind:value` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanKind {
    /// `dns:`
    Dns,
    /// `ip:`
    Ip,
    /// `email:`
    Email,
    /// `uri:`
    Uri,
}

impl SanKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Dns, Self::Ip, Self::Email, Self::Uri];

    /// Its name, as the stored SANs prefix values with it (before the colon).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
            Self::Email => "email",
            Self::Uri => "uri",
        }
    }

    /// The kind `name` names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The order of a certificate list. Each reads an index in its order; only the id orders take
/// a cursor ([`PageRequest::after`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertificateOrder {
    /// Newest first (id descending): the default.
    #[default]
    Newest,
    /// Oldest first (id ascending).
    Oldest,
    /// Soonest notAfter first.
    ExpiresFirst,
    /// Latest notAfter first.
    ExpiresLast,
    /// Earliest notBefore first.
    ValidFromFirst,
    /// Latest notBefore first.
    ValidFromLast,
}

impl CertificateOrder {
    /// Whether it is an id order, which takes a cursor.
    pub fn by_id(self) -> bool {
        self.column().is_none()
    }

    /// The ORDER BY, ties broken by id so that a page boundary is stable.
    fn sql(self) -> &'static str {
        match self {
            Self::Newest => "id DESC",
            Self::Oldest => "id ASC",
            Self::ExpiresFirst => "not_after ASC, id ASC",
            Self::ExpiresLast => "not_after DESC, id DESC",
            Self::ValidFromFirst => "not_before ASC, id ASC",
            Self::ValidFromLast => "not_before DESC, id DESC",
        }
    }

    /// The time column it walks in order, whose conditions a page must keep usable by the
    /// index; `None` for the id orders.
    fn column(self) -> Option<&'static str> {
        match self {
            Self::Newest | Self::Oldest => None,
            Self::ExpiresFirst | Self::ExpiresLast => Some("not_after"),
            Self::ValidFromFirst | Self::ValidFromLast => Some("not_before"),
        }
    }
}

impl NewCertificate {
    /// The row this becomes once stored as `id` at `now`: what reading it back would give
    /// (times kept to the microsecond, as stored), without the read.
    pub fn stored_as(self, id: CertificateId, now: OffsetDateTime) -> CertificateRow {
        let stored = |t: OffsetDateTime| from_micros(to_micros(t));
        let mut cert = self.cert;
        cert.not_before = stored(cert.not_before);
        cert.not_after = stored(cert.not_after);
        CertificateRow {
            id,
            refid: self.refid,
            ca_id: self.ca_id,
            key_id: self.key_id,
            template_id: self.template_id,
            owner_id: self.owner_id,
            team_id: None,
            tags: Vec::new(),
            renewed_from: self.renewed_from,
            description: self.description,
            sans: self
                .sans
                .join(" ")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            status: CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            revocation_comment: None,
            invalidity_date: None,
            is_ca: self.is_ca,
            source: self.source,
            cert,
            created_at: stored(now),
            updated_at: stored(now),
        }
    }
}

/// A certificate's columns, with its tags joined by spaces (a tag holds none): both engines
/// name the aggregate `string_agg`, and the primary key of `certificate_tags` finds them. The
/// subquery's `id` is the outer row's (`certificate_tags` has no column of that name), so the
/// columns read the same from `certificates` and from a query that selects its rows under
/// another name.
pub(crate) const COLUMNS: &str = "id, refid, ca_id, key_id, template_id, owner_id, team_id, \
    renewed_from, description, sans, status, revoked_at, revocation_reason, revocation_comment, \
    invalidity_date, is_ca, source, created_at, updated_at, \
    (SELECT string_agg(tag, ' ') FROM certificate_tags t WHERE t.certificate_id = id) AS tags";

pub(crate) fn certificate(row: &AnyRow) -> Result<CertificateRow, Error> {
    let sans: String = row.try_get("sans")?;
    Ok(CertificateRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        ca_id: row.try_get("ca_id")?,
        key_id: row.try_get("key_id")?,
        template_id: row.try_get("template_id")?,
        owner_id: row.try_get("owner_id")?,
        team_id: row.try_get("team_id")?,
        tags: {
            let tags: Option<String> = row.try_get("tags")?;
            let mut tags: Vec<String> = tags
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            tags.sort();
            tags
        },
        renewed_from: row.try_get("renewed_from")?,
        description: row.try_get("description")?,
        sans: sans.split_whitespace().map(str::to_owned).collect(),
        status: CertificateStatus::read(row, "status")?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
        revocation_reason: row.try_get("revocation_reason")?,
        revocation_comment: row.try_get("revocation_comment")?,
        invalidity_date: row
            .try_get::<Option<i64>, _>("invalidity_date")?
            .map(from_micros),
        is_ca: row.try_get::<i64, _>("is_ca")? != 0,
        source: CertificateSource::read(row, "source")?,
        cert: CertFields::read(row)?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl CertificateFilter {
    /// Only certificates in `state`.
    pub fn in_state(state: CertificateState) -> Self {
        Self {
            state: Some(state),
            ..Self::default()
        }
    }

    /// The filter for counting: the windows in time are ranges over their indexes.
    pub(crate) fn to_sql(&self, backend: Backend, now: OffsetDateTime) -> Filter {
        self.sql(backend, now, None)
    }

    /// The filter for a capped count, and the rows it reads. With a tag, the count starts from
    /// the tag's index and joins each entry's certificate, so that it stops at the cap: the
    /// `IN` list of [`CertificateFilter::to_sql`] would first gather every certificate the
    /// tag holds (`certificate_tags` has no `id`, so the other conditions' `id` is still the
    /// certificate's).
    fn count_sql(&self, backend: Backend, now: OffsetDateTime) -> (Filter, &'static str) {
        let Some(tag) = &self.tag else {
            return (self.to_sql(backend, now), "certificates");
        };
        let mut f = Self {
            tag: None,
            ..self.clone()
        }
        .to_sql(backend, now);
        f.and("certificate_tags.tag = ?", [Arg::Text(tag.clone())]);
        // SQLite's CROSS JOIN keeps the order written: the tag's entries first.
        let from = match backend {
            Backend::Sqlite => {
                "certificate_tags CROSS JOIN certificates \
                 ON certificates.id = certificate_tags.certificate_id"
            }
            Backend::Postgres => {
                "certificate_tags JOIN certificates \
                 ON certificates.id = certificate_tags.certificate_id"
            }
        };
        (f, from)
    }

    /// The filter for a page in `order`, of a list with `matches` rows when that is known.
    ///
    /// A window in time on a column the page is not sorted by is written `+column`: the same
    /// value, but no index can range over it. Without it SQLite, which keeps no statistics
    /// here, ranges over the column's index and sorts every match to keep one page (most of
    /// the table for `active`); with it, it walks an index in the page's order (`(status, id,
    /// not_after)` for a state, the rowid tree, an equality filter's index), checks the window
    /// on what it walks, and stops after the page. That walk is short only where matches are
    /// dense. For [`FEW_MATCHES`] or fewer, the ids of the matches are found first, through
    /// whichever index suits the conditions (a window's too), then sorted, and only the
    /// page's rows read.
    fn to_page_sql(&self, backend: Backend, now: OffsetDateTime, matches: Option<i64>) -> Filter {
        if matches.is_some_and(|n| n <= FEW_MATCHES) {
            self.sql(backend, now, None).ids_first("certificates")
        } else {
            self.sql(backend, now, Some(self.order))
        }
    }

    fn sql(&self, backend: Backend, now: OffsetDateTime, page: Option<CertificateOrder>) -> Filter {
        let column = |name: &'static str| -> String {
            match page {
                Some(order) if order.column() != Some(name) => format!("+{name}"),
                _ => name.to_owned(),
            }
        };
        let not_after = column("not_after");
        let mut f = Filter::default();
        let now = to_micros(now);
        match self.state {
            Some(CertificateState::Active) => {
                f.and(
                    &format!("status = 'valid' AND {not_after} > ?"),
                    [Arg::Int(now)],
                );
            }
            Some(CertificateState::Expired) => {
                f.and(
                    &format!("status = 'valid' AND {not_after} <= ?"),
                    [Arg::Int(now)],
                );
            }
            Some(CertificateState::Revoked) => f.and("status = 'revoked'", []),
            Some(CertificateState::ExpiringBefore(until)) => f.and(
                &format!("status = 'valid' AND {not_after} > ? AND {not_after} <= ?"),
                [Arg::Int(now), Arg::Int(to_micros(until))],
            ),
            None => {}
        }
        if let Some(ca_id) = self.ca_id {
            f.and("ca_id = ?", [Arg::Int(ca_id.0)]);
        }
        if let Some(template_id) = self.template_id {
            f.and("template_id = ?", [Arg::Int(template_id.0)]);
        }
        if let Some(source) = self.source {
            f.and("source = ?", [Arg::Text(source.as_str().into())]);
        }
        for (name, value) in [
            ("key_type", &self.key_type),
            ("signature_algorithm", &self.signature_algorithm),
            ("issuer", &self.issuer),
        ] {
            if let Some(value) = value {
                f.and(&format!("{name} = ?"), [Arg::Text(value.clone())]);
            }
        }
        if let Some(owner_id) = self.owner_id {
            f.and("owner_id = ?", [Arg::Int(owner_id)]);
        }
        if let Some(team_id) = self.team_id {
            f.and("team_id = ?", [Arg::Int(team_id)]);
        }
        if let Some(tag) = &self.tag {
            // A count, and the ids of few matches, start from the tag's index; a walk in the
            // page's order looks each row's tag up by the primary key of certificate_tags
            // and stops after the page, without reading every certificate the tag holds.
            let clause = match page {
                None => "id IN (SELECT certificate_id FROM certificate_tags WHERE tag = ?)",
                Some(_) => {
                    "EXISTS (SELECT 1 FROM certificate_tags t \
                     WHERE t.certificate_id = certificates.id AND t.tag = ?)"
                }
            };
            f.and(clause, [Arg::Text(tag.clone())]);
        }
        for (name, window) in [
            ("not_before", self.valid_from),
            ("not_after", self.valid_until),
        ] {
            let name = column(name);
            if let Some(from) = window.from {
                f.and(&format!("{name} >= ?"), [Arg::Int(to_micros(from))]);
            }
            if let Some(until) = window.until {
                f.and(&format!("{name} < ?"), [Arg::Int(to_micros(until))]);
            }
        }
        match self.renewed {
            Some(true) => f.and(
                "id IN (SELECT renewed_from FROM certificates WHERE renewed_from IS NOT NULL)",
                [],
            ),
            Some(false) => f.and(
                "NOT EXISTS (SELECT 1 FROM certificates r WHERE r.renewed_from = certificates.id)",
                [],
            ),
            None => {}
        }
        match self.has_key {
            // The partial index certificates_held_key holds these rows' ids, in id order.
            Some(true) => f.and("key_id IS NOT NULL", []),
            Some(false) => f.and("key_id IS NULL", []),
            None => {}
        }
        if let Some(kind) = self.san_kind {
            san_kind_search(&mut f, backend, kind);
        }
        if let Some(text) = &self.search {
            text_search(&mut f, backend, text);
        }
        f
    }
}

/// What the PostgreSQL trigram index (migration 0034) holds for a certificate, lower case: a
/// query reaches the index only through this very expression. SQLite's FTS5 index holds the
/// same text, as the generated column `search_text`.
const INDEXED_TEXT: &str = "LOWER(CASE WHEN strpos(subject, common_name) > 0 THEN '' \
    ELSE COALESCE(common_name, '') END || chr(31) || sans || chr(31) || serial || chr(31) || \
    subject || chr(31) || left(fingerprint_sha256, 16))";

/// Most matches of a list whose page the database may find by sorting them all (see
/// [`CertificateFilter::to_page_sql`]).
const FEW_MATCHES: i64 = 10_000;

/// Fewest characters a trigram index can look up.
const MIN_INDEXED_CHARS: usize = 3;

/// Characters of a search's text looked up in the index; the rest is checked on the rows the
/// index names. Ten characters (eight trigrams) leave few rows to check, and all lie within
/// the fingerprint digits the index holds.
const LOOKED_UP_CHARS: usize = 10;

/// Fewest hex digits that search a serial: shorter hex is as likely a word ("cafe") and would
/// match serials at random.
const MIN_SERIAL_DIGITS: usize = 8;

/// A serial or fingerprint typed as people copy it (`0A:1B:…`, `0a1b…`, spaced), as stored
/// (lower-case hex), or `None` when the text cannot be (enough of) one.
fn serial_form(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    (hex.len() >= MIN_SERIAL_DIGITS && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Adds to `f` that `text` occurs, in any case, in a certificate's common name, a SAN, its
/// serial or subject, or begins its fingerprint; so do its hex digits when it is a serial or
/// fingerprint typed with colons or spaces. Control characters do not count; nothing left, no
/// condition. A text of three characters or more is first looked up in the trigram index of
/// each engine (migration 0034), and only the rows it names are checked; a shorter text reads
/// every row, since no trigram index can look it up.
pub(crate) fn text_search(f: &mut Filter, backend: Backend, text: &str) {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let mut terms = vec![text.to_owned()];
    if let Some(serial) = serial_form(text).filter(|s| s != text) {
        terms.push(serial);
    }
    if text.chars().count() >= MIN_INDEXED_CHARS {
        let looked_up: Vec<String> = terms
            .iter()
            .map(|t| t.chars().take(LOOKED_UP_CHARS).collect())
            .collect();
        index_lookup(f, backend, &looked_up);
    }
    let columns = searched_columns(backend);
    let (held, begins) = match backend {
        // SQLite's LIKE and LOWER fold ASCII letters only; GLOB with a class of both cases
        // per letter folds every script, as the FTS5 index does.
        Backend::Sqlite => (format!("{columns} GLOB ?"), "fingerprint_sha256 GLOB ?"),
        // PostgreSQL's LIKE escapes with a backslash, as like_pattern writes it.
        Backend::Postgres => (
            format!("LOWER({columns}) LIKE ?"),
            "LOWER(fingerprint_sha256) LIKE ?",
        ),
    };
    let mut args = Vec::new();
    for t in &terms {
        match backend {
            Backend::Sqlite => {
                args.push(Arg::Text(format!("*{}*", glob_any_case(t))));
                args.push(Arg::Text(format!("{}*", glob_any_case(t))));
            }
            Backend::Postgres => {
                args.push(Arg::Text(like_pattern(t)));
                args.push(Arg::Text(format!("{}%", like_escaped(t))));
            }
        }
    }
    let clause = vec![format!("{held} OR {begins}"); terms.len()].join(" OR ");
    f.and(&format!("({clause})"), args);
}

/// Adds to `f` that the trigram index (migration 0034) holds one of `terms` (each of three
/// characters or more): the rows it names may hold it, and are still to be checked.
fn index_lookup(f: &mut Filter, backend: Backend, terms: &[String]) {
    match backend {
        Backend::Sqlite => f.and(
            "id IN (SELECT rowid FROM certificate_search WHERE certificate_search MATCH ?)",
            [Arg::Text(trigram_query(terms.iter().cloned()))],
        ),
        Backend::Postgres => f.and(
            &format!(
                "({})",
                vec![format!("{INDEXED_TEXT} LIKE ?"); terms.len()].join(" OR ")
            ),
            terms.iter().map(|t| Arg::Text(like_pattern(t))),
        ),
    }
}

/// Adds to `f` that a certificate holds a SAN of `kind`. The condition is written out whole,
/// without a bound value, because it is the very condition of the kind's partial index
/// (migration 0036), which a database uses only for a query that states it: the index holds
/// the ids of the certificates with an IP address, email or URI SAN, in id order, and nothing
/// for the rest. DNS names, which nearly every certificate has, have no index: a page walks
/// the newest rows and keeps those that hold one.
fn san_kind_search(f: &mut Filter, backend: Backend, kind: SanKind) {
    let kind = kind.as_str();
    match backend {
        Backend::Sqlite => f.and(&format!("' ' || sans GLOB '* {kind}:*'"), []),
        Backend::Postgres => f.and(&format!("' ' || sans LIKE '% {kind}:%'"), []),
    }
}

/// The searched columns but the fingerprint, joined by U+001F (which [`text_search`] takes out
/// of every search, so that no match spans two columns).
fn searched_columns(backend: Backend) -> String {
    let separator = match backend {
        Backend::Sqlite => " || char(31) || ",
        Backend::Postgres => " || chr(31) || ",
    };
    ["COALESCE(common_name, '')", "sans", "serial", "subject"].join(separator)
}

/// An FTS5 query for the rows of the trigram index (`detail = 'none'`, so without phrases)
/// holding every trigram of one of `terms`: each trigram a quoted string, a quote inside
/// written twice.
fn trigram_query(terms: impl Iterator<Item = String>) -> String {
    terms
        .map(|term| {
            let chars: Vec<char> = term.chars().collect();
            let mut trigrams: Vec<String> = chars
                .windows(MIN_INDEXED_CHARS)
                .map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\"")))
                .collect();
            trigrams.sort();
            trigrams.dedup();
            format!("({})", trigrams.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

impl Reader {
    /// The certificate with this id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate(&self, id: CertificateId) -> Result<Option<CertificateRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id.0)])
            .fetch_row(
                self,
                &format!("{COLUMNS}, {CERT_COLUMNS}"),
                "certificates",
                certificate,
            )
            .await
    }

    /// The certificates with serial number `serial` (lower-case hex), of whichever CA: a
    /// random 128-bit serial repeats only across imported certificates.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificates_with_serial(
        &self,
        serial: &str,
    ) -> Result<Vec<CertificateRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, {CERT_COLUMNS} FROM certificates WHERE {} = {} AND serial = $1",
            self.backend().serial_tail("serial"),
            self.backend().serial_tail("$1"),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(serial.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(certificate).collect()
    }

    /// The certificates that renewed certificate `id`, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn renewals_of(&self, id: CertificateId) -> Result<Vec<CertificateId>, Error> {
        let rows = sqlx::query("SELECT id FROM certificates WHERE renewed_from = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(CertificateId(r.try_get("id")?)))
            .collect()
    }

    /// One page of certificates matching `filter` at `now`, in its order, and how many match
    /// (estimated past [`crate::COUNTED_EXACTLY`]).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificates(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
        page: PageRequest,
    ) -> Result<Page<CertificateRow>, Error> {
        let (count, from) = filter.count_sql(self.backend(), now);
        let (total, estimated) = count
            .count_bounded(
                self,
                from,
                &filter.sql(self.backend(), now, Some(filter.order)),
                "certificates",
            )
            .await?;
        let matches = (!estimated).then_some(total);
        let items = self.page_rows(filter, now, page, matches).await?;
        Ok(Page {
            items,
            total,
            estimated,
        })
    }

    /// [`Reader::certificates`]' page without the count: what a walk over a whole list
    /// reads, page after page.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_rows(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
        page: PageRequest,
    ) -> Result<Vec<CertificateRow>, Error> {
        self.page_rows(filter, now, page, None).await
    }

    /// A page of `filter`'s list, which has `matches` rows when that is known.
    async fn page_rows(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
        page: PageRequest,
        matches: Option<i64>,
    ) -> Result<Vec<CertificateRow>, Error> {
        let rows = filter
            .to_page_sql(self.backend(), now, matches)
            .fetch_rows(
                self,
                &format!("{COLUMNS}, {CERT_COLUMNS}"),
                "certificates",
                filter.order.sql(),
                page,
            )
            .await?;
        rows.iter().map(certificate).collect()
    }

    /// How many certificates match `filter` at `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_certificates(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        filter
            .to_sql(self.backend(), now)
            .count(self, "certificates")
            .await
    }

    /// The plan the database chooses for [`WriteTx::certificate_known`], for tests that check
    /// it finds certificates through an index.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn explain_certificate_known(
        &self,
        fingerprint: &str,
        serial: &str,
    ) -> Result<String, Error> {
        let sql = format!(
            "{} {}",
            explain(self.backend()),
            crate::cas::known_sql(self.backend())
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(fingerprint.to_owned())
            .bind(serial.to_owned())
            .fetch_all(&self.pool)
            .await?;
        plan(self.backend(), &rows)
    }

    /// How many unexpired, unrevoked certificates CA `ca_id` has issued, its sub-CAs included.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn live_certificates_of(
        &self,
        ca_id: CaId,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM certificates \
                     WHERE ca_id = $1 AND status = 'valid' AND not_after > $2) \
                  + (SELECT COUNT(*) FROM cas WHERE parent_id = $1 AND not_after > $2) AS n",
        )
        .bind(ca_id)
        .bind(to_micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl WriteTx {
    /// Stores a certificate and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when its refid is taken. Nothing stops the same certificate from being
    /// stored twice: an import checks [`WriteTx::certificate_known`] first.
    pub async fn insert_certificate(
        &mut self,
        c: &NewCertificate,
        now: OffsetDateTime,
    ) -> Result<CertificateId, Error> {
        first(self.insert_certificates(&[(c, now)]).await?)
    }

    /// Stores certificates, each created at its time; returns their ids in the same order.
    ///
    /// # Errors
    /// [`Error::Conflict`] when a refid is taken. Nothing stops the same certificate from being
    /// stored twice: an import checks [`WriteTx::certificate_known`] first.
    pub async fn insert_certificates(
        &mut self,
        certificates: &[(&NewCertificate, OffsetDateTime)],
    ) -> Result<Vec<CertificateId>, Error> {
        let returned = self
            .insert_rows(
                &format!(
                    "INSERT INTO certificates (refid, ca_id, key_id, template_id, owner_id, \
                 renewed_from, description, sans, status, is_ca, source, created_at, updated_at, \
                 {CERT_COLUMNS})"
                ),
                13 + CERT_COLUMN_COUNT,
                " RETURNING id, refid",
                certificates,
                |q, (c, now)| {
                    let q = q
                        .bind(c.refid.clone())
                        .bind(c.ca_id)
                        .bind(c.key_id)
                        .bind(c.template_id)
                        .bind(c.owner_id)
                        .bind(c.renewed_from)
                        .bind(c.description.clone())
                        .bind(c.sans.join(" "))
                        .bind("valid")
                        .bind(crate::db::flag(c.is_ca))
                        .bind(c.source.as_str())
                        .bind(to_micros(*now))
                        .bind(to_micros(*now));
                    c.cert.bind(q)
                },
            )
            .await?;
        let ids = ids_by_refid(
            &returned,
            certificates.iter().map(|(c, _)| c.refid.as_str()),
        )?;
        Ok(ids.into_iter().map(CertificateId).collect())
    }
}

impl WriteTx {
    /// Sets a certificate's revocation state: `status` `revoked` with its time, reason,
    /// comment and invalidity date, or `valid` with all four cleared. Either way the change is
    /// stamped, and the issuing CA's next CRL is due. The change applies only over the state
    /// the caller decided on (`expected`: status and reason as read), so a concurrent change,
    /// such as a keyCompromise landing between a release's read and its write, is never
    /// undone. Returns false when there is no such certificate or its state has moved on.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_revocation(
        &mut self,
        id: CertificateId,
        expected: (CertificateStatus, Option<&str>),
        revocation: Option<&Revocation<'_>>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let (status, at, reason, comment, invalidity) = match revocation {
            Some(r) => (
                CertificateStatus::Revoked,
                Some(to_micros(r.at)),
                Some(r.reason.to_owned()),
                r.comment.map(str::to_owned),
                r.invalidity_date.map(to_micros),
            ),
            None => (CertificateStatus::Valid, None, None, None, None),
        };
        let row = sqlx::query(
            "UPDATE certificates SET status = $1, revoked_at = $2, revocation_reason = $3, \
             revocation_comment = $4, invalidity_date = $5, revocation_changed_at = $6, \
             updated_at = $6 WHERE id = $7 AND status = $8 AND COALESCE(revocation_reason, '') = $9 \
             RETURNING ca_id",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(reason)
        .bind(comment)
        .bind(invalidity)
        .bind(to_micros(now))
        .bind(id)
        .bind(expected.0.as_str())
        .bind(expected.1.unwrap_or_default().to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        if let Some(ca_id) = row.try_get::<Option<i64>, _>("ca_id")? {
            sqlx::query(
                "UPDATE cas SET crl_dirty_since = COALESCE(crl_dirty_since, $1), \
                 crl_dirty_at = $1 WHERE id = $2",
            )
            .bind(to_micros(now))
            .bind(ca_id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(true)
    }
}

/// A revocation to record.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    /// When the certificate was taken out of service.
    pub at: OffsetDateTime,
    /// RFC 5280 reason name.
    pub reason: &'a str,
    /// Why, in words.
    pub comment: Option<&'a str>,
    /// When the key is known or suspected to have been compromised (RFC 5280 §5.3.2).
    pub invalidity_date: Option<OffsetDateTime>,
}

impl WriteTx {
    /// Deletes certificate `id` and the private key certmint held for it. Returns false when
    /// there is no such certificate.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_certificate(&mut self, id: CertificateId) -> Result<bool, Error> {
        let row = sqlx::query("DELETE FROM certificates WHERE id = $1 RETURNING key_id")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        if let Some(key_id) = row.try_get::<Option<KeyId>, _>("key_id")? {
            self.delete_key(key_id).await?;
        }
        Ok(true)
    }
}

fn explain(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => "EXPLAIN QUERY PLAN",
        crate::Backend::Postgres => "EXPLAIN",
    }
}

/// The lines of a plan, as [`explain`] returns them.
fn plan(backend: crate::Backend, rows: &[AnyRow]) -> Result<String, Error> {
    let column = match backend {
        crate::Backend::Sqlite => "detail",
        crate::Backend::Postgres => "QUERY PLAN",
    };
    rows.iter()
        .map(|r| r.try_get::<String, _>(column).map_err(Error::from))
        .collect::<Result<Vec<_>, _>>()
        .map(|lines| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_matched_without_colons_in_lower_case() {
        assert_eq!(serial_form("0A:1b:FF:00").as_deref(), Some("0a1bff00"));
        assert_eq!(serial_form("0a1b 2c3d").as_deref(), Some("0a1b2c3d"));
        assert_eq!(serial_form("cafe"), None);
        assert_eq!(serial_form("example.com.example"), None);
    }
}
