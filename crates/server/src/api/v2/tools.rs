//! `/tools`: decoding certificates and CSRs people paste in, checking which certificate, key
//! and CSR belong together, and converting between file formats. Nothing here is stored.

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, attachment, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use authority::pki::PrivateKey;
use authority::pki::bundle::{self, Bundle, Pkcs12Cipher};
use authority::pki::csr::Csr;
use authority::pki::inspect::Certificate;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(decode_cert))
        .routes(routes!(decode_csr))
        .routes(routes!(match_keys))
        .routes(routes!(convert))
}

/// The PEM labels a certificate travels under.
const CERTIFICATE_LABELS: &[&str] = &["CERTIFICATE", "TRUSTED CERTIFICATE"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PemInput {
    /// PEM (text around the block is fine).
    pub pem: String,
}

/// What a certificate says.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodedCertificate {
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub san: Vec<String>,
    pub is_ca: bool,
    pub path_length: Option<u32>,
    pub self_signed: bool,
    /// e.g. `EC P-256`; null for a key type certmint does not issue.
    pub key_type: Option<String>,
    pub signature_algorithm: String,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub ca_issuers: Vec<String>,
    pub policies: Vec<String>,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
}

fn first_block(pem: &str, labels: &[&str], what: &str) -> ApiResult<Vec<u8>> {
    let blocks =
        authority::pki::pem::find_blocks(pem.as_bytes()).map_err(authority::Error::from)?;
    blocks
        .into_iter()
        .find(|b| labels.contains(&b.label.as_str()))
        .map(|b| b.der)
        .ok_or_else(|| ApiError::invalid(format!("no {what} PEM block found")))
}

/// Decode a certificate.
#[utoipa::path(post, path = "/tools/decode-cert", tag = "tools",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = PemInput,
    responses((status = 200, description = "Decoded", body = Envelope<DecodedCertificate>),
              (status = 422, description = "Not a certificate", body = ErrorBody)))]
async fn decode_cert(ApiJson(body): ApiJson<PemInput>) -> ApiResult<Response> {
    Ok(ok(decoded_certificate_pem(&body.pem)?))
}

/// What the first certificate of the PEM text `pem` says.
///
/// # Errors
/// 422 when there is no certificate block, or it does not parse.
pub fn decoded_certificate_pem(pem: &str) -> ApiResult<DecodedCertificate> {
    let der = first_block(pem, CERTIFICATE_LABELS, "CERTIFICATE")?;
    decoded_certificate(&der)
}

/// What the certificate `der` says; the console's certificate pages show the same.
pub fn decoded_certificate(der: &[u8]) -> ApiResult<DecodedCertificate> {
    let c = Certificate::parse(der).map_err(authority::Error::from)?;
    Ok(DecodedCertificate {
        subject: c.subject,
        issuer: c.issuer,
        serial_number: c.serial,
        valid_from: c.not_before,
        valid_until: c.not_after,
        san: c.sans,
        is_ca: c.is_ca,
        path_length: c.path_len,
        self_signed: c.self_signed,
        key_type: c.key_type.map(|k| k.label()),
        signature_algorithm: c.signature_algorithm,
        key_usage: c.key_usage.iter().map(|u| u.as_str()).collect(),
        extended_key_usage: c.extended_key_usage.iter().map(|e| e.as_string()).collect(),
        subject_key_id: c.subject_key_id.map(hex::encode),
        authority_key_id: c.authority_key_id.map(hex::encode),
        crl_distribution_points: c.crl_urls,
        ocsp_urls: c.ocsp_urls,
        ca_issuers: c.ca_issuer_urls,
        policies: c.policies,
        fingerprint_sha256: c.fingerprint_sha256,
        fingerprint_sha1: c.fingerprint_sha1,
    })
}

/// What a CSR asks for.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodedCsr {
    pub subject: String,
    pub san: Vec<String>,
    pub key_type: String,
    pub signature_algorithm: String,
    /// Always true: a CSR whose signature does not verify is refused.
    pub signature_valid: bool,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<String>,
    pub requests_ca: bool,
}

