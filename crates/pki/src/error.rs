/// What can go wrong building or reading PKI objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input breaks a rule (a bad name, an empty list, …).
    #[error("{0}")]
    Invalid(String),
    /// The linter found errors in what was about to be signed, so nothing was signed.
    #[error("refused before signing: {0}")]
    Lint(crate::lint::Report),
    /// The key's device (an HSM) cannot sign now; it may later.
    #[error("{0}")]
    Unavailable(String),
    /// Key generation or signing failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}
