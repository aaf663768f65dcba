//! ACME orders, with their authorizations and challenges as JSON that the registration
//! authority reads and writes.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::AcmeFilter;
use crate::db::{Arg, Filter};
use crate::{
    AcmeStatus, CertificateId, Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros,
};

/// An ACME order as stored; identifiers, authorizations and error are JSON text that the
/// registration authority reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOrderRow {
    /// Integer id.
    pub id: i64,
    /// The identifier in its URL.
    pub refid: String,
    /// The account that placed it.
    pub account_id: i64,
    /// `pending`, `ready`, `processing`, `valid` or `invalid`.
    pub status: AcmeStatus,
    /// The identifiers asked for (JSON).
    pub identifiers: String,
    /// The authorizations and their challenges (JSON).
    pub authorizations: String,
    /// Requested notBefore.
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// When it expires unless finalized.
    pub expires_at: OffsetDateTime,
    /// Why it became invalid (a problem document, JSON).
    pub error: Option<String>,
    /// The certificate issued for it.
    pub certificate_id: Option<CertificateId>,
    /// The ARI certificate identifier of the certificate it replaces.
    pub replaces: Option<String>,
    /// When it was placed.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// An order to store.
#[derive(Debug, Clone)]
pub struct NewAcmeOrder {
    /// The identifier in its URL.
    pub refid: String,
    /// The account placing it.
    pub account_id: i64,
    /// Its first status.
    pub status: AcmeStatus,
    /// Identifiers (JSON).
    pub identifiers: String,
    /// Authorizations (JSON).
    pub authorizations: String,
    /// Requested notBefore.
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// The ARI identifier of the certificate it replaces.
    pub replaces: Option<String>,
}

/// What changes on an order.
#[derive(Debug, Clone)]
pub struct AcmeOrderChange {
    /// New status.
    pub status: AcmeStatus,
    /// New authorizations (JSON).
    pub authorizations: String,
    /// The problem that made it invalid (JSON).
    pub error: Option<String>,
    /// The certificate issued for it.
    pub certificate_id: Option<CertificateId>,
}

const ORDER_COLUMNS: &str = "id, refid, account_id, status, identifiers, authorizations, \
    not_before, not_after, expires_at, error, certificate_id, replaces, created_at, updated_at";

fn order(row: &AnyRow) -> Result<AcmeOrderRow, Error> {
    Ok(AcmeOrderRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        account_id: row.try_get("account_id")?,
        status: AcmeStatus::read(row, "status")?,
        identifiers: row.try_get("identifiers")?,
        authorizations: row.try_get("authorizations")?,
        not_before: row
            .try_get::<Option<i64>, _>("not_before")?
            .map(from_micros),
        not_after: row.try_get::<Option<i64>, _>("not_after")?.map(from_micros),
        expires_at: from_micros(row.try_get("expires_at")?),
        error: row.try_get("error")?,
        certificate_id: row.try_get("certificate_id")?,
        replaces: row.try_get("replaces")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// The order whose URL names `refid`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_order(&self, refid: &str) -> Result<Option<AcmeOrderRow>, Error> {
        Filter::new("refid = ?", [Arg::Text(refid.to_owned())])
            .fetch_row(self, ORDER_COLUMNS, "acme_orders", order)
            .await
    }

    /// The order that got certificate `certificate_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_order_of_certificate(
        &self,
        certificate_id: CertificateId,
    ) -> Result<Option<AcmeOrderRow>, Error> {
        Filter::new("certificate_id = ?", [Arg::Int(certificate_id.0)])
            .fetch_row(self, ORDER_COLUMNS, "acme_orders", order)
            .await
    }

    /// Orders still `processing` that last changed before `before`, oldest first: finalizations
    /// a node did not finish.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_orders_stalled(
        &self,
        before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<AcmeOrderRow>, Error> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM acme_orders WHERE status = $1 AND updated_at < $2 \
             ORDER BY updated_at LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(AcmeStatus::Processing.as_str())
            .bind(to_micros(before))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order).collect()
    }

    /// The certificate issued through ACME since `since` with `description`: what a
    /// finalization stored before its node stopped.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_certificate_described(
        &self,
        description: &str,
        since: OffsetDateTime,
    ) -> Result<Option<CertificateId>, Error> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM certificates WHERE source = $1 AND created_at >= $2 \
             AND description = $3 ORDER BY id LIMIT 1",
        )
        .bind(crate::CertificateSource::Acme.as_str())
        .bind(to_micros(since))
        .bind(description.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(CertificateId))
    }

    /// The orders that replace the certificate with ARI identifier `replaces`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_orders_replacing(&self, replaces: &str) -> Result<Vec<AcmeOrderRow>, Error> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM acme_orders WHERE replaces = $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(replaces.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order).collect()
    }

    /// One page of orders, newest first; `profile_id` filters through the account.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_orders(
        &self,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeOrderRow>, Error> {
        let mut where_ = Filter::default();
        if let Some(id) = filter.account_id {
            where_.and("account_id = ?", [Arg::Int(id)]);
        }
        if let Some(id) = filter.profile_id {
            where_.and(
                "account_id IN (SELECT id FROM acme_accounts WHERE profile_id = ?)",
                [Arg::Int(id)],
            );
        }
        if let Some(status) = &filter.status {
            where_.and("status = ?", [Arg::Text(status.clone())]);
        }
        let (rows, total) = where_
            .fetch_page(self, ORDER_COLUMNS, "acme_orders", "id DESC", page)
            .await?;
        Ok(Page::counted(
            rows.iter().map(order).collect::<Result<_, _>>()?,
            total,
        ))
    }
}