/// Decode a CSR and check its signature.
#[utoipa::path(post, path = "/tools/decode-csr", tag = "tools",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    request_body = PemInput,
    responses((status = 200, description = "Decoded", body = Envelope<DecodedCsr>),
              (status = 422, description = "Not a valid CSR", body = ErrorBody)))]
async fn decode_csr(ApiJson(body): ApiJson<PemInput>) -> ApiResult<Response> {
    Ok(ok(decoded_csr(body.pem.as_bytes())?))
}

/// What the CSR `input` (PEM or DER) asks for, once its signature is checked; the console's
/// CSR pages show the same.
pub fn decoded_csr(input: &[u8]) -> ApiResult<DecodedCsr> {
    let csr = authority::parse_csr(input)?;
    Ok(DecodedCsr {
        subject: csr.subject_text,
        san: csr.sans.iter().map(|s| s.to_api_string()).collect(),
        key_type: csr.key_type.label(),
        signature_algorithm: csr.signature_algorithm,
        signature_valid: true,
        key_usage: csr.key_usage.iter().map(|u| u.as_str()).collect(),
        extended_key_usage: csr
            .extended_key_usage
            .iter()
            .map(|e| e.as_string())
            .collect(),
        requests_ca: csr.requests_ca,
    })
}

/// A text field, unless absent or blank (forms send empty strings for fields left alone).
fn given(field: Option<&String>) -> Option<&str> {
    field.map(String::as_str).filter(|s| !s.trim().is_empty())
}

/// Maps a PKI error to the API, naming the request field that held the bad input.
fn in_field(name: &'static str) -> impl Fn(authority::pki::Error) -> ApiError {
    move |e| match authority::Error::from(e) {
        authority::Error::Invalid(message) => ApiError::invalid(format!("{name}: {message}")),
        other => other.into(),
    }
}

/// A certificate, a private key and a CSR to compare; any two or all three.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MatchKeysInput {
    /// PEM certificate.
    pub certificate: Option<String>,
    /// PEM private key: PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1.
    pub private_key: Option<String>,
    /// PEM certificate signing request.
    pub csr: Option<String>,
    /// Opens an encrypted private key.
    pub password: Option<String>,
}

/// Which of the items given hold the same public key. A pair with a side not given is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyMatch {
    /// Whether every item given holds the same public key.
    pub matches: bool,
    pub certificate_matches_key: Option<bool>,
    pub certificate_matches_csr: Option<bool>,
    pub key_matches_csr: Option<bool>,
}

/// Say whether a certificate, a private key and a CSR belong together, by their public keys.
#[utoipa::path(post, path = "/tools/match-keys", tag = "tools",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = MatchKeysInput,
    responses((status = 200, description = "Compared", body = Envelope<KeyMatch>),
              (status = 422, description = "Fewer than two items, or one that does not parse", body = ErrorBody)))]
async fn match_keys(
    State(app): State<App>,
    ApiJson(body): ApiJson<MatchKeysInput>,
) -> ApiResult<Response> {
    Ok(ok(key_match(&app, body).await?))
}

/// Which of the certificate, private key and CSR of `body` hold the same public key.
///
/// # Errors
/// 422 for fewer than two items, or one that does not parse (naming its field).
pub async fn key_match(app: &App, body: MatchKeysInput) -> ApiResult<KeyMatch> {
    let (certificate, private_key, csr) = (
        given(body.certificate.as_ref()),
        given(body.private_key.as_ref()),
        given(body.csr.as_ref()),
    );
    if [certificate, private_key, csr].iter().flatten().count() < 2 {
        return Err(ApiError::invalid(
            "give at least two of certificate, private_key and csr",
        ));
    }
    let certificate = certificate
        .map(|pem| -> ApiResult<Vec<u8>> {
            let der = first_block(pem, CERTIFICATE_LABELS, "CERTIFICATE")?;
            let cert = Certificate::parse(&der).map_err(in_field("certificate"))?;
            Ok(cert.public_key_der)
        })
        .transpose()?;
    let private_key = match private_key {
        Some(pem) => Some(public_key_of(app, pem, body.password.clone()).await?),
        None => None,
    };
    let csr = csr
        .map(|pem| {
            Csr::parse(pem.as_bytes())
                .map(|csr| csr.public_key_der)
                .map_err(in_field("csr"))
        })
        .transpose()?;
    let same = |a: &Option<Vec<u8>>, b: &Option<Vec<u8>>| Some(a.as_ref()? == b.as_ref()?);
    let pairs = [
        same(&certificate, &private_key),
        same(&certificate, &csr),
        same(&private_key, &csr),
    ];
    Ok(KeyMatch {
        matches: pairs.iter().flatten().all(|m| *m),
        certificate_matches_key: pairs[0],
        certificate_matches_csr: pairs[1],
        key_matches_csr: pairs[2],
    })
}

