//! Reading the console's forms: a form that cannot be read is a 400 or 422 saying which
//! field, never a panic; blank fields mean "not given".

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// A urlencoded form, refused with the reason when it does not fit `T`.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the form could not be read: {}", rejection.body_text()),
            )
                .into_response()),
        }
    }
}

/// `text` trimmed, or `None` when that leaves nothing.
pub fn blank_is_none(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// The number in field `name`, or `None` when it is blank.
///
/// # Errors
/// 422 naming the field when it is not a number of type `T`.
pub fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<Option<T>, ApiError> {
    blank_is_none(text)
        .map(|t| {
            t.parse()
                .map_err(|_| ApiError::invalid(format!("{name} must be a whole number in range")))
        })
        .transpose()
}

/// The key types a form offers, as `key_algorithm`, `key_size` and `curve`.
pub fn key_choice(label: Option<&str>) -> ApiResult<(Option<String>, Option<u32>, Option<String>)> {
    let ec = |curve: &str| (Some("EC".to_owned()), None, Some(curve.to_owned()));
    let rsa = |bits| (Some("RSA".to_owned()), Some(bits), None);
    Ok(match label {
        None => (None, None, None),
        Some("EC P-256") => ec("P-256"),
        Some("EC P-384") => ec("P-384"),
        Some("RSA 2048") => rsa(2048),
        Some("RSA 3072") => rsa(3072),
        Some("RSA 4096") => rsa(4096),
        Some("Ed25519") => (Some("Ed25519".to_owned()), None, None),
        Some(other) => return Err(ApiError::invalid(format!("unknown key type '{other}'"))),
    })
}

/// The key types the forms offer, in the order shown.
pub const KEY_TYPES: [&str; 6] = [
    "EC P-256", "EC P-384", "RSA 2048", "RSA 3072", "RSA 4096", "Ed25519",
];

/// The non-blank lines of a text area, trimmed.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// A refusal, and the field of the form it is about (none: the form as a whole).
pub struct Refusal {
    field: Option<&'static str>,
    message: String,
}

impl Refusal {
    /// `e`, beside the first field of `fields` whose words (lower case) its message uses.
    pub fn of(e: &ApiError, fields: &[(&'static str, &[&str])]) -> Self {
        Self::within(e, e.message(), fields)
    }

    /// `e`, beside the first field of `fields` whose words `part` of its message uses.
    pub fn within(e: &ApiError, part: &str, fields: &[(&'static str, &[&str])]) -> Self {
        let lower = format!(" {} ", part.to_lowercase());
        Self {
            field: fields
                .iter()
                .find(|(_, words)| words.iter().any(|w| lower.contains(w)))
                .map(|(field, _)| *field),
            message: e.message().to_owned(),
        }
    }

    /// A refusal about no field in particular.
    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// The field it is about, if any.
    #[cfg(test)]
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// The message, when it is about `field`.
    pub fn about(&self, field: &str) -> Option<&str> {
        (self.field == Some(field)).then_some(self.message.as_str())
    }

    /// The message, when it is about no field.
    pub fn general(&self) -> Option<&str> {
        self.field.is_none().then_some(self.message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_are_not_given() {
        assert_eq!(blank_is_none("  "), None);
        assert_eq!(blank_is_none(" a "), Some("a"));
        assert_eq!(lines(" a \n\n b\r\n").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(number::<u32>("n", " 7 ").ok(), Some(Some(7)));
        assert_eq!(number::<u32>("n", "").ok(), Some(None));
        assert!(number::<u32>("n", "-1").is_err());
        assert!(key_choice(Some("DSA 1024")).is_err());
        for label in KEY_TYPES {
            assert!(
                key_choice(Some(label)).is_ok_and(|k| k.0.is_some()),
                "{label}"
            );
        }
    }

    #[test]
    fn a_refusal_goes_beside_the_first_field_it_names() {
        let fields: &[(&str, &[&str])] = &[("max", &["maximum"]), ("days", &["days", "validity"])];
        for (message, field) in [
            ("the maximum is below the days", Some("max")),
            ("Validity is too long", Some("days")),
            ("something else", None),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), fields);
            assert_eq!(refusal.general().is_some(), field.is_none(), "{message}");
            if let Some(field) = field {
                assert_eq!(refusal.about(field), Some(message));
            }
        }
        let e = ApiError::invalid("template 'days': bad");
        assert!(Refusal::within(&e, "bad", fields).general().is_some());
    }
}
