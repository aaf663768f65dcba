//! Limits on the password-based key derivations run over files certmint did not make: encrypted
//! PKCS#8 keys (alone or in PEM bundles) and PKCS#12 files.
//!
//! Such a file names its own cost. Without a limit, one upload asking for 4,294,967,295 PBKDF2
//! iterations holds a core for hours, and scrypt parameters make it allocate N·r·128 bytes up
//! front, where a failed allocation aborts the process. Every derivation is weighed here, from
//! its parameters, before it runs: one derivation may cost at most [`MAX_WORK`], one file at most
//! [`MAX_FILE_WORK`], and scrypt may take at most [`MAX_SCRYPT_MEMORY`] bytes and
//! [`MAX_SCRYPT_PARALLELISM`] lanes.
//!
//! Keys certmint seals itself (the vault) are not read through here: their parameters are ours.

use pkcs5::pbes2;
use zeroize::Zeroizing;

use crate::Error;

/// The most work one key derivation may cost, in PBKDF2 iterations. RFC 8018 §4.2 calls
/// 10,000,000 appropriate for especially critical keys; tools write 2,048 (OpenSSL) to 600,000.
/// An scrypt derivation costs N·r·p: a unit of it takes about as long as one iteration.
pub const MAX_WORK: u32 = 10_000_000;
/// The most work one file may cost: a PKCS#12 MAC, its certificates and a key, each at the limit.
pub const MAX_FILE_WORK: u64 = 3 * MAX_WORK as u64;
/// The most memory an scrypt derivation may take: 128·r·(N + p) bytes, 64 MiB. `openssl pkcs8
/// -scrypt` takes 16 MiB (N = 16384, r = 8, p = 1).
pub const MAX_SCRYPT_MEMORY: u64 = 64 << 20;
/// The most scrypt lanes (p).
pub const MAX_SCRYPT_PARALLELISM: u16 = 16;

// The memory and lane limits keep one scrypt derivation within MAX_WORK.
const _: () = assert!(MAX_SCRYPT_MEMORY / 128 * MAX_SCRYPT_PARALLELISM as u64 <= MAX_WORK as u64);

/// What the key derivations of one input may still cost.
#[derive(Debug)]
pub(crate) struct KdfBudget {
    left: u64,
    total: u64,
}

impl KdfBudget {
    /// The budget of a lone key: one derivation.
    pub(crate) fn for_key() -> Self {
        Self::of(MAX_WORK.into())
    }

    /// The budget of a file that may hold several encrypted parts.
    pub(crate) fn for_file() -> Self {
        Self::of(MAX_FILE_WORK)
    }

    fn of(total: u64) -> Self {
        Self { left: total, total }
    }

    /// Counts a derivation of `count` iterations (PBKDF2, or the PKCS#12 KDF) before it runs.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a count that is not positive or is over a limit.
    pub(crate) fn iterations(&mut self, count: impl Into<i64>) -> Result<(), Error> {
        let count = count.into();
        let work = u64::try_from(count)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| invalid(format!("iteration count {count} is not a positive number")))?;
        if work > u64::from(MAX_WORK) {
            return Err(invalid(format!(
                "iteration count {work} is over the limit of {MAX_WORK}"
            )));
        }
        self.spend(work)
    }

    /// Counts the derivation PBES2 parameters ask for (PBKDF2 or scrypt) before it runs.
    ///
    /// # Errors
    /// [`Error::Invalid`] for parameters over a limit.
    pub(crate) fn pbes2(&mut self, params: &pbes2::Parameters) -> Result<(), Error> {
        match &params.kdf {
            pbes2::Kdf::Pbkdf2(pbkdf2) => self.iterations(pbkdf2.iteration_count),
            pbes2::Kdf::Scrypt(scrypt) => self.scrypt(
                scrypt.cost_parameter,
                scrypt.block_size,
                scrypt.parallelization,
            ),
            // A derivation this module cannot weigh does not run.
            other => Err(invalid(format!(
                "key derivation {} is not supported",
                other.oid()
            ))),
        }
    }

    fn scrypt(&mut self, n: u64, r: u16, p: u16) -> Result<(), Error> {
        if p > MAX_SCRYPT_PARALLELISM {
            return Err(invalid(format!(
                "scrypt parallelization p = {p} is over the limit of {MAX_SCRYPT_PARALLELISM}"
            )));
        }
        // In u128 nothing here can overflow: n < 2^64, r and p < 2^16.
        let memory = 128 * u128::from(r) * (u128::from(n) + u128::from(p));
        if memory > u128::from(MAX_SCRYPT_MEMORY) {
            return Err(invalid(format!(
                "scrypt with N = {n}, r = {r}, p = {p} needs {memory} bytes of memory, over the \
                 limit of {MAX_SCRYPT_MEMORY}"
            )));
        }
        // Under the memory limit, n·r < 2^19 and p ≤ 16: the product fits, and is under
        // MAX_WORK (asserted at compile time above).
        self.spend(n * u64::from(r) * u64::from(p))
    }

    fn spend(&mut self, work: u64) -> Result<(), Error> {
        self.left = self.left.checked_sub(work).ok_or_else(|| {
            invalid(format!(
                "the key derivations of this input cost over {} iterations in all",
                self.total
            ))
        })?;
        Ok(())
    }
}