impl WriteTx {
    /// Stores new orders (each with the time it was placed), in as few statements as the
    /// bind limit allows.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a refid in use; [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_acme_orders(
        &mut self,
        orders: &[(&NewAcmeOrder, OffsetDateTime)],
    ) -> Result<(), Error> {
        self.insert_rows(
            "INSERT INTO acme_orders (refid, account_id, status, identifiers, authorizations, \
             not_before, not_after, expires_at, replaces, created_at, updated_at)",
            11,
            "",
            orders,
            |q, (o, now)| {
                q.bind(o.refid.clone())
                    .bind(o.account_id)
                    .bind(o.status.as_str())
                    .bind(o.identifiers.clone())
                    .bind(o.authorizations.clone())
                    .bind(o.not_before.map(to_micros))
                    .bind(o.not_after.map(to_micros))
                    .bind(to_micros(o.expires_at))
                    .bind(o.replaces.clone())
                    .bind(to_micros(*now))
                    .bind(to_micros(*now))
            },
        )
        .await?;
        Ok(())
    }

    /// The orders among `refids` as they stand inside this transaction, which holds the write
    /// lock: no other writer changes them before this transaction ends.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_orders_named(&mut self, refids: &[&str]) -> Result<Vec<AcmeOrderRow>, Error> {
        let mut found = Vec::with_capacity(refids.len());
        for chunk in refids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM acme_orders WHERE refid IN ({})",
                marks.join(", ")
            );
            let query = chunk.iter().fold(
                sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() == 1),
                |q, refid| q.bind((*refid).to_owned()),
            );
            for row in query.fetch_all(&mut *self.tx).await? {
                found.push(order(&row)?);
            }
        }
        Ok(found)
    }

    /// Applies changes to orders, each `(id, change, when)`, in as few statements as the bind
    /// limit allows. An order appears at most once.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_acme_orders(
        &mut self,
        changes: &[(i64, AcmeOrderChange, OffsetDateTime)],
    ) -> Result<(), Error> {
        self.insert_rows(
            "WITH changed (id, status, authorizations, error, certificate_id, updated_at) AS (",
            6,
            ") UPDATE acme_orders SET status = changed.status, \
             authorizations = changed.authorizations, error = changed.error, \
             certificate_id = changed.certificate_id, updated_at = changed.updated_at \
             FROM changed WHERE acme_orders.id = changed.id",
            changes,
            |q, (id, change, now)| {
                q.bind(*id)
                    .bind(change.status.as_str())
                    .bind(change.authorizations.clone())
                    .bind(change.error.clone())
                    .bind(change.certificate_id)
                    .bind(to_micros(*now))
            },
        )
        .await?;
        Ok(())
    }
}
