//! The one module that holds CA keys. It opens stored keys ([`keys`]), keeps issuing CAs and
//! their opened keys ([`signers`]), and signs with them only after the linter has passed what
//! is about to be signed ([`signing`]): leaves, intermediates, CRLs and OCSP responders. The
//! HTTPS listener's certificate is made, replaced and shared between nodes here too
//! ([`listener`]), and recorded whichever way it was made. Nothing outside this module can
//! open a stored key: the functions that do are private to it.

mod admin;
mod keys;
mod listener;
mod signers;
mod signing;

pub use admin::{CaKind, KeyLocation, NewCaInput, Pointers};
pub(crate) use admin::{built_fields, cert_fields, free_ca_name};
pub(crate) use keys::key_context;
pub(crate) use listener::SEALED_SHARED_LISTENER_KEY;
pub use listener::{
    LISTENER_KEY_CONTEXT, ListenerIdentity, ListenerInfo, ListenerRequest, ListenerSource,
};
pub(crate) use signers::Issuers;
pub(crate) use signing::{SignAs, warnings_note};
