//! Randomness from the operating system's CSPRNG, through aws-lc-rs: the one source the
//! workspace draws from (clippy's `disallowed-methods` refuses the others).

use crate::Error;

/// Fills `out` with random bytes.
///
/// # Errors
/// [`Error::Crypto`] when the CSPRNG fails.
#[allow(clippy::disallowed_methods)]
pub fn fill(out: &mut [u8]) -> Result<(), Error> {
    aws_lc_rs::rand::fill(out)
        .map_err(|_| Error::Crypto("the random number generator failed".into()))
}

/// `N` random bytes.
///
/// # Errors
/// [`Error::Crypto`] when the CSPRNG fails.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    fill(&mut out)?;
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
