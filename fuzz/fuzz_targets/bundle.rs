//! `bundle::read`: PEM, DER, PKCS#7 and PKCS#12 files given to import and `tools/convert`.
//! The first byte chooses whether a password is given, so both paths are explored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::bundle;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    let password = (choice & 1 == 1).then_some("fuzz");
    if let Ok(read) = bundle::read(input, password) {
        let certificates: Vec<&[u8]> = read.certificates.iter().map(Vec::as_slice).collect();
        // What was read is written out again by the converter; it must take its own output.
        let pem = bundle::certificates_pem(&certificates);
        if !certificates.is_empty() {
            assert!(
                bundle::read(pem.as_bytes(), None).is_ok(),
                "certificates read do not re-read"
            );
        }
    }
});
