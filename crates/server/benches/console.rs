//! Console page latency at 100,000 certificates (issue 19): the real server on SQLite, its
//! database filled in bulk through the store, an admin logged in, then GET latency (p50, p95,
//! p99) of the console's main pages over HTTPS, one request at a time and from several clients
//! at once.
//!
//! The inventory is loaded in batches through `WriteTx::insert_certificates`, not by signing
//! each certificate: four CAs (the bootstrap CA, a root and two intermediates), names over
//! several domains with one to three SANs, three key types, four sources, certificates stored
//! over the past two years with 90-day, one-year and two-year validity (so some are expired
//! and some are about to be), one in twenty revoked later with a reason, and an audit record
//! for each issuance and revocation. Their DER comes from a few certificates really issued
//! first, so that a certificate's page decodes a real certificate.
//!
//! `cargo bench -p certmint-server --bench console` runs it in full (`CERTMINT_BENCH_N`
//! certificates, 100,000; `CERTMINT_BENCH_REQUESTS` per page and run, 200;
//! `CERTMINT_BENCH_CLIENTS` at once in the concurrent run, 8). Other arguments name pages to
//! measure alone (by a word of their label). Under `cargo test` it loads 2,000 certificates
//! and asks each page 5 times, so that it keeps working.

use std::time::{Duration, Instant};

use authority::pki::{DistinguishedName, KeyType, NameAttribute, SubjectAltName};
use authority::{
    CaKind, CertificateSource, IssueRequest, KeySource, NewCaInput, Pointers, Principal,
    RevocationReason,
};
use certmint_server::{Secrets, Settings};
use sha2::{Digest, Sha256};
use store::{AuditEntry, CaId, CertFields, CertificateStatus, NewCertificate, Revocation};
use time::OffsetDateTime;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PASSWORD: &str = "benchmark password 1234";
/// Certificates stored per write transaction while loading.
const BATCH: usize = 5_000;
/// How far back the inventory goes.
const HISTORY_DAYS: i64 = 730;

fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let number = |name: &str, full_value: usize, test_value: usize| -> Result<usize> {
        Ok(match std::env::var(name) {
            Ok(v) => v.parse()?,
            Err(_) if full => full_value,
            Err(_) => test_value,
        })
    };
    let certificates = number("CERTMINT_BENCH_N", 100_000, 2_000)?;
    let requests = number("CERTMINT_BENCH_REQUESTS", 200, 5)?;
    let clients = number("CERTMINT_BENCH_CLIENTS", 8, 2)?.max(1);
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(certificates, requests, clients, &only))
}

/// A small deterministic generator (splitmix64): the same inventory on every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// One of `items`, each as likely as its weight.
    fn weighted<'a, T>(&mut self, items: &'a [(u64, T)]) -> &'a T {
        let total = items.iter().map(|(w, _)| w).sum();
        let mut pick = self.below(total);
        for (weight, item) in items {
            if pick < *weight {
                return item;
            }
            pick -= weight;
        }
        &items[items.len() - 1].1
    }
}

const DOMAINS: [&str; 8] = [
    "example.com",
    "corp.example.net",
    "svc.cluster.local",
    "internal.example.org",
    "eu-west.example.com",
    "lab.example.io",
    "payments.example.com",
    "iot.example.net",
];

/// Hex of a hash of `what` and `i`, `bytes` long: serials and fingerprints that look random
/// and never repeat.
fn hex_of(what: &str, i: usize, bytes: usize) -> String {
    let digest = Sha256::digest(format!("{what}{i}").as_bytes());
    hex::encode(&digest[..bytes])
}

/// An issuing CA as the loader needs it.
struct Issuer {
    id: CaId,
    subject: String,
}

