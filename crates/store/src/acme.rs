//! ACME's rows: profiles, accounts, orders (with their authorizations as JSON), used nonces,
//! external account binding keys and rate-limit counters.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag};
use crate::{Error, Page, PageRequest, Store, WriteTx, from_micros, to_micros};

/// An ACME profile: one directory, bound to a CA, a template, a validity and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeProfileRow {
    /// Integer id.
    pub id: i64,
    /// The name in its URLs (`/acme/{name}/directory`).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Whether its directory serves.
    pub enabled: bool,
    /// Whether it is the one at `/acme/directory`.
    pub is_default: bool,
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<i64>,
    /// The template requests are checked against.
    pub template_id: Option<i64>,
    /// Validity of the certificates it issues.
    pub validity_days: i64,
    /// Whether new accounts need an external account binding.
    pub require_eab: bool,
    /// DNS suffixes and IP networks it issues for; empty allows any.
    pub allowed_identifiers: Vec<String>,
    /// The challenge types it offers.
    pub challenge_types: Vec<String>,
    /// The terms-of-service URL in its directory.
    pub terms_of_service: String,
    /// The website URL in its directory.
    pub website: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// The settable fields of a profile; `None` leaves a field as it is (or takes the default on
/// insert).
#[derive(Debug, Clone, Default)]
pub struct AcmeProfileFields {
    /// Free text.
    pub description: Option<String>,
    /// Whether its directory serves.
    pub enabled: Option<bool>,
    /// The issuing CA (`Some(None)` is the default CA).
    pub ca_id: Option<Option<i64>>,
    /// The template (`Some(None)` is none).
    pub template_id: Option<Option<i64>>,
    /// Validity in days.
    pub validity_days: Option<i64>,
    /// Whether new accounts need external account binding.
    pub require_eab: Option<bool>,
    /// DNS suffixes and IP networks.
    pub allowed_identifiers: Option<Vec<String>>,
    /// Challenge types offered.
    pub challenge_types: Option<Vec<String>>,
    /// Terms-of-service URL.
    pub terms_of_service: Option<String>,
    /// Website URL.
    pub website: Option<String>,
}

