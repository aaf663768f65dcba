/// What can go wrong building or reading PKI objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input breaks a rule (a bad name, an empty list, …).
    #[error("{0}")]
    Invalid(String),
    /// Key generation or signing failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}