/// Certificate `i` of `n`, stored at its creation time; and when it is revoked, when and why.
fn certificate(
    i: usize,
    n: usize,
    now: OffsetDateTime,
    issuers: &[Issuer],
    ders: &[Vec<u8>],
    draw: &mut Draw,
) -> (
    NewCertificate,
    OffsetDateTime,
    Option<(OffsetDateTime, &'static str)>,
) {
    let span = time::Duration::days(HISTORY_DAYS);
    let created = now - span + span * (i as f64 / n as f64);
    let validity = *draw.weighted(&[(6, 90), (3, 365), (1, 730)]);
    let not_after = created + time::Duration::days(validity);
    let domain = DOMAINS[draw.below(DOMAINS.len() as u64) as usize];
    let cn = format!("host-{i}.{domain}");
    let mut sans = vec![format!("dns:{cn}")];
    match draw.below(3) {
        0 => sans.push(format!("dns:www.host-{i}.{domain}")),
        1 => sans.push(format!(
            "ip:10.{}.{}.{}",
            draw.below(256),
            draw.below(256),
            draw.below(254) + 1
        )),
        _ => {}
    }
    let issuer = &issuers[*draw.weighted(&[(5, 0usize), (3, 1), (15, 2), (5, 3)]) % issuers.len()];
    let (key_type, signature) = *draw.weighted(&[
        (60, ("EC P-256", "ecdsa-with-SHA256")),
        (35, ("RSA 2048", "sha256WithRSAEncryption")),
        (5, ("Ed25519", "Ed25519")),
    ]);
    let source = *draw.weighted(&[
        (50, CertificateSource::Api),
        (40, CertificateSource::Acme),
        (8, CertificateSource::Csr),
        (2, CertificateSource::Imported),
    ]);
    let revoked = (draw.below(20) == 0).then(|| {
        let until = if not_after < now { not_after } else { now };
        let at = created + (until - created) * (draw.below(1000) as f64 / 1000.0);
        let reason = *draw.weighted(&[
            (5, RevocationReason::Superseded),
            (3, RevocationReason::KeyCompromise),
            (2, RevocationReason::CessationOfOperation),
            (1, RevocationReason::AffiliationChanged),
            (1, RevocationReason::Unspecified),
        ]);
        (at, reason.as_str())
    });
    let new = NewCertificate {
        refid: uuid::Uuid::now_v7().to_string(),
        ca_id: Some(issuer.id),
        key_id: None,
        template_id: None,
        owner_id: None,
        renewed_from: None,
        description: (draw.below(10) == 0).then(|| format!("{domain} front end")),
        sans,
        is_ca: false,
        source,
        cert: CertFields {
            subject: format!("CN={cn},O=Example"),
            common_name: Some(cn),
            issuer: issuer.subject.clone(),
            serial: hex_of("serial", i, 16),
            not_before: created,
            not_after,
            key_type: key_type.into(),
            signature_algorithm: signature.into(),
            subject_key_id: Some(hex_of("ski", i, 20)),
            authority_key_id: None,
            fingerprint_sha256: hex_of("fingerprint", i, 32),
            der: ders[i % ders.len()].clone(),
        },
    };
    (new, created, revoked)
}

fn audit(action: &str, at: OffsetDateTime, refid: &str, details: String) -> AuditEntry {
    AuditEntry {
        at,
        username: Some("admin".into()),
        action: action.into(),
        resource_type: Some("certificate".into()),
        resource_id: Some(refid.into()),
        details: Some(details),
        ip_address: Some("10.0.0.7".into()),
        user_agent: Some("certmint-bench".into()),
        success: true,
    }
}

/// Loads `n` certificates, their revocations and audit records through the store, in batches.
async fn load(
    store: &store::Store,
    n: usize,
    now: OffsetDateTime,
    issuers: &[Issuer],
    ders: &[Vec<u8>],
    owner: i64,
    team: i64,
) -> Result<usize> {
    let mut draw = Draw(19);
    let mut revoked = 0;
    let mut stored = Vec::with_capacity(n);
    for first in (0..n).step_by(BATCH) {
        let mut batch: Vec<_> = (first..n.min(first + BATCH))
            .map(|i| certificate(i, n, now, issuers, ders, &mut draw))
            .collect();
        // A third requested by the admin; one in ten renews the one stored a batch earlier.
        for (i, (c, _, _)) in (first..).zip(batch.iter_mut()) {
            c.owner_id = (i % 3 == 0).then_some(owner);
            c.renewed_from = i
                .checked_sub(BATCH)
                .filter(|_| i % 10 == 0)
                .and_then(|earlier| stored.get(earlier).copied());
        }
        let rows: Vec<_> = batch.iter().map(|(c, at, _)| (c, *at)).collect();
        let mut tx = store.begin_write().await?;
        let ids = tx.insert_certificates(&rows).await?;
        stored.extend(ids.iter().copied());
        let mut entries = Vec::with_capacity(batch.len());
        for (c, at, _) in &batch {
            entries.push(audit(
                "certificate_issued",
                *at,
                &c.refid,
                format!("'{}' serial {}", c.cert.subject, c.cert.serial),
            ));
        }
        // One in five of a team; one in ten tagged prod, one in a thousand pci too.
        for (i, id) in (first..).zip(&ids) {
            let tags: Vec<String> = [(i % 10 == 0, "prod"), (i % 1000 == 7, "pci")]
                .into_iter()
                .filter(|(yes, _)| *yes)
                .map(|(_, tag)| tag.to_owned())
                .collect();
            if i % 5 == 0 || !tags.is_empty() {
                let change = store::CertificateChange {
                    team_id: (i % 5 == 0).then_some(Some(team)),
                    add_tags: tags,
                    ..store::CertificateChange::default()
                };
                tx.change_certificate(*id, &change, now).await?;
            }
        }
        for ((c, _, revocation), id) in batch.iter().zip(&ids) {
            let Some((at, reason)) = revocation else {
                continue;
            };
            let change = Revocation {
                at: *at,
                reason,
                comment: None,
                invalidity_date: None,
            };
            if !tx
                .set_revocation(*id, (CertificateStatus::Valid, None), Some(&change), *at)
                .await?
            {
                return Err(format!("certificate {id} could not be revoked").into());
            }
            entries.push(audit(
                "certificate_revoked",
                *at,
                &c.refid,
                format!("serial {}, {reason}", c.cert.serial),
            ));
            revoked += 1;
        }
        tx.audit_many(&entries).await?;
        tx.commit().await?;
    }
    Ok(revoked)
}

/// `at` as RFC 3339, as a query string carries it.
fn rfc3339(at: OffsetDateTime) -> Result<String> {
    Ok(at
        .format(&time::format_description::well_known::Rfc3339)?
        .replace('+', "%2B"))
}

/// A subject `CN=cn, O=Example`.
fn name(cn: &str) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::CommonName, cn)?;
    dn.set(NameAttribute::Organization, "Example")?;
    Ok(dn)
}

