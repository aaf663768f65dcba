//! `Jws::parse` and `Jwk::from_json` (inside it, for a `jwk` header), then verification: every
//! ACME POST body and every external account binding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::jose::Jws;

fuzz_target!(|data: &[u8]| {
    let Ok(jws) = Jws::parse(data) else {
        return;
    };
    let _ = jws.algorithm();
    if let Some(jwk) = &jws.header.jwk {
        let _ = jws.verify(jwk);
        let _ = jwk.thumbprint();
        let _ = jwk.spki_der();
    }
    let _ = jws.verify_hmac(b"fuzz-external-account-binding-key");
    // An external account binding is a JWS inside the payload.
    if let Ok(inner) = Jws::parse(&jws.payload) {
        let _ = inner.verify_hmac(b"fuzz-external-account-binding-key");
    }
});
