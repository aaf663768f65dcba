//! The JSON shapes of accounts, keys and sessions, shared by the modules that return them.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user, as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub role: String,
    /// Whether the account may log in.
    pub active: bool,
    /// Whether the account is locked after failed logins.
    pub locked: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    pub failed_logins: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl UserView {
    pub fn new(u: authority::UserRow, now: OffsetDateTime) -> Self {
        let locked_until = u.locked_until.filter(|t| *t > now);
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            full_name: u.full_name,
            role: u.role,
            active: u.enabled,
            locked: locked_until.is_some(),
            locked_until,
            failed_logins: u.failed_logins,
            last_login: u.last_login_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// Deserialises a field that may be absent (leave it), `null` (clear it) or a value (set it).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The subject fields a request may carry, named as in the UCM reference.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub struct SubjectFields {
    pub common_name: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    /// Two-letter country code.
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
    /// The PKCS#9 emailAddress attribute (prefer an `email:` SAN).
    pub email: Option<String>,
}

impl SubjectFields {
    /// The distinguished name, each value checked against RFC 5280's rules.
    pub fn to_name(&self) -> Result<authority::pki::DistinguishedName, authority::Error> {
        use authority::pki::NameAttribute as A;
        let mut dn = authority::pki::DistinguishedName::new();
        for (attribute, value) in [
            (A::Country, &self.country),
            (A::State, &self.state),
            (A::Locality, &self.locality),
            (A::Organization, &self.organization),
            (A::OrganizationalUnit, &self.organizational_unit),
            (A::CommonName, &self.common_name),
            (A::EmailAddress, &self.email),
        ] {
            if let Some(value) = value {
                dn.set(attribute, value)?;
            }
        }
        Ok(dn)
    }
}

/// The key type a request asks for with `key_algorithm`, `key_size` and `curve`: EC P-256 when
/// none is given, RSA when only an RSA-sized `key_size` is.
pub fn requested_key_type(
    algorithm: Option<&str>,
    size: Option<u32>,
    curve: Option<&str>,
) -> Result<authority::pki::KeyType, authority::Error> {
    use authority::pki::KeyType;
    Ok(match (algorithm, size, curve) {
        (None, Some(bits), None) if bits >= 1024 => KeyType::parse("RSA", Some(bits), None),
        (None, size, curve) => KeyType::parse("EC", size, curve),
        (Some(alg), size, curve) => KeyType::parse(alg, size, curve),
    }?)
}

/// Most ids one bulk request may name.
pub const MAX_BULK: usize = 1000;

/// The ids a bulk operation works on.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkIds {
    pub ids: Vec<i64>,
}

/// Which ids a bulk operation did, which it did not, and why not.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BulkResult {
    pub success: Vec<i64>,
    pub failed: Vec<i64>,
    /// One entry per failed id.
    pub errors: Vec<BulkError>,
}

/// Why one id of a bulk operation failed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkError {
    pub id: i64,
    pub error: String,
}

/// Checks that a bulk request names 1 to [`MAX_BULK`] ids, each once.
///
/// # Errors
/// 422 naming the problem.
pub fn bulk_ids(ids: &[i64]) -> Result<(), crate::error::ApiError> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(crate::error::ApiError::invalid(format!(
            "ids must name 1 to {MAX_BULK} items"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(crate::error::ApiError::invalid(format!(
            "id {dup} is named twice"
        )));
    }
    Ok(())
}

/// Runs `each` for every id in turn and reports what happened to each. One failing id does not
/// stop the others.
///
/// # Errors
/// 422 for an empty, oversized or repeating id list.
pub async fn bulk<F, Fut>(ids: &[i64], each: F) -> Result<BulkResult, crate::error::ApiError>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), authority::Error>>,
{
    bulk_counting(ids, each, &AtomicUsize::new(0)).await
}

/// As [`bulk`], counting in `done` the ids it has been through, for whoever watches.
///
/// # Errors
/// 422 for an empty, oversized or repeating id list.
pub async fn bulk_counting<F, Fut>(
    ids: &[i64],
    mut each: F,
    done: &AtomicUsize,
) -> Result<BulkResult, crate::error::ApiError>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), authority::Error>>,
{
    bulk_ids(ids)?;
    let mut result = BulkResult::default();
    for &id in ids {
        let outcome = each(id).await;
        done.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => result.success.push(id),
            Err(e) => {
                result.failed.push(id);
                result.errors.push(BulkError {
                    id,
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(result)
}