/// A new P-256 CA named `cn`.
async fn create_ca(
    authority: &authority::Authority,
    cn: &str,
    kind: CaKind,
    parent_id: Option<CaId>,
) -> Result<authority::CaRow> {
    Ok(authority
        .create_ca(
            &Principal::local("bench"),
            NewCaInput {
                name: Some(cn.into()),
                description: None,
                subject: name(cn)?,
                kind,
                parent_id,
                key_type: KeyType::EcP256,
                key_location: authority::KeyLocation::Software,
                validity_days: match kind {
                    CaKind::Root => 3650,
                    CaKind::Intermediate => 1825,
                },
                path_len: None,
                name_constraints: None,
                make_default: false,
                require_template: false,
                pointers: Pointers::default(),
            },
        )
        .await?)
}

/// Creates a root and two intermediates beside the bootstrap CA and issues a few certificates
/// from each, for their DER; returns the issuers in the order the loader weighs them.
async fn issuers(authority: &authority::Authority) -> Result<(Vec<Issuer>, Vec<Vec<u8>>)> {
    let system = Principal::local("bench");
    let bootstrap = authority
        .reader()
        .default_ca()
        .await?
        .ok_or("no default CA")?;
    let root = create_ca(authority, "Bench Root CA", CaKind::Root, None).await?;
    let web = create_ca(
        authority,
        "Bench Web Issuing CA",
        CaKind::Intermediate,
        Some(root.id),
    )
    .await?;
    let devices = create_ca(
        authority,
        "Bench Device Issuing CA",
        CaKind::Intermediate,
        Some(root.id),
    )
    .await?;
    let mut issuers = Vec::new();
    let mut ders = Vec::new();
    for ca in [bootstrap, root, web, devices] {
        for (i, domain) in DOMAINS.iter().take(4).enumerate() {
            let host = format!("seed-{i}.{domain}");
            let issued = authority
                .issue(
                    &system,
                    IssueRequest {
                        ca_id: Some(ca.id),
                        subject: name(&host)?,
                        sans: vec![SubjectAltName::Dns(host.clone())],
                        key: KeySource::Generate(Some(KeyType::EcP256)),
                        template_id: None,
                        validity_days: Some(90),
                        key_usage: None,
                        extended_key_usage: None,
                        description: None,
                        source: CertificateSource::Api,
                        renewed_from: None,
                    },
                )
                .await?;
            ders.push(issued.certificate.cert.der);
        }
        issuers.push(Issuer {
            id: ca.id,
            subject: ca.cert.subject,
        });
    }
    Ok((issuers, ders))
}

