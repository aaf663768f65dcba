//! `Csr::parse`: every CSR that REST, ACME finalize and `tools/decode-csr` receive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::csr::Csr;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = Csr::parse(data) {
        // A CSR that parsed is shown back to users as PEM; that must not fail either.
        let pem = csr.to_pem();
        assert!(
            Csr::parse(pem.as_bytes()).is_ok(),
            "a parsed CSR does not re-parse from PEM"
        );
    }
});
