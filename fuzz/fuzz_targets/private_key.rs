//! `PrivateKey::parse`: PEM and DER keys in every form users bring, encrypted PKCS#8 included
//! (its KDF parameters come from the attacker). The first byte chooses whether a passphrase is
//! given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::PrivateKey;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    let passphrase = (choice & 1 == 1).then_some("fuzz");
    if let Ok(key) = PrivateKey::parse(input, passphrase) {
        let again = PrivateKey::from_pkcs8_der(key.pkcs8_der());
        assert!(
            again.is_ok(),
            "a parsed key does not re-read from its own PKCS#8"
        );
        let _ = key.public_key_der();
    }
});