/// Logs in as the admin; returns a client that trusts the server and the session cookie.
async fn log_in(base: &str, data: &std::path::Path) -> Result<(reqwest::Client, String)> {
    let cert = std::fs::read(data.join("tls/server.crt"))?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert)?])
        .build()?;
    let login = client
        .post(format!("{base}/api/v2/auth/login/password"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    Ok((client, cookie))
}

/// One GET of a console page: how long until its whole body arrived, and the body.
async fn fetch(client: &reqwest::Client, url: &str, cookie: &str) -> Result<(Duration, String)> {
    let start = Instant::now();
    let answer = client.get(url).header("cookie", cookie).send().await?;
    let status = answer.status();
    let body = answer.text().await?;
    let took = start.elapsed();
    // A console page has a heading; an API list, its data.
    if status != reqwest::StatusCode::OK || !(body.contains("<h1") || body.starts_with("{\"data\""))
    {
        return Err(format!("GET {url}: {status}\n{body}").into());
    }
    Ok((took, body))
}

/// Latencies of `count` GETs of `url` from `clients` clients at once (one after the other
/// when 1), and the wall time they took together.
async fn measure(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    count: usize,
    clients: usize,
) -> Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (client, url, cookie) = (client.clone(), url.to_owned(), cookie.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::with_capacity(share);
            for _ in 0..share {
                took.push(fetch(&client, &url, &cookie).await?.0);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(took)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await??);
    }
    let wall = start.elapsed();
    all.sort();
    Ok((all, wall))
}