/// The public key of a private key in any form; opening an encrypted one runs a key derivation,
/// in the CPU pool.
async fn public_key_of(app: &App, pem: &str, password: Option<String>) -> ApiResult<Vec<u8>> {
    let pem = pem.to_owned();
    let opened = app
        .authority
        .cpu()
        .run(move || {
            Ok(PrivateKey::parse(pem.as_bytes(), password.as_deref())
                .map(|key| key.public_key_der()))
        })
        .await?;
    opened.map_err(in_field("private_key"))
}

/// The file formats `/tools/convert` reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pem,
    Der,
    Pkcs7,
    Pkcs12,
}

impl Format {
    fn parse(field: &str, value: &str) -> ApiResult<Self> {
        match value.to_ascii_lowercase().as_str() {
            "pem" | "crt" => Ok(Self::Pem),
            "der" | "cer" => Ok(Self::Der),
            "pkcs7" | "p7b" => Ok(Self::Pkcs7),
            "pkcs12" | "p12" | "pfx" => Ok(Self::Pkcs12),
            _ => Err(ApiError::invalid(format!(
                "unknown {field} '{value}'; expected pem, der, pkcs7 or pkcs12"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pem => "pem",
            Self::Der => "der",
            Self::Pkcs7 => "pkcs7",
            Self::Pkcs12 => "pkcs12",
        }
    }

    /// File extension and media type.
    fn file(self) -> (&'static str, &'static str) {
        match self {
            Self::Pem => ("pem", "application/x-pem-file"),
            Self::Der => ("der", "application/pkix-cert"),
            Self::Pkcs7 => ("p7b", "application/pkcs7-mime"),
            Self::Pkcs12 => ("p12", "application/x-pkcs12"),
        }
    }
}

/// What to convert, and into what.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertInput {
    /// The input: PEM text, or a binary file (DER, PKCS#7, PKCS#12) as base64.
    pub pem: String,
    /// `pem` when `pem` is text; `der`, `pkcs7` or `pkcs12` when it is base64. When omitted,
    /// text holding a PEM block is read as PEM and anything else as base64.
    pub input_type: Option<String>,
    /// pem, der, pkcs7 or pkcs12.
    pub output_format: String,
    /// Protects the output: required for pkcs12; for pem, encrypts the private keys.
    pub password: Option<String>,
    /// Opens the input: a PKCS#12 file, or an encrypted private key.
    pub pkcs12_password: Option<String>,
    /// More certificates (PEM) to add, such as the issuing chain.
    pub chain: Option<String>,
    /// A private key (PEM) to add, such as the key of a PEM certificate going into PKCS#12.
    pub private_key: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ConvertQuery {
    /// Answer with the file itself rather than JSON.
    pub download: bool,
}

/// The converted file.
#[derive(Debug, Serialize, ToSchema)]
pub struct Converted {
    /// pem, der, pkcs7 or pkcs12.
    pub format: &'static str,
    /// `text` for pem (the PEM itself), `base64` for the binary formats.
    pub encoding: &'static str,
    /// The file.
    pub data: String,
    /// A name to save it under.
    pub filename: String,
    pub content_type: &'static str,
}

/// Convert certificates, keys and CSRs between PEM, DER, PKCS#7 and PKCS#12. What the output
/// format cannot hold (keys in PKCS#7, for instance) is left out and said so in `message`.
#[utoipa::path(post, path = "/tools/convert", tag = "tools",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(ConvertQuery),
    request_body = ConvertInput,
    responses((status = 200, description = "Converted (JSON, or the file with download=true)", body = Envelope<Converted>),
              (status = 422, description = "Unreadable input, a wrong password, or an output that cannot be made", body = ErrorBody)))]
async fn convert(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<ConvertQuery>,
    ApiJson(body): ApiJson<ConvertInput>,
) -> ApiResult<Response> {
    let file = convert_file(&app, body).await?;
    if q.download {
        return Ok(file.download());
    }
    let (encoding, data) = match file.format {
        Format::Pem => ("text", String::from_utf8_lossy(&file.bytes).into_owned()),
        _ => ("base64", BASE64.encode(&file.bytes)),
    };
    let result = Converted {
        format: file.format.name(),
        encoding,
        data,
        filename: file.filename,
        content_type: file.content_type,
    };
    Ok(match file.left_out {
        Some(note) => ok_with(result, note),
        None => ok(result),
    })
}

/// A file `/tools/convert` made.
pub struct ConvertedFile {
    format: Format,
    bytes: Vec<u8>,
    filename: String,
    content_type: &'static str,
    /// What the output format could not hold, said in words.
    pub left_out: Option<String>,
}

impl ConvertedFile {
    /// The file as a download.
    pub fn download(self) -> Response {
        attachment(self.content_type, &self.filename, self.bytes)
    }
}

/// Converts what `body` holds into its `output_format`.
///
/// # Errors
/// 422 for unreadable input, a wrong password, or an output that cannot be made.
pub async fn convert_file(app: &App, body: ConvertInput) -> ApiResult<ConvertedFile> {
    let format = Format::parse("output_format", &body.output_format)?;
    // PKCS#12 and encrypted keys run password derivations that take long enough to stall the
    // other requests sharing this worker thread.
    let (bytes, left_out) = app
        .authority
        .cpu()
        .run(move || Ok(converted(&body, format)))
        .await??;
    let (extension, content_type) = format.file();
    Ok(ConvertedFile {
        format,
        bytes,
        filename: format!("converted.{extension}"),
        content_type,
        left_out,
    })
}

/// The output file, and a note on what it could not hold.
fn converted(body: &ConvertInput, format: Format) -> ApiResult<(Vec<u8>, Option<String>)> {
    let input = bundle_of(body)?;
    let left_out = |keys: usize, csrs: usize| {
        let mut parts = Vec::new();
        if keys > 0 {
            parts.push(counted(keys, "private key"));
        }
        if csrs > 0 {
            parts.push(counted(csrs, "CSR"));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "left out {}: {} does not hold them",
                parts.join(" and "),
                format.name()
            )
        })
    };
    let (keys, csrs) = (input.private_keys.len(), input.csrs.len());
    match format {
        Format::Pem => Ok((pem_of(&input, given(body.password.as_ref()))?, None)),
        Format::Der => match (input.certificates.as_slice(), input.csrs.as_slice()) {
            ([cert], _) => Ok((cert.clone(), left_out(keys, csrs))),
            ([], [csr]) if keys == 0 => Ok((csr.clone(), None)),
            _ => Err(ApiError::invalid(format!(
                "der holds one certificate or one CSR, and the input has {}; use pem, or pkcs7 \
                 for several certificates",
                contents(&input)
            ))),
        },
        Format::Pkcs7 => {
            let certs: Vec<&[u8]> = input.certificates.iter().map(Vec::as_slice).collect();
            let p7 = bundle::pkcs7_certs_only(&certs).map_err(authority::Error::from)?;
            Ok((p7, left_out(keys, csrs)))
        }
        Format::Pkcs12 => {
            let password = given(body.password.as_ref())
                .ok_or_else(|| ApiError::invalid("output_format pkcs12 needs a password"))?;
            Ok((pkcs12_of(&input, password)?, left_out(0, csrs)))
        }
    }
}

