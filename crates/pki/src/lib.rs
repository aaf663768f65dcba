//! Pure X.509 work for certmint: no I/O, no database, no async. Randomness and time come in as
//! arguments, so every function here is deterministic given its inputs (apart from key
//! generation, which draws from the operating system's CSPRNG through aws-lc-rs).

pub mod acme;
pub mod bundle;
pub mod cert;
pub mod crl;
pub mod csr;
pub mod device;
mod error;
pub mod est;
pub mod inspect;
pub mod jose;
pub mod kdf;
pub mod keys;
pub mod lint;
pub mod name;
pub mod ocsp;
mod oid;
pub mod pem;
mod pkcs12;
pub mod random;
pub mod scep;
mod tls;

pub use cert::{CaSigner, CertSpec, ExtendedKeyUsage, Issuer, KeyUsage, Signer};
pub use error::Error;
pub use keys::{KeyType, PrivateKey};
pub use name::{DistinguishedName, NameAttribute, SubjectAltName};
pub use tls::{TlsIdentity, self_signed_tls};
