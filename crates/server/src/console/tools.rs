//! `/tools`: decoding a pasted certificate or CSR, checking which certificate, private key
//! and CSR belong together, and converting between PEM, DER, PKCS#7 and PKCS#12 (the file
//! downloads). Each form posts to its own route, which needs what the REST tool needs, and
//! calls the same function.
//!
//! Private keys and passwords pasted here are used once and never written back into a page:
//! after a refusal those fields come back empty. The form types have no `Debug`, so they
//! cannot end up in a log by accident.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::form::{Form, Refusal, blank_is_none};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::tools::{
    ConvertInput, DecodedCertificate, DecodedCsr, KeyMatch, MatchKeysInput, convert_file,
    decoded_certificate_pem, decoded_csr, key_match,
};
use crate::error::ApiError;

/// The tools' forms: the one a refusal belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Decode,
    Match,
    Convert,
}

/// What the page shows besides its forms.
#[derive(Default)]
enum Outcome {
    #[default]
    Nothing,
    Certificate(Box<DecodedCertificate>),
    Csr(DecodedCsr),
    Match(KeyMatch),
}

#[derive(Template)]
#[template(path = "console/tools.html")]
struct ToolsPage {
    head: Head,
    frame: Frame,
    /// The PEM last decoded (certificates and CSRs hold nothing secret).
    decode_pem: String,
    /// The certificate and CSR last compared; never the key.
    match_certificate: String,
    match_csr: String,
    /// The output format last asked for.
    convert_format: String,
    outcome: Outcome,
    error: Option<(Tool, Refusal)>,
}

impl ToolsPage {
    fn new(visitor: &Visitor) -> Self {
        Self {
            head: Head::new(),
            frame: visitor.frame("/tools"),
            decode_pem: String::new(),
            match_certificate: String::new(),
            match_csr: String::new(),
            convert_format: "pem".to_owned(),
            outcome: Outcome::Nothing,
            error: None,
        }
    }

    /// The refusal of `tool`, when it is about `field` ("" for none).
    fn error_for(&self, tool: &str, field: &str) -> Option<&str> {
        let (t, refusal) = self.error.as_ref()?;
        let name = match t {
            Tool::Decode => "decode",
            Tool::Match => "match",
            Tool::Convert => "convert",
        };
        if name != tool {
            return None;
        }
        match field {
            "" => refusal.general(),
            field => refusal.about(field),
        }
    }

    fn certificate(&self) -> Option<&DecodedCertificate> {
        match &self.outcome {
            Outcome::Certificate(c) => Some(c),
            _ => None,
        }
    }

    fn csr(&self) -> Option<&DecodedCsr> {
        match &self.outcome {
            Outcome::Csr(c) => Some(c),
            _ => None,
        }
    }

    fn key_match(&self) -> Option<&KeyMatch> {
        match &self.outcome {
            Outcome::Match(m) => Some(m),
            _ => None,
        }
    }

    /// The pairs compared: what, and whether they match (none: a side was not given).
    fn pairs(&self) -> Vec<(&'static str, bool)> {
        let Some(m) = self.key_match() else {
            return Vec::new();
        };
        [
            ("Certificate and private key", m.certificate_matches_key),
            ("Certificate and CSR", m.certificate_matches_csr),
            ("Private key and CSR", m.key_matches_csr),
        ]
        .into_iter()
        .filter_map(|(what, same)| same.map(|s| (what, s)))
        .collect()
    }

    /// The page, or its refusal beside the field it names, in the refusal's status.
    fn answer(mut self, tool: Tool, e: Option<ApiError>) -> Response {
        let status = e.as_ref().map_or(StatusCode::OK, ApiError::status);
        self.error = e.map(|e| {
            let fields = match tool {
                Tool::Decode => DECODE_FIELDS,
                Tool::Match => MATCH_FIELDS,
                Tool::Convert => CONVERT_FIELDS,
            };
            (tool, Refusal::of(&e, fields))
        });
        page::render(status, &self)
    }
}

/// `text`, to fill its field again, unless it holds a private key (pasted in the wrong box,
/// or a whole bundle): then nothing.
fn without_keys(text: String) -> String {
    if text.contains("PRIVATE KEY") {
        String::new()
    } else {
        text
    }
}

/// The decoding form's one field: every refusal is about it.
const DECODE_FIELDS: &[(&str, &[&str])] = &[("pem", &[""])];

/// The comparison form's fields, by the field name the REST tool puts before its refusals.
const MATCH_FIELDS: &[(&str, &[&str])] = &[
    ("certificate", &[" certificate:", "certificate pem"]),
    ("private_key", &[" private_key:"]),
    ("csr", &[" csr:"]),
];

/// The conversion form's fields, with the words a refusal uses for each.
const CONVERT_FIELDS: &[(&str, &[&str])] = &[
    ("chain", &[" chain:"]),
    ("private_key", &[" private_key:", "the private key belongs"]),
    ("input_type", &["input_type"]),
    ("pem", &[" pem:"]),
    ("password", &["needs a password"]),
    (
        "output_format",
        &["output_format", "der holds", "pkcs12 holds", "pkcs12 needs"],
    ),
];

/// GET `/tools`.
pub async fn show(Extension(visitor): Extension<Visitor>) -> Response {
    ToolsPage::new(&visitor).answer(Tool::Decode, None)
}

/// The decoding form.
#[derive(Deserialize)]
pub struct DecodeForm {
    #[serde(default)]
    pem: String,
}