/// Everything the request's `pem`, `chain` and `private_key` hold.
fn bundle_of(body: &ConvertInput) -> ApiResult<Bundle> {
    let text = body.pem.trim();
    let binary = match body.input_type.as_deref() {
        Some(kind) => Format::parse("input_type", kind)? != Format::Pem,
        None => !authority::pki::pem::looks_like_pem(text.as_bytes()),
    };
    let input = if binary {
        let compact: String = text.split_ascii_whitespace().collect();
        BASE64.decode(compact).map_err(|e| {
            ApiError::invalid(format!(
                "pem: not valid base64 ({e}); binary input (der, pkcs7, pkcs12) is sent as base64"
            ))
        })?
    } else {
        text.as_bytes().to_vec()
    };
    let password = given(body.pkcs12_password.as_ref());
    let mut found = bundle::read(&input, password).map_err(in_field("pem"))?;
    if let Some(chain) = given(body.chain.as_ref()) {
        let certs = bundle::read(chain.as_bytes(), None)
            .map_err(in_field("chain"))?
            .certificates;
        if certs.is_empty() {
            return Err(ApiError::invalid("chain: no certificate found"));
        }
        found.certificates.extend(certs);
    }
    if let Some(key) = given(body.private_key.as_ref()) {
        let key = PrivateKey::parse(key.as_bytes(), password).map_err(in_field("private_key"))?;
        found.private_keys.push(key);
    }
    Ok(found)
}

