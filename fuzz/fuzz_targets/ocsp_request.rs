//! `ocsp::Request::parse`: every OCSP request body, POST or GET, from anyone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::ocsp::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::parse(data) {
        assert!(
            !request.cert_ids().is_empty(),
            "a request parsed with no CertID"
        );
        for id in request.cert_ids() {
            let _ = (
                id.hash_algorithm(),
                id.issuer_name_hash(),
                id.issuer_key_hash(),
                id.serial(),
            );
        }
        let _ = request.nonce();
    }
});
