//! Responses kept in memory, by serial, with a hard cap: anyone can ask about 2^128 serials,
//! so nothing the responder keeps per request may grow with what is asked.
//!
//! Two generations: new entries go into the current one; when it holds half the cap, it
//! becomes the previous one and the one before is dropped. An entry therefore lives for at
//! least half the cap's insertions after it was kept, lookups and evictions stay O(1), and
//! the cache never holds more than the cap.

use std::collections::HashMap;
use std::mem;
use std::sync::Arc;

use pki::ocsp::CertId;

use super::Entry;

/// The most CertID forms kept for one serial: SHA-1 and SHA-256, with NULL or absent
/// parameters; `pki` refuses any other parameters, so this only guards against a change there.
const MAX_FORMS: usize = 4;

/// Responses by serial, at most a cap of serials.
#[derive(Default)]
pub(super) struct Bounded {
    current: HashMap<Vec<u8>, Vec<Arc<Entry>>>,
    previous: HashMap<Vec<u8>, Vec<Arc<Entry>>>,
    cap: usize,
}

impl Bounded {
    /// An empty cache that keeps at most `cap` serials (nothing at all for 0).
    pub(super) fn new(cap: usize) -> Self {
        Self {
            current: HashMap::new(),
            previous: HashMap::new(),
            cap,
        }
    }

    /// The response kept for `cert_id`, if any.
    pub(super) fn get(&self, cert_id: &CertId) -> Option<Arc<Entry>> {
        let serial = cert_id.serial();
        self.current
            .get(serial)
            .or_else(|| self.previous.get(serial))?
            .iter()
            .find(|e| e.cert_id == *cert_id)
            .cloned()
    }

    /// Keeps `entry`, in place of any for the same CertID.
    pub(super) fn insert(&mut self, entry: Entry) {
        if self.cap == 0 {
            return;
        }
        let serial = entry.cert_id.serial().to_vec();
        let mut forms = match self.current.remove(&serial) {
            Some(forms) => forms,
            None => {
                // A generation holds half the cap, so both together hold at most the cap.
                if self.current.len() >= self.cap.div_ceil(2) {
                    self.previous = mem::take(&mut self.current);
                }
                self.previous.remove(&serial).unwrap_or_default()
            }
        };
        forms.retain(|e| e.cert_id != entry.cert_id);
        if forms.len() >= MAX_FORMS {
            forms.remove(0);
        }
        forms.push(Arc::new(entry));
        self.current.insert(serial, forms);
    }

    /// Forgets the responses for `serial` that `keep` does not keep.
    pub(super) fn remove_unless(&mut self, serial: &[u8], keep: impl Fn(&Entry) -> bool) {
        for generation in [&mut self.current, &mut self.previous] {
            if let Some(forms) = generation.get_mut(serial) {
                forms.retain(|e| keep(e));
                if forms.is_empty() {
                    generation.remove(serial);
                }
            }
        }
    }

    /// Forgets every response for `serial`.
    pub(super) fn remove(&mut self, serial: &[u8]) {
        self.remove_unless(serial, |_| false);
    }

    /// How many responses are kept.
    pub(super) fn len(&self) -> usize {
        self.current
            .values()
            .chain(self.previous.values())
            .map(Vec::len)
            .sum()
    }

    /// How many serials are kept: what the cap bounds.
    pub(super) fn serials(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use pki::ocsp::{CertStatus, HashAlgorithm, IssuerKeyHashes};
    use time::OffsetDateTime;

    use crate::ocsp::OcspAnswer;

    fn hashes() -> IssuerKeyHashes {
        let key = pki::PrivateKey::generate(pki::KeyType::EcP256).expect("key");
        let mut subject = pki::DistinguishedName::new();
        subject
            .set(pki::NameAttribute::CommonName, "cache test CA")
            .expect("name");
        let now = OffsetDateTime::now_utc();
        let spec = pki::CertSpec {
            ca: Some(None),
            ..pki::CertSpec::new(
                subject,
                key.public_key_der(),
                pki::random::serial().expect("serial"),
                now,
                now + time::Duration::days(1),
            )
        };
        let der = pki::cert::build(
            &spec,
            pki::cert::Issuer::SelfSigned(&key),
            &pki::lint::Policy::default(),
        )
        .expect("certificate")
        .der;
        IssuerKeyHashes::new(&pki::inspect::Certificate::parse(&der).expect("parse"))
            .expect("hashes")
    }

    fn entry(hashes: &IssuerKeyHashes, serial: u32, algorithm: HashAlgorithm) -> Entry {
        let serial = [&[0x01][..], &serial.to_be_bytes()].concat();
        Entry {
            cert_id: CertId::for_certificate(hashes, &serial, algorithm).expect("CertID"),
            answer: OcspAnswer {
                der: Bytes::from_static(b"response"),
                cache: None,
            },
            refresh_at: OffsetDateTime::now_utc(),
            status: CertStatus::Unknown,
            signer: String::new(),
        }
    }

    #[test]
    fn the_cache_stays_at_its_cap_and_keeps_the_latest() {
        let hashes = hashes();
        let mut cache = Bounded::new(10);
        for serial in 0..1_000 {
            cache.insert(entry(&hashes, serial, HashAlgorithm::Sha1));
            assert!(cache.serials() <= 10, "{} after {serial}", cache.serials());
        }
        assert!(cache.serials() >= 5);
        for recent in 995..1_000 {
            let id = entry(&hashes, recent, HashAlgorithm::Sha1).cert_id;
            assert!(cache.get(&id).is_some(), "{recent} was dropped");
        }
        let old = entry(&hashes, 0, HashAlgorithm::Sha1).cert_id;
        assert!(cache.get(&old).is_none());

        // Forms of one serial are kept side by side, and forgotten together.
        let sha256 = entry(&hashes, 999, HashAlgorithm::Sha256);
        let id = sha256.cert_id.clone();
        cache.insert(sha256);
        assert!(cache.get(&id).is_some());
        assert!(
            cache
                .get(&entry(&hashes, 999, HashAlgorithm::Sha1).cert_id)
                .is_some()
        );
        let before = cache.len();
        cache.remove(id.serial());
        assert_eq!(cache.len(), before - 2);
        assert!(cache.get(&id).is_none());

        // Only the forms `keep` refuses are forgotten.
        let mut good = entry(&hashes, 7, HashAlgorithm::Sha256);
        good.status = CertStatus::Good;
        let good_id = good.cert_id.clone();
        cache.insert(good);
        let unknown_id = entry(&hashes, 7, HashAlgorithm::Sha1).cert_id;
        cache.insert(entry(&hashes, 7, HashAlgorithm::Sha1));
        cache.remove_unless(good_id.serial(), |e| e.status == CertStatus::Good);
        assert!(cache.get(&good_id).is_some());
        assert!(cache.get(&unknown_id).is_none());

        let mut none = Bounded::new(0);
        none.insert(entry(&hashes, 1, HashAlgorithm::Sha1));
        assert_eq!(none.len(), 0);
    }
}
