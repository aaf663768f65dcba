//! Randomness from the operating system's CSPRNG, through aws-lc-rs.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::Error;

/// `N` random bytes.
///
/// # Errors
/// [`Error::Crypto`] when the CSPRNG fails.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::Crypto("the random number generator failed".into()))?;
    Ok(out)
}

/// A certificate serial number: 16 random bytes with the top bit cleared, so the DER INTEGER is
/// positive and has at least 120 bits of CSPRNG output (RFC 5280 §4.1.2.2; CA/B Forum ≥ 64).
///
/// # Errors
/// [`Error::Crypto`] when the CSPRNG fails.
pub fn serial() -> Result<[u8; 16], Error> {
    let mut serial = bytes::<16>()?;
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        // A leading zero byte would make DER drop it, shortening the serial below 16 bytes.
        serial[0] = 0x01;
    }
    Ok(serial)
}