/// Decrypts PBES2 content (RFC 8018) after counting its derivation against `budget`, the
/// password as UTF-8 as OpenSSL passes it. `None` when the padding is wrong: a wrong password,
/// most likely.
///
/// # Errors
/// [`Error::Invalid`] for parameters over a limit or that the cipher cannot use.
pub(crate) fn pbes2_decrypt(
    budget: &mut KdfBudget,
    params: &pbes2::Parameters,
    password: &str,
    ciphertext: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    budget.pbes2(params)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    match params.decrypt_in_place(password, &mut buffer) {
        Ok(plain) => {
            let len = plain.len();
            buffer.truncate(len);
            Ok(Some(buffer))
        }
        // pkcs5 reports bad padding as EncryptFailed, even when decrypting.
        Err(pkcs5::Error::EncryptFailed) => Ok(None),
        Err(e) => Err(invalid(format!("unusable PBES2 parameters: {e}"))),
    }
}

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Runs `work` on another thread and fails the test if it has not finished within a minute:
    /// what a refused derivation must never reach.
    pub(crate) fn within_a_minute<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || sender.send(work()));
        receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("did not finish within a minute")
    }

    #[test]
    fn one_derivation_is_limited_by_iterations_and_scrypt_cost() {
        type Check = fn(&mut KdfBudget) -> Result<(), Error>;
        let cases: [(&str, Check); 5] = [
            (
                "iteration count 4294967295 is over the limit of 10000000",
                |b| b.iterations(u32::MAX),
            ),
            ("iteration count 0 is not a positive number", |b| {
                b.iterations(0)
            }),
            ("iteration count -1 is not a positive number", |b| {
                b.iterations(-1)
            }),
            (
                "scrypt parallelization p = 17 is over the limit of 16",
                |b| b.scrypt(16_384, 8, 17),
            ),
            (
                "scrypt with N = 1048576, r = 65535, p = 1 needs 8795967192960 bytes of memory, \
                 over the limit of 67108864",
                |b| b.scrypt(1 << 20, u16::MAX, 1),
            ),
        ];
        for (expected, check) in cases {
            let err = check(&mut KdfBudget::for_key()).unwrap_err().to_string();
            assert_eq!(err, expected);
        }
        // Near 64 MiB of scrypt at 16 lanes, and the `openssl pkcs8 -scrypt` default.
        KdfBudget::for_key().scrypt(1 << 16, 7, 16).unwrap();
        KdfBudget::for_key().scrypt(16_384, 8, 1).unwrap();
        let err = KdfBudget::for_key()
            .scrypt(u64::MAX, 1, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("over the limit of 67108864"), "{err}");
    }

    #[test]
    fn a_file_is_limited_in_all() {
        let mut budget = KdfBudget::for_file();
        for _ in 0..3 {
            budget.iterations(MAX_WORK).unwrap();
        }
        let err = budget.scrypt(2, 1, 1).unwrap_err().to_string();
        assert_eq!(
            err,
            "the key derivations of this input cost over 30000000 iterations in all"
        );
        let mut budget = KdfBudget::for_key();
        budget.iterations(MAX_WORK).unwrap();
        assert!(budget.iterations(1).is_err());
    }
}