/// POST `/tools/decode-cert`.
pub async fn decode_cert(
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<DecodeForm>,
) -> Response {
    let mut page = ToolsPage::new(&visitor);
    let decoded = decoded_certificate_pem(&form.pem);
    page.decode_pem = without_keys(form.pem);
    match decoded {
        Ok(c) => {
            page.outcome = Outcome::Certificate(Box::new(c));
            page.answer(Tool::Decode, None)
        }
        Err(e) => page.answer(Tool::Decode, Some(e)),
    }
}

/// POST `/tools/decode-csr`.
pub async fn decode_csr(
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<DecodeForm>,
) -> Response {
    let mut page = ToolsPage::new(&visitor);
    let decoded = decoded_csr(form.pem.as_bytes());
    page.decode_pem = without_keys(form.pem);
    match decoded {
        Ok(c) => {
            page.outcome = Outcome::Csr(c);
            page.answer(Tool::Decode, None)
        }
        Err(e) => page.answer(Tool::Decode, Some(e)),
    }
}

/// The comparison form. It holds a private key: no `Debug`.
#[derive(Deserialize)]
pub struct MatchForm {
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    csr: String,
    #[serde(default)]
    password: String,
}

/// POST `/tools/match-keys`.
pub async fn match_keys(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<MatchForm>,
) -> Response {
    let given = |text: &str| blank_is_none(text).map(str::to_owned);
    let input = MatchKeysInput {
        certificate: given(&form.certificate),
        private_key: given(&form.private_key),
        csr: given(&form.csr),
        password: given(&form.password),
    };
    let mut page = ToolsPage::new(&visitor);
    page.match_certificate = without_keys(form.certificate);
    page.match_csr = without_keys(form.csr);
    match key_match(&app, input).await {
        Ok(m) => {
            page.outcome = Outcome::Match(m);
            page.answer(Tool::Match, None)
        }
        Err(e) => page.answer(Tool::Match, Some(e)),
    }
}

/// The conversion form. It may hold private keys and passwords: no `Debug`.
#[derive(Deserialize)]
pub struct ConvertForm {
    #[serde(default)]
    pem: String,
    #[serde(default)]
    input_type: String,
    #[serde(default)]
    output_format: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    pkcs12_password: String,
    #[serde(default)]
    chain: String,
    #[serde(default)]
    private_key: String,
}

impl ConvertForm {
    fn to_rest(&self) -> ConvertInput {
        let given = |text: &str| blank_is_none(text).map(str::to_owned);
        ConvertInput {
            pem: self.pem.clone(),
            input_type: given(&self.input_type),
            output_format: self.output_format.clone(),
            password: given(&self.password),
            pkcs12_password: given(&self.pkcs12_password),
            chain: given(&self.chain),
            private_key: given(&self.private_key),
        }
    }
}

/// POST `/tools/convert`: the converted file, or the page with the reason (and without what
/// was pasted, which may hold a key).
pub async fn convert(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ConvertForm>,
) -> Response {
    match convert_file(&app, form.to_rest()).await {
        Ok(file) => file.download(),
        Err(e) => {
            let mut page = ToolsPage::new(&visitor);
            page.convert_format = form.output_format;
            page.answer(Tool::Convert, Some(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (fields, message, field) in [
            (
                MATCH_FIELDS,
                "private_key: the key does not parse",
                Some("private_key"),
            ),
            (MATCH_FIELDS, "csr: bad signature", Some("csr")),
            (
                MATCH_FIELDS,
                "no CERTIFICATE PEM block found",
                Some("certificate"),
            ),
            (
                MATCH_FIELDS,
                "give at least two of certificate, private_key and csr",
                None,
            ),
            (
                CONVERT_FIELDS,
                "pem: not valid base64 (x); binary input (der, pkcs7, pkcs12) is sent as base64",
                Some("pem"),
            ),
            (
                CONVERT_FIELDS,
                "output_format pkcs12 needs a password",
                Some("password"),
            ),
            (
                CONVERT_FIELDS,
                "unknown output_format 'zip'; expected pem, der, pkcs7 or pkcs12",
                Some("output_format"),
            ),
            (
                CONVERT_FIELDS,
                "unknown input_type 'zip'; expected pem, der, pkcs7 or pkcs12",
                Some("input_type"),
            ),
            (CONVERT_FIELDS, "chain: no certificate found", Some("chain")),
            (
                CONVERT_FIELDS,
                "the private key belongs to none of the certificates",
                Some("private_key"),
            ),
            (DECODE_FIELDS, "no CERTIFICATE PEM block found", Some("pem")),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), fields);
            match field {
                Some(f) => assert_eq!(refusal.about(f), Some(message), "{message}"),
                None => assert_eq!(refusal.general(), Some(message), "{message}"),
            }
        }
    }

    #[test]
    fn text_holding_a_private_key_is_not_shown_again() {
        let key =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----";
        assert_eq!(without_keys(format!("cert\n{key}")), "");
        assert_eq!(
            without_keys("-----BEGIN CERTIFICATE-----".into()),
            "-----BEGIN CERTIFICATE-----"
        );
    }

    #[test]
    fn blank_fields_of_the_conversion_are_not_given() {
        let form = ConvertForm {
            pem: "x".into(),
            input_type: String::new(),
            output_format: "der".into(),
            password: " ".into(),
            pkcs12_password: String::new(),
            chain: String::new(),
            private_key: "k".into(),
        };
        let body = form.to_rest();
        assert_eq!(body.input_type, None);
        assert_eq!(body.password, None);
        assert_eq!(body.private_key.as_deref(), Some("k"));
    }
}