/// The `q` quantile of sorted latencies, in milliseconds.
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn run(n: usize, requests: usize, clients: usize, only: &[String]) -> Result<()> {
    let data = tempfile::tempdir()?;
    // PostgreSQL when CERTMINT_BENCH_DATABASE_URL names a server (a fresh database on it).
    let database_url = match std::env::var("CERTMINT_BENCH_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => store::testing::fresh_postgres_database(&admin).await?,
        _ => String::new(),
    };
    let settings = Settings {
        data_dir: data.path().to_path_buf(),
        database_url,
        listen: "127.0.0.1:0".parse()?,
        http_listen: String::new(),
        auth_rate_limit_per_minute: 0,
        ..Settings::default()
    };
    let database_url = settings.database_url();
    let secrets = Secrets {
        master_key: None,
        admin_password: Some(PASSWORD.into()),
    };
    let running =
        certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?).await?;
    let authority = running.app.authority.clone();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let engine = match authority.reader().backend() {
        store::Backend::Sqlite => "SQLite",
        store::Backend::Postgres => "PostgreSQL",
    };
    println!(
        "console page latency: {n} certificates, {engine}, {cores} cores, {requests} GETs per \
         page one at a time, then {requests} from {clients} clients at once"
    );

    let started = Instant::now();
    let (issuers, ders) = issuers(&authority).await?;
    let store = store::Store::connect(&database_url, 4)
        .await?
        .with_chain_key(authority.vault().audit_chain_key());
    let admin = authority
        .reader()
        .user_by_name("admin")
        .await?
        .ok_or("no admin user")?
        .id;
    let mut tx = store.begin_write().await?;
    let team = tx
        .insert_group(
            &store::GroupFields {
                name: "platform".into(),
                description: None,
                role: None,
                permissions: Vec::new(),
            },
            authority.now(),
        )
        .await?;
    tx.commit().await?;
    let revoked = load(&store, n, authority.now(), &issuers, &ders, admin, team).await?;
    if store.backend() == store::Backend::Postgres {
        // As autovacuum would soon after a load this size: statistics for the planner, and
        // the visibility map that lets an index-only scan skip the table.
        store.execute_raw("VACUUM ANALYZE").await?;
    }
    store.close().await;
    let stats = authority.reader().database_stats().await?;
    println!(
        "loaded {n} certificates ({revoked} revoked) and {} audit records in {:.1} s; \
         database {} MiB",
        n + revoked,
        started.elapsed().as_secs_f64(),
        stats.bytes / (1024 * 1024)
    );
    // Where the bytes are, per certificate stored (tables with their indexes).
    let mut tables: Vec<_> = stats
        .tables
        .iter()
        .filter_map(|t| t.bytes.map(|b| (b, t.name.as_str())))
        .filter(|(b, _)| *b > 1024 * 1024)
        .collect();
    tables.sort_unstable_by(|a, b| b.cmp(a));
    for (bytes, name) in tables {
        println!(
            "  {name}: {:.0} bytes per certificate",
            bytes as f64 / n as f64
        );
    }
    // The publisher finds the revocations made behind its back and publishes CRLs; let it
    // finish before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let base = format!("https://{}", running.https_addr);
    let (client, cookie) = log_in(&base, data.path()).await?;
    let reader = authority.reader();
    let middle = reader
        .certificates(
            &Default::default(),
            authority.now(),
            authority::PageRequest {
                page: u32::try_from(n / 2)?,
                per_page: 1,
                after: None,
            },
        )
        .await?
        .items
        .first()
        .map(|c| c.id)
        .ok_or("no certificate half-way")?;
    let per_ca = reader.certificates_per_ca().await?;
    let busiest = per_ca
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(id, _)| *id)
        .ok_or("no CA issued anything")?;
    let pages = [
        ("dashboard", "/".to_owned()),
        ("certificates", "/certificates".to_owned()),
        (
            "certificates active",
            "/certificates?status=active".to_owned(),
        ),
        (
            "certificates active of the busiest CA",
            format!("/certificates?status=active&ca_id={busiest}"),
        ),
        (
            "certificates expiring within 30 days",
            "/certificates?status=expiring&days=30".to_owned(),
        ),
        (
            "certificates revoked",
            "/certificates?status=revoked".to_owned(),
        ),
        (
            "certificates search",
            "/certificates?search=host-12345".to_owned(),
        ),
        (
            "certificates page 1000",
            "/certificates?page=1000".to_owned(),
        ),
        (
            "certificates by source (csr)",
            "/certificates?source=csr".to_owned(),
        ),
        (
            "certificates by key type (Ed25519)",
            "/certificates?key_type=Ed25519".to_owned(),
        ),
        (
            "certificates with an IP SAN",
            "/certificates?san_type=ip".to_owned(),
        ),
        (
            "certificates with a key held here (none)",
            "/certificates?has_key=true".to_owned(),
        ),
        (
            "certificates renewed",
            "/certificates?renewed=true".to_owned(),
        ),
        (
            "certificates expiring, not renewed",
            "/certificates?status=expiring&renewed=false".to_owned(),
        ),
        (
            "certificates sorted by expiry",
            "/certificates?sort=valid_until&order=asc".to_owned(),
        ),
        (
            "certificates tagged prod (one in ten)",
            "/certificates?tag=prod".to_owned(),
        ),
        (
            "certificates tagged pci (one in a thousand)",
            "/certificates?tag=pci".to_owned(),
        ),
        (
            "certificates of a team (one in five)",
            format!("/certificates?team_id={team}"),
        ),
        (
            "API certificates by owner",
            format!("/api/v2/certificates?owner_id={admin}&per_page=50"),
        ),
        (
            "API certificates by issuer",
            format!(
                "/api/v2/certificates?issuer={}&per_page=50",
                issuers[1].subject.replace(' ', "%20").replace(',', "%2C")
            ),
        ),
        (
            "API certificates valid from within a week",
            format!(
                "/api/v2/certificates?valid_from_after={}&valid_from_before={}&per_page=50",
                rfc3339(authority.now() - time::Duration::days(400))?,
                rfc3339(authority.now() - time::Duration::days(393))?
            ),
        ),
        (
            "API certificates by cursor, halfway",
            format!("/api/v2/certificates?cursor={middle}&per_page=50"),
        ),
        ("a certificate", format!("/certificates/{middle}")),
        ("CAs", "/cas".to_owned()),
        ("a CA (the busiest)", format!("/cas/{busiest}")),
        ("audit", "/audit".to_owned()),
        ("ACME", "/acme".to_owned()),
    ];
    println!();
    println!(
        "| page | path | KiB | one at a time p50 | p95 | p99 | {clients} at once p50 | p95 | p99 | \
         at once, pages/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, path) in &pages {
        if !only.is_empty() && !only.iter().any(|w| label.contains(w.as_str())) {
            continue;
        }
        let url = format!("{base}{path}");
        // Warm: the connection, the statement cache, the pages the query reads.
        let (_, body) = fetch(&client, &url, &cookie).await?;
        if path.contains("search=host-12345") && n > 12_345 && !body.contains("host-12345.") {
            return Err("the search page does not show host-12345".into());
        }
        for _ in 0..2 {
            fetch(&client, &url, &cookie).await?;
        }
        let (one, _) = measure(&client, &url, &cookie, requests, 1).await?;
        let (many, wall) = measure(&client, &url, &cookie, requests, clients).await?;
        println!(
            "| {label} | `{path}` | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | \
             {:.1} ms | {:.0} |",
            body.len() as f64 / 1024.0,
            quantile(&one, 0.5),
            quantile(&one, 0.95),
            quantile(&one, 0.99),
            quantile(&many, 0.5),
            quantile(&many, 0.95),
            quantile(&many, 0.99),
            many.len() as f64 / wall.as_secs_f64(),
        );
    }
    running.shutdown().await;
    Ok(())
}