/// Certificates, then private keys (encrypted under `password` when one is given), then CSRs.
fn pem_of(input: &Bundle, password: Option<&str>) -> ApiResult<Vec<u8>> {
    let certs: Vec<&[u8]> = input.certificates.iter().map(Vec::as_slice).collect();
    let mut text = bundle::certificates_pem(&certs);
    for key in &input.private_keys {
        match password {
            Some(p) => text.push_str(&key.to_encrypted_pem(p).map_err(authority::Error::from)?),
            None => text.push_str(&key.to_pkcs8_pem()),
        }
    }
    for csr in &input.csrs {
        text.push_str(&authority::pki::pem::encode("CERTIFICATE REQUEST", csr));
    }
    Ok(text.into_bytes())
}

/// A PKCS#12 file of the one private key (if any) with its certificate, the other certificates
/// as its chain. Without a key, the first certificate leads.
fn pkcs12_of(input: &Bundle, password: &str) -> ApiResult<Vec<u8>> {
    let key = match input.private_keys.as_slice() {
        [] => None,
        [key] => Some(key),
        keys => {
            return Err(ApiError::invalid(format!(
                "pkcs12 holds one private key, and the input has {}",
                keys.len()
            )));
        }
    };
    let parsed = input
        .certificates
        .iter()
        .map(|der| Certificate::parse(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(authority::Error::from)?;
    let leaf = match key {
        Some(key) => {
            let public = key.public_key_der();
            parsed
                .iter()
                .position(|c| c.public_key_der == public)
                .ok_or_else(|| {
                    ApiError::invalid("the private key belongs to none of the certificates")
                })?
        }
        None if parsed.is_empty() => {
            return Err(ApiError::invalid("pkcs12 needs at least one certificate"));
        }
        None => 0,
    };
    let chain: Vec<&[u8]> = parsed
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leaf)
        .map(|(_, c)| c.der.as_slice())
        .collect();
    let name = parsed[leaf].common_name.as_deref().unwrap_or("certificate");
    Ok(bundle::pkcs12(
        key.map(PrivateKey::pkcs8_der),
        &parsed[leaf].der,
        &chain,
        password,
        name,
        Pkcs12Cipher::Aes256,
    )
    .map_err(authority::Error::from)?)
}

/// "2 certificates, 1 private key and 0 CSRs".
fn contents(input: &Bundle) -> String {
    format!(
        "{}, {} and {}",
        counted(input.certificates.len(), "certificate"),
        counted(input.private_keys.len(), "private key"),
        counted(input.csrs.len(), "CSR")
    )
}

fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
