//! Certificate decoding: `inspect::Certificate::parse` (`tools/decode-cert`, `tools/check-ssl`,
//! import) and the tls-alpn-01 checks on a certificate a validated server presents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::acme::{AlpnIdentifier, check_tls_alpn_certificate, subject_public_key_info};
use pki::inspect::Certificate;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = Certificate::parse(data) {
        let _ = cert.dns_names().count();
        let _ = cert.is_issued_by(&cert);
    }
    let _ = subject_public_key_info(data);
    let _ = check_tls_alpn_certificate(
        data,
        AlpnIdentifier::Dns("fuzz.example"),
        "token.thumbprint",
    );
    let ip = std::net::IpAddr::from([192, 0, 2, 1]);
    let _ = check_tls_alpn_certificate(data, AlpnIdentifier::Ip(ip), "token.thumbprint");
});