const PROFILE_COLUMNS: &str = "id, name, description, enabled, is_default, ca_id, template_id, \
    validity_days, require_eab, allowed_identifiers, challenge_types, terms_of_service, website, \
    created_at, updated_at";

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn profile(row: &AnyRow) -> Result<AcmeProfileRow, Error> {
    Ok(AcmeProfileRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        ca_id: row.try_get("ca_id")?,
        template_id: row.try_get("template_id")?,
        validity_days: row.try_get("validity_days")?,
        require_eab: row.try_get::<i64, _>("require_eab")? != 0,
        allowed_identifiers: words(&row.try_get::<String, _>("allowed_identifiers")?),
        challenge_types: words(&row.try_get::<String, _>("challenge_types")?),
        terms_of_service: row.try_get("terms_of_service")?,
        website: row.try_get("website")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

/// Instance-wide ACME settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcmeState {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// New orders one account may place per hour; 0 is unlimited.
    pub orders_per_account_hour: i64,
    /// New accounts one client address may register per hour; 0 is unlimited.
    pub accounts_per_address_hour: i64,
}

/// An ACME account: a key within a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRow {
    /// Integer id.
    pub id: i64,
    /// The identifier in its URL (the JWS `kid`).
    pub refid: String,
    /// Its profile.
    pub profile_id: i64,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its key, a JWK as JSON text.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Whether it agreed to the terms of service.
    pub tos_agreed: bool,
    /// The external account binding key it registered with.
    pub eab_key_id: Option<i64>,
    /// The client address it registered from.
    pub origin_ip: Option<String>,
    /// When it registered.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// An account to store.
#[derive(Debug, Clone)]
pub struct NewAcmeAccount {
    /// The identifier in its URL.
    pub refid: String,
    /// Its profile.
    pub profile_id: i64,
    /// Key thumbprint.
    pub thumbprint: String,
    /// Key, JWK JSON.
    pub jwk: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Terms agreed.
    pub tos_agreed: bool,
    /// The external account binding key.
    pub eab_key_id: Option<i64>,
    /// Client address.
    pub origin_ip: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, refid, profile_id, thumbprint, jwk, status, contact, \
    tos_agreed, eab_key_id, origin_ip, created_at, updated_at";

fn account(row: &AnyRow) -> Result<AcmeAccountRow, Error> {
    Ok(AcmeAccountRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        profile_id: row.try_get("profile_id")?,
        thumbprint: row.try_get("thumbprint")?,
        jwk: row.try_get("jwk")?,
        status: row.try_get("status")?,
        contact: words(&row.try_get::<String, _>("contact")?),
        tos_agreed: row.try_get::<i64, _>("tos_agreed")? != 0,
        eab_key_id: row.try_get("eab_key_id")?,
        origin_ip: row.try_get("origin_ip")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

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
    pub status: String,
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
    pub certificate_id: Option<i64>,
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
    pub status: String,
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
    pub status: String,
    /// New authorizations (JSON).
    pub authorizations: String,
    /// The problem that made it invalid (JSON).
    pub error: Option<String>,
    /// The certificate issued for it.
    pub certificate_id: Option<i64>,
}

const ORDER_COLUMNS: &str = "id, refid, account_id, status, identifiers, authorizations, \
    not_before, not_after, expires_at, error, certificate_id, replaces, created_at, updated_at";

fn order(row: &AnyRow) -> Result<AcmeOrderRow, Error> {
    Ok(AcmeOrderRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        account_id: row.try_get("account_id")?,
        status: row.try_get("status")?,
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

/// Filters for the administrators' lists of accounts and orders.
#[derive(Debug, Clone, Default)]
pub struct AcmeFilter {
    /// Only this profile's.
    pub profile_id: Option<i64>,
    /// Only this account's (orders).
    pub account_id: Option<i64>,
    /// Only with this status.
    pub status: Option<String>,
}

/// An external account binding key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabKeyRow {
    /// Integer id.
    pub id: i64,
    /// The key identifier the client sends as `kid`.
    pub key_id: String,
    /// The profile it registers accounts on.
    pub profile_id: i64,
    /// The HMAC key, sealed by the vault.
    pub hmac_key: Vec<u8>,
    /// Free text.
    pub description: String,
    /// The account it was bound to.
    pub account_id: Option<i64>,
    /// The user who made it.
    pub created_by: Option<i64>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When an account used it.
    pub used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

const EAB_COLUMNS: &str = "id, key_id, profile_id, hmac_key, description, account_id, \
    created_by, created_at, used_at, revoked_at";

fn eab_key(row: &AnyRow) -> Result<AcmeEabKeyRow, Error> {
    Ok(AcmeEabKeyRow {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        profile_id: row.try_get("profile_id")?,
        hmac_key: row.try_get("hmac_key")?,
        description: row.try_get("description")?,
        account_id: row.try_get("account_id")?,
        created_by: row.try_get("created_by")?,
        created_at: from_micros(row.try_get("created_at")?),
        used_at: row.try_get::<Option<i64>, _>("used_at")?.map(from_micros),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
    })
}

/// Counts by status, for `/api/v2/acme/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeCounts {
    /// Accounts by status.
    pub accounts: Vec<(String, i64)>,
    /// Orders by status.
    pub orders: Vec<(String, i64)>,
    /// Profiles.
    pub profiles: i64,
    /// External account binding keys not revoked.
    pub eab_keys: i64,
}

impl Store {
    /// Every ACME profile, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profiles(&self) -> Result<Vec<AcmeProfileRow>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM acme_profiles ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(profile).collect()
    }

    /// The profile named `name`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profile_named(&self, name: &str) -> Result<Option<AcmeProfileRow>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM acme_profiles WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(profile).transpose()
    }

    /// Profile `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profile(&self, id: i64) -> Result<Option<AcmeProfileRow>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM acme_profiles WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(profile).transpose()
    }

    /// The profile at `/acme/directory`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn default_acme_profile(&self) -> Result<Option<AcmeProfileRow>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM acme_profiles WHERE is_default = 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(profile).transpose()
    }

    /// The instance-wide ACME settings.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_state(&self) -> Result<AcmeState, Error> {
        let row = sqlx::query(
            "SELECT enabled, orders_per_account_hour, accounts_per_address_hour \
             FROM acme_state WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(AcmeState {
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            orders_per_account_hour: row.try_get("orders_per_account_hour")?,
            accounts_per_address_hour: row.try_get("accounts_per_address_hour")?,
        })
    }

    /// The nonce key (sealed), storing `candidate` first when there is none yet: every node
    /// ends up with the same key, whichever stored it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_nonce_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>, Error> {
        sqlx::query("UPDATE acme_state SET nonce_key = $1 WHERE id = 1 AND nonce_key IS NULL")
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT nonce_key FROM acme_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        row.try_get::<Option<Vec<u8>>, _>("nonce_key")?
            .ok_or_else(|| Error::Corrupt("the ACME nonce key was not stored".into()))
    }

    /// Forgets used nonces that have expired (they are refused for their age anyway).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn purge_used_nonces(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM acme_used_nonces WHERE expires_at < $1")
            .bind(to_micros(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Counts one more event against `key` in the window starting at `window_start`, and
    /// returns the count so far. Windows before `window_start` are dropped now and then by
    /// [`Store::purge_rate_counters`].
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_rate(&self, key: &str, window_start: OffsetDateTime) -> Result<i64, Error> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_relaxed().await?;
        let row = sqlx::query(
            "INSERT INTO acme_rate_counters (key, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (key, window_start) DO UPDATE SET count = acme_rate_counters.count + 1 \
             RETURNING count",
        )
        .bind(key.to_owned())
        .bind(to_micros(window_start))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.try_get("count")?)
    }

    /// Drops rate-limit windows that started before `before`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn purge_rate_counters(&self, before: OffsetDateTime) -> Result<u64, Error> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM acme_rate_counters WHERE window_start < $1")
            .bind(to_micros(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The account whose URL names `refid`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account(&self, refid: &str) -> Result<Option<AcmeAccountRow>, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE refid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(refid.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// Account `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account_by_id(&self, id: i64) -> Result<Option<AcmeAccountRow>, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// The account of `profile_id` whose key has `thumbprint`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account_by_key(
        &self,
        profile_id: i64,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRow>, Error> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE profile_id = $1 AND thumbprint = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(profile_id)
            .bind(thumbprint.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// One page of accounts, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_accounts(
        &self,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeAccountRow>, Error> {
        let mut where_ = Filter::default();
        if let Some(id) = filter.profile_id {
            where_.and("profile_id = ?", [Arg::Int(id)]);
        }
        if let Some(status) = &filter.status {
            where_.and("status = ?", [Arg::Text(status.clone())]);
        }
        let (rows, total) = where_
            .fetch_page(self, ACCOUNT_COLUMNS, "acme_accounts", "id DESC", page)
            .await?;
        Ok(Page {
            items: rows.iter().map(account).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// The order whose URL names `refid`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_order(&self, refid: &str) -> Result<Option<AcmeOrderRow>, Error> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM acme_orders WHERE refid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(refid.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order).transpose()
    }

    /// The order that got certificate `certificate_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_order_of_certificate(
        &self,
        certificate_id: i64,
    ) -> Result<Option<AcmeOrderRow>, Error> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM acme_orders WHERE certificate_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(certificate_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order).transpose()
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
        Ok(Page {
            items: rows.iter().map(order).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// The external account binding key the client calls `key_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_key(&self, key_id: &str) -> Result<Option<AcmeEabKeyRow>, Error> {
        let sql = format!("SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE key_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(eab_key).transpose()
    }

    /// External account binding key `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_key_by_id(&self, id: i64) -> Result<Option<AcmeEabKeyRow>, Error> {
        let sql = format!("SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(eab_key).transpose()
    }

    /// The external account binding keys of `profile_id`, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_keys(&self, profile_id: i64) -> Result<Vec<AcmeEabKeyRow>, Error> {
        let sql = format!(
            "SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE profile_id = $1 ORDER BY id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(profile_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(eab_key).collect()
    }

    /// Counts for the statistics page.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_counts(&self) -> Result<AcmeCounts, Error> {
        let by_status = |table: &'static str| {
            let sql = format!(
                "SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool)
        };
        let pairs = |rows: Vec<AnyRow>| -> Result<Vec<(String, i64)>, Error> {
            rows.iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect()
        };
        let accounts = pairs(by_status("acme_accounts").await?)?;
        let orders = pairs(by_status("acme_orders").await?)?;
        let profiles = sqlx::query("SELECT COUNT(*) AS n FROM acme_profiles")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let eab_keys =
            sqlx::query("SELECT COUNT(*) AS n FROM acme_eab_keys WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(AcmeCounts {
            accounts,
            orders,
            profiles,
            eab_keys,
        })
    }
}

impl WriteTx {
    /// Stores a profile named `name` and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken; [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_acme_profile(
        &mut self,
        name: &str,
        is_default: bool,
        fields: &AcmeProfileFields,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_profiles (name, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(flag(is_default))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        let id = row.try_get("id")?;
        self.update_acme_profile(id, fields, now).await?;
        Ok(id)
    }

    /// Changes the fields of profile `id` that `fields` sets. Returns false when there is no
    /// such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_acme_profile(
        &mut self,
        id: i64,
        fields: &AcmeProfileFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut sets = vec!["updated_at = $1".to_owned()];
        let mut args = vec![Arg::Int(to_micros(now))];
        let mut set = |column: &str, arg: Option<Arg>| {
            args.push(arg.unwrap_or(Arg::Null));
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(v) = &fields.description {
            set("description", Some(Arg::Text(v.clone())));
        }
        if let Some(v) = fields.enabled {
            set("enabled", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = fields.ca_id {
            set("ca_id", v.map(Arg::Int));
        }
        if let Some(v) = fields.template_id {
            set("template_id", v.map(Arg::Int));
        }
        if let Some(v) = fields.validity_days {
            set("validity_days", Some(Arg::Int(v)));
        }
        if let Some(v) = fields.require_eab {
            set("require_eab", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = &fields.allowed_identifiers {
            set("allowed_identifiers", Some(Arg::Text(v.join(" "))));
        }
        if let Some(v) = &fields.challenge_types {
            set("challenge_types", Some(Arg::Text(v.join(" "))));
        }
        if let Some(v) = &fields.terms_of_service {
            set("terms_of_service", Some(Arg::Text(v.clone())));
        }
        if let Some(v) = &fields.website {
            set("website", Some(Arg::Text(v.clone())));
        }
        let sql = format!(
            "UPDATE acme_profiles SET {} WHERE id = ${}",
            sets.join(", "),
            args.len() + 1
        );
        let query = args
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, arg| arg.bind(q))
            .bind(id);
        Ok(query.execute(&mut *self.tx).await?.rows_affected() > 0)
    }

    /// Deletes profile `id` with its accounts, orders and keys. Returns false when there is no
    /// such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_acme_profile(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM acme_profiles WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the instance-wide ACME settings.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_acme_state(&mut self, state: &AcmeState) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_state SET enabled = $1, orders_per_account_hour = $2, \
             accounts_per_address_hour = $3 WHERE id = 1",
        )
        .bind(flag(state.enabled))
        .bind(state.orders_per_account_hour)
        .bind(state.accounts_per_address_hour)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores an account and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key already has an account on the profile;
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_acme_account(
        &mut self,
        a: &NewAcmeAccount,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_accounts (refid, profile_id, thumbprint, jwk, status, contact, \
             tos_agreed, eab_key_id, origin_ip, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'valid', $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(a.refid.clone())
        .bind(a.profile_id)
        .bind(a.thumbprint.clone())
        .bind(a.jwk.clone())
        .bind(a.contact.join(" "))
        .bind(flag(a.tos_agreed))
        .bind(a.eab_key_id)
        .bind(a.origin_ip.clone())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets account `id`'s contact URLs and status.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_acme_account(
        &mut self,
        id: i64,
        contact: &[String],
        status: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_accounts SET contact = $1, status = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(contact.join(" "))
        .bind(status.to_owned())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Gives account `id` a new key.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another account of the profile has that key;
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_acme_account_key(
        &mut self,
        id: i64,
        thumbprint: &str,
        jwk: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_accounts SET thumbprint = $1, jwk = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(thumbprint.to_owned())
        .bind(jwk.to_owned())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks nonces used. Returns those that were not used before, in no particular order
    /// (a nonce twice in `nonces` comes back once): one statement for a whole batch.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn use_nonces(
        &mut self,
        nonces: &[(String, OffsetDateTime)],
    ) -> Result<Vec<String>, Error> {
        let rows = self
            .insert_rows(
                "INSERT INTO acme_used_nonces (nonce, expires_at)",
                2,
                " ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                nonces,
                |q, (nonce, expires)| q.bind(nonce.clone()).bind(to_micros(*expires)),
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get("nonce").map_err(Error::from))
            .collect()
    }

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
                    .bind(o.status.clone())
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
                    .bind(change.status.clone())
                    .bind(change.authorizations.clone())
                    .bind(change.error.clone())
                    .bind(change.certificate_id)
                    .bind(to_micros(*now))
            },
        )
        .await?;
        Ok(())
    }

    /// Stores an external account binding key (its HMAC key sealed) and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key id is taken; [`Error::Database`] or
    /// [`Error::Unavailable`].
    pub async fn insert_acme_eab_key(
        &mut self,
        key_id: &str,
        profile_id: i64,
        sealed_hmac: &[u8],
        description: &str,
        created_by: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_eab_keys (key_id, profile_id, hmac_key, description, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(key_id.to_owned())
        .bind(profile_id)
        .bind(sealed_hmac.to_vec())
        .bind(description.to_owned())
        .bind(created_by)
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Revokes external account binding key `id`. Returns false when it does not exist or
    /// was revoked before.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revoke_acme_eab_key(
        &mut self,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_eab_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Binds unused, unrevoked key `id` to `account_id`. Returns false when it was used or
    /// revoked meanwhile, so that one key registers one account.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn bind_acme_eab_key(
        &mut self,
        id: i64,
        account_id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_eab_keys SET account_id = $1, used_at = $2 \
             WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(account_id)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
