//! Round trips through both sides, and requests that must be refused or not read at all.

use std::sync::{Arc, OnceLock};

use cms::content_info::ContentInfo;
use cms::enveloped_data::{EnvelopedData, RecipientInfo};
use cms::signed_data::SignedData;
use const_oid::db::rfc5911::RC_2_CBC;
use der::{Decode, Encode};
use time::OffsetDateTime;
use time::macros::datetime;

use super::attributes::Outgoing;
use super::client::{self, Message, Outcome, RaCertificate, Requester, Sent};
use super::*;
use crate::cert::{self, CaSigner};
use crate::crl::{self, CrlSpec};
use crate::lint::Policy;
use crate::{CertSpec, DistinguishedName, Issuer, KeyType, NameAttribute, PrivateKey};

const NOW: OffsetDateTime = datetime!(2026-01-15 12:00 UTC);

struct Fixture {
    /// The CA, whose certificate and key are also the RA's.
    ca: CaSigner,
    ra: Ra,
    ra_cert: RaCertificate,
    /// Another RA: requests for it are not for `ra`.
    other_ra: RaCertificate,
    requester: Requester,
    /// A certificate the CA issued to the requester's key.
    issued: Vec<u8>,
    crl: Vec<u8>,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::CommonName, cn).unwrap();
    dn
}

fn rsa() -> PrivateKey {
    PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca_key = Arc::new(rsa());
        let mut spec = CertSpec::new(
            name("SCEP Test CA"),
            ca_key.public_key_der(),
            crate::random::serial().unwrap(),
            NOW - time::Duration::days(1),
            NOW + time::Duration::days(365),
        );
        spec.ca = Some(None);
        let ca_cert = cert::build(
            &spec,
            Issuer::SelfSigned(ca_key.as_ref()),
            &Policy::default(),
        )
        .unwrap()
        .der;
        let ca = CaSigner::new(&ca_cert, ca_key.clone()).unwrap();
        let ra = Ra::new(&ca_cert, &ca_key).unwrap();

        let requester_key = rsa();
        let transient =
            client::transient_certificate(&requester_key, &name("device-1"), NOW).unwrap();
        let requester = Requester::new(&transient, &requester_key).unwrap();
        let issued = cert::build(
            &CertSpec::new(
                name("device-1"),
                requester_key.public_key_der(),
                crate::random::serial().unwrap(),
                NOW,
                NOW + time::Duration::days(90),
            ),
            Issuer::Ca(&ca),
            &Policy::default(),
        )
        .unwrap()
        .der;
        let crl = crl::build(
            &CrlSpec {
                number: 1,
                this_update: NOW,
                next_update: NOW + time::Duration::days(7),
                delta_of: None,
                freshest_crl_urls: Vec::new(),
            },
            [],
            &ca,
            &Policy::default(),
        )
        .unwrap();

        let other_key = rsa();
        let other = client::transient_certificate(&other_key, &name("Other RA"), NOW).unwrap();
        Fixture {
            ra_cert: RaCertificate::new(ra.certificate()).unwrap(),
            other_ra: RaCertificate::new(&other).unwrap(),
            ca,
            ra,
            requester,
            issued,
            crl,
        }
    })
}

fn ca_name(f: &Fixture) -> Vec<u8> {
    f.ca.info().subject_raw.clone()
}

/// What a request of `message_type` carries.
fn content_for(f: &Fixture, message_type: MessageType) -> RequestContent {
    let key = rsa_for_csr();
    match message_type {
        MessageType::PkcsReq | MessageType::RenewalReq => RequestContent::Csr(
            client::csr(key, &name("device-1"), Some("s3cret challenge")).unwrap(),
        ),
        MessageType::CertPoll => RequestContent::IssuerAndSubject {
            issuer: ca_name(f),
            subject: name_der("device-1"),
        },
        MessageType::GetCert | MessageType::GetCrl => RequestContent::IssuerAndSerial {
            issuer: ca_name(f),
            serial: hex::decode(&f.ca.info().serial).unwrap(),
        },
        MessageType::CertRep => unreachable!("not a request"),
    }
}

fn rsa_for_csr() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(rsa)
}

fn name_der(cn: &str) -> Vec<u8> {
    use std::str::FromStr;
    x509_cert::name::Name::from_str(&format!("CN={cn}"))
        .unwrap()
        .to_der()
        .unwrap()
}

fn client_cert_for(key: &PrivateKey, cn: &str) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = name(cn).to_rcgen().unwrap();
    params.self_signed(key.rcgen()).unwrap().der().to_vec()
}

fn send(
    f: &Fixture,
    to: &RaCertificate,
    message_type: MessageType,
    digest: Digest,
    cipher: ContentCipher,
) -> (Sent, RequestContent) {
    let content = content_for(f, message_type);
    let sent = client::request(
        &f.requester,
        to,
        &Message {
            message_type,
            transaction_id: "0123456789ABCDEF-txn",
            content: &content,
            digest,
            cipher,
        },
    )
    .unwrap();
    (sent, content)
}

fn refused(result: Result<Request, ScepError>) -> (ReplyTo, FailInfo, String) {
    match result {
        Err(ScepError::Refused {
            reply_to,
            fail_info,
            reason,
        }) => (*reply_to, fail_info, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn malformed(result: Result<Request, ScepError>) -> String {
    match result {
        Err(ScepError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// The reply to a refusal reads back as that FAILURE.
fn assert_failure_reply(f: &Fixture, sent: &Sent, reply_to: &ReplyTo, fail_info: FailInfo) {
    let reply = cert_rep(&f.ra, reply_to, &Reply::Failure(fail_info)).unwrap();
    let read = client::read_cert_rep(&reply, &f.requester, &f.ra_cert, sent).unwrap();
    assert_eq!(read.outcome, Outcome::Failure(fail_info));
}

const REQUESTS: [MessageType; 5] = [
    MessageType::PkcsReq,
    MessageType::RenewalReq,
    MessageType::CertPoll,
    MessageType::GetCert,
    MessageType::GetCrl,
];

#[test]
fn every_request_type_cipher_and_digest_round_trips() {
    let f = fixture();
    for message_type in REQUESTS {
        for cipher in ContentCipher::ALL {
            for digest in [Digest::Sha256, Digest::Sha512] {
                let case = format!(
                    "{} {} {}",
                    message_type.name(),
                    cipher.name(),
                    digest.name()
                );
                let (sent, content) = send(f, &f.ra_cert, message_type, digest, cipher);
                let request =
                    read_request(&sent.der, &f.ra).unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(request.message_type, message_type, "{case}");
                assert_eq!(request.content, content, "{case}");
                assert_eq!(
                    request.reply_to,
                    ReplyTo {
                        transaction_id: sent.transaction_id.clone(),
                        sender_nonce: sent.sender_nonce.clone(),
                        digest,
                        cipher,
                        signer_cert: f.requester.certificate().to_vec(),
                    },
                    "{case}"
                );

                let certificates = [f.issued.as_slice(), f.ca.info().der.as_slice()];
                let reply = if message_type == MessageType::GetCrl {
                    Reply::Crl(&f.crl)
                } else {
                    Reply::Success {
                        certificates: &certificates,
                    }
                };
                let der = cert_rep(&f.ra, &request.reply_to, &reply).unwrap();
                let rep = client::read_cert_rep(&der, &f.requester, &f.ra_cert, &sent)
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(rep.digest, digest, "{case}");
                assert_eq!(rep.sender_nonce.len(), 16);
                assert_ne!(rep.sender_nonce, sent.sender_nonce);
                let Outcome::Success {
                    certificates: got,
                    crls,
                    cipher: used,
                } = rep.outcome
                else {
                    panic!("{case}: {:?}", rep.outcome);
                };
                assert_eq!(used, cipher, "{case}: the reply uses the request's cipher");
                if message_type == MessageType::GetCrl {
                    assert!(got.is_empty(), "{case}");
                    assert_eq!(crls, std::slice::from_ref(&f.crl), "{case}");
                } else {
                    assert_eq!(got, certificates, "{case}: in the order given");
                    assert!(crls.is_empty(), "{case}");
                }
            }
        }
    }
}

#[test]
fn issued_certificates_keep_the_order_given() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::PkcsReq,
        Digest::Sha256,
        ContentCipher::Aes256Cbc,
    );
    let request = read_request(&sent.der, &f.ra).unwrap();
    let ca = f.ca.info().der.as_slice();
    for order in [[f.issued.as_slice(), ca], [ca, f.issued.as_slice()]] {
        let reply = cert_rep(
            &f.ra,
            &request.reply_to,
            &Reply::Success {
                certificates: &order,
            },
        )
        .unwrap();
        let rep = client::read_cert_rep(&reply, &f.requester, &f.ra_cert, &sent).unwrap();
        let Outcome::Success { certificates, .. } = rep.outcome else {
            panic!("{:?}", rep.outcome);
        };
        assert_eq!(certificates, order);
    }
    let err = cert_rep(
        &f.ra,
        &request.reply_to,
        &Reply::Success { certificates: &[] },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("at least the issued certificate"),
        "{err}"
    );
}

#[test]
fn pending_and_failure_replies_carry_no_content() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::PkcsReq,
        Digest::Sha256,
        ContentCipher::Aes128Cbc,
    );
    let request = read_request(&sent.der, &f.ra).unwrap();
    let pending = cert_rep(&f.ra, &request.reply_to, &Reply::Pending).unwrap();
    let rep = client::read_cert_rep(&pending, &f.requester, &f.ra_cert, &sent).unwrap();
    assert_eq!(rep.outcome, Outcome::Pending);
    for fail_info in FailInfo::ALL {
        let der = cert_rep(&f.ra, &request.reply_to, &Reply::Failure(fail_info)).unwrap();
        let message = signed::read(&der).unwrap();
        assert_eq!(message.content, None);
        let rep = client::read_cert_rep(&der, &f.requester, &f.ra_cert, &sent).unwrap();
        assert_eq!(rep.outcome, Outcome::Failure(fail_info));
    }
}

#[test]
fn a_reply_to_another_transaction_or_nonce_is_not_read() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::GetCert,
        Digest::Sha256,
        ContentCipher::Aes256Cbc,
    );
    let request = read_request(&sent.der, &f.ra).unwrap();
    let reply = cert_rep(&f.ra, &request.reply_to, &Reply::Pending).unwrap();
    let other_nonce = Sent {
        sender_nonce: vec![0; 16],
        ..sent.clone()
    };
    let err = client::read_cert_rep(&reply, &f.requester, &f.ra_cert, &other_nonce).unwrap_err();
    assert!(err.to_string().contains("recipientNonce"), "{err}");
    let other_transaction = Sent {
        transaction_id: "another".into(),
        ..sent.clone()
    };
    let err =
        client::read_cert_rep(&reply, &f.requester, &f.ra_cert, &other_transaction).unwrap_err();
    assert!(err.to_string().contains("transactionID"), "{err}");
    let err = client::read_cert_rep(&reply, &f.requester, &f.other_ra, &sent).unwrap_err();
    assert!(err.to_string().contains("not signed by the RA"), "{err}");
}

#[test]
fn a_request_for_another_ra_is_refused_with_bad_message_check() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.other_ra,
        MessageType::PkcsReq,
        Digest::Sha256,
        ContentCipher::DesCbc,
    );
    let (reply_to, fail_info, reason) = refused(read_request(&sent.der, &f.ra));
    assert_eq!(fail_info, FailInfo::BadMessageCheck);
    assert!(reason.contains("not encrypted to the RA"), "{reason}");
    assert_eq!(reply_to.cipher, ContentCipher::DesCbc);
    assert_eq!(reply_to.signer_cert, f.requester.certificate());
    assert_failure_reply(f, &sent, &reply_to, fail_info);
}

/// The request's SignedData, decoded by the cms crate, changed by `edit`, encoded again.
fn edited(der: &[u8], edit: impl FnOnce(&mut SignedData)) -> Vec<u8> {
    let mut info = ContentInfo::from_der(der).unwrap();
    let mut signed: SignedData = info.content.decode_as().unwrap();
    edit(&mut signed);
    info.content = der::Any::encode_from(&signed).unwrap();
    info.to_der().unwrap()
}

#[test]
fn a_tampered_signature_or_content_is_refused_with_bad_message_check() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::PkcsReq,
        Digest::Sha512,
        ContentCipher::Aes256Cbc,
    );
    let bad_signature = edited(&sent.der, |signed| {
        let mut signers = signed.signer_infos.0.clone().into_vec();
        let mut signature = signers[0].signature.as_bytes().to_vec();
        *signature.last_mut().unwrap() ^= 1;
        signers[0].signature = der::asn1::OctetString::new(signature).unwrap();
        signed.signer_infos.0 = signers.try_into().unwrap();
    });
    let (reply_to, fail_info, reason) = refused(read_request(&bad_signature, &f.ra));
    assert_eq!(fail_info, FailInfo::BadMessageCheck);
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(reply_to.transaction_id, sent.transaction_id);
    assert_failure_reply(f, &sent, &reply_to, fail_info);

    let bad_content = edited(&sent.der, |signed| {
        let content = signed.encap_content_info.econtent.as_ref().unwrap();
        let mut bytes = content.value().to_vec();
        *bytes.last_mut().unwrap() ^= 1;
        signed.encap_content_info.econtent =
            Some(der::Any::new(der::Tag::OctetString, bytes).unwrap());
    });
    let (_, fail_info, reason) = refused(read_request(&bad_content, &f.ra));
    assert_eq!(fail_info, FailInfo::BadMessageCheck);
    assert!(reason.contains("messageDigest"), "{reason}");
}

#[test]
fn garbage_is_malformed() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::GetCrl,
        Digest::Sha256,
        ContentCipher::Aes128Cbc,
    );
    for (input, expected) in [
        (&b""[..], "not a CMS message"),
        (b"hello world", "not a CMS message"),
        (&f.issued, "not a CMS message"),
        (&f.crl, "not a CMS message"),
        (&sent.der[..sent.der.len() - 1], "not a CMS message"),
    ] {
        let reason = malformed(read_request(input, &f.ra));
        assert!(reason.contains(expected), "{reason}");
    }
    let degenerate = crate::bundle::pkcs7_certs_only(&[&f.issued]).unwrap();
    let reason = malformed(read_request(&degenerate, &f.ra));
    assert!(reason.contains("no signer"), "{reason}");
}

/// Signs `envelope` as a request of `message_type` from the fixture's requester.
fn signed_request(f: &Fixture, message_type: MessageType, envelope: &[u8]) -> Vec<u8> {
    signed::sign(
        &f.requester.party,
        Digest::Sha256,
        &Outgoing {
            message_type,
            transaction_id: "crafted",
            sender_nonce: &[7; 16],
            recipient_nonce: None,
            pki_status: None,
            fail_info: None,
        },
        Some(envelope),
    )
    .unwrap()
}

fn envelope_for_ra(f: &Fixture, content: &[u8], cipher: ContentCipher) -> Vec<u8> {
    let ra = party::Certificate::parse(f.ra.certificate()).unwrap();
    envelope::encrypt(content, &ra, cipher).unwrap()
}

/// The envelope, decoded by the cms crate, changed by `edit`, encoded again.
fn edited_envelope(der: &[u8], edit: impl FnOnce(&mut EnvelopedData)) -> Vec<u8> {
    let mut info = ContentInfo::from_der(der).unwrap();
    let mut enveloped: EnvelopedData = info.content.decode_as().unwrap();
    edit(&mut enveloped);
    info.content = der::Any::encode_from(&enveloped).unwrap();
    info.to_der().unwrap()
}

/// Go's pkcs7 package (micromdm's scepclient) writes the encrypted content as a constructed
/// `[0]` around OCTET STRING segments, as BER allows: the segments are joined and read.
#[test]
fn an_encrypted_content_in_constructed_segments_is_read() {
    use const_oid::db::rfc5911::ID_ENVELOPED_DATA;
    use der::asn1::OctetStringRef;
    use der::{Tag, TagNumber};
    let f = fixture();
    let RequestContent::Csr(csr) = content_for(f, MessageType::PkcsReq) else {
        unreachable!("a PKCSReq carries a CSR")
    };
    let plain = ContentInfo::from_der(&envelope_for_ra(f, &csr, ContentCipher::Aes128Cbc)).unwrap();
    let enveloped: EnvelopedData = plain.content.decode_as().unwrap();
    let info = &enveloped.encrypted_content;
    let octets = info.encrypted_content.as_ref().unwrap().as_bytes();
    let (first, second) = octets.split_at(octets.len() / 2);
    let segment = |part: &[u8]| OctetStringRef::new(part).unwrap().to_der().unwrap();
    let context = |n| Tag::ContextSpecific {
        constructed: true,
        number: n,
    };
    let constructed = tlv(
        context(TagNumber::N0),
        &[segment(first), segment(second)].concat(),
    )
    .unwrap();
    let info_der = tlv(
        Tag::Sequence,
        &[
            info.content_type.to_der().unwrap(),
            info.content_enc_alg.to_der().unwrap(),
            constructed,
        ]
        .concat(),
    )
    .unwrap();
    let enveloped_der = tlv(
        Tag::Sequence,
        &[
            enveloped.version.to_der().unwrap(),
            enveloped.recip_infos.to_der().unwrap(),
            info_der,
        ]
        .concat(),
    )
    .unwrap();
    let segmented = tlv(
        Tag::Sequence,
        &[
            ID_ENVELOPED_DATA.to_der().unwrap(),
            tlv(context(TagNumber::N0), &enveloped_der).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let request = signed_request(f, MessageType::PkcsReq, &segmented);
    let read = read_request(&request, &f.ra).unwrap();
    assert_eq!(read.content, RequestContent::Csr(csr));
    assert_eq!(read.reply_to.cipher, ContentCipher::Aes128Cbc);
}

#[test]
fn an_unsupported_cipher_is_refused_with_bad_alg() {
    let f = fixture();
    let envelope = edited_envelope(
        &envelope_for_ra(f, b"content", ContentCipher::DesEde3Cbc),
        |e| e.encrypted_content.content_enc_alg.oid = RC_2_CBC,
    );
    let request = signed_request(f, MessageType::PkcsReq, &envelope);
    let (reply_to, fail_info, reason) = refused(read_request(&request, &f.ra));
    assert_eq!(fail_info, FailInfo::BadAlg);
    assert!(reason.contains("RC2-CBC"), "{reason}");
    assert_eq!(reply_to.transaction_id, "crafted");
    assert_eq!(reply_to.sender_nonce, [7; 16]);
}

#[test]
fn a_wrong_content_key_looks_like_wrong_content() {
    let f = fixture();
    let good = envelope_for_ra(f, b"content", ContentCipher::Aes128Cbc);
    let wrong_key = edited_envelope(&good, |e| {
        let mut infos = e.recip_infos.0.clone().into_vec();
        let RecipientInfo::Ktri(ktri) = &mut infos[0] else {
            panic!("not a KeyTransRecipientInfo");
        };
        let mut key = ktri.enc_key.as_bytes().to_vec();
        key[100] ^= 0x40;
        ktri.enc_key = der::asn1::OctetString::new(key).unwrap();
        e.recip_infos.0 = infos.try_into().unwrap();
    });
    let wrong_content = edited_envelope(&good, |e| {
        let content = e.encrypted_content.encrypted_content.as_mut().unwrap();
        let mut bytes = content.as_bytes().to_vec();
        *bytes.last_mut().unwrap() ^= 0x40;
        *content = der::asn1::OctetString::new(bytes).unwrap();
    });
    let mut reasons = Vec::new();
    for envelope in [wrong_key, wrong_content] {
        let request = signed_request(f, MessageType::PkcsReq, &envelope);
        let (_, fail_info, reason) = refused(read_request(&request, &f.ra));
        assert_eq!(fail_info, FailInfo::BadMessageCheck);
        reasons.push(reason);
    }
    assert_eq!(reasons[0], reasons[1]);
}

#[test]
fn content_that_does_not_fit_the_type_is_refused_with_bad_request() {
    let f = fixture();
    for message_type in REQUESTS {
        let request = signed_request(
            f,
            message_type,
            &envelope_for_ra(f, b"\x30\x03\x02\x01\x01", ContentCipher::Aes256Cbc),
        );
        let (_, fail_info, reason) = refused(read_request(&request, &f.ra));
        assert_eq!(fail_info, FailInfo::BadRequest, "{reason}");
        assert!(reason.contains(message_type.name()), "{reason}");
    }
    let cert_rep = signed_request(
        f,
        MessageType::CertRep,
        &envelope_for_ra(f, b"", ContentCipher::Aes256Cbc),
    );
    let (_, fail_info, reason) = refused(read_request(&cert_rep, &f.ra));
    assert_eq!(fail_info, FailInfo::BadRequest);
    assert!(reason.contains("messageType 3"), "{reason}");
}

#[test]
fn certificate_counts_are_bounded() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::GetCert,
        Digest::Sha256,
        ContentCipher::Aes256Cbc,
    );
    let with_extra = |extra: usize| {
        edited(&sent.der, |signed| {
            let set = &mut signed.certificates.as_mut().unwrap().0;
            for i in 0..extra {
                let key = PrivateKey::generate(KeyType::EcP256).unwrap();
                let cert = client_cert_for(&key, &format!("extra {i}"));
                set.insert(cms::cert::CertificateChoices::Certificate(
                    x509_cert::Certificate::from_der(&cert).unwrap(),
                ))
                .unwrap();
            }
        })
    };
    let ten = with_extra(MAX_CERTIFICATES - 1);
    assert!(read_request(&ten, &f.ra).is_ok());
    let eleven = with_extra(MAX_CERTIFICATES);
    let reason = malformed(read_request(&eleven, &f.ra));
    assert!(reason.contains("more than 10 certificates"), "{reason}");
}

#[test]
fn a_signer_that_is_not_rsa_is_refused_with_bad_alg() {
    let f = fixture();
    let (sent, _) = send(
        f,
        &f.ra_cert,
        MessageType::PkcsReq,
        Digest::Sha256,
        ContentCipher::Aes256Cbc,
    );
    let message = signed::read(&sent.der).unwrap();
    let ec = client_cert_for(&PrivateKey::generate(KeyType::EcP256).unwrap(), "ec");
    let refusal = message
        .signer
        .unwrap()
        .verify(&party::Certificate::parse(&ec).unwrap())
        .unwrap_err();
    assert_eq!(refusal.fail_info, FailInfo::BadAlg);
}

#[test]
fn only_rsa_keys_that_match_make_an_ra() {
    let f = fixture();
    let ec = PrivateKey::generate(KeyType::EcP256).unwrap();
    let err = Ra::new(&client_cert_for(&ec, "ec"), &ec).unwrap_err();
    assert!(err.to_string().contains("use an RSA key"), "{err}");
    let err = Ra::new(f.ra.certificate(), rsa_for_csr()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    let err = Ra::new(f.ra.certificate(), &ec).unwrap_err();
    assert!(err.to_string().contains("use an RSA key"), "{err}");
}

#[test]
fn ra_and_requester_are_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Ra>();
    send_sync::<Requester>();
    send_sync::<RaCertificate>();
}

#[test]
fn ca_caps_name_what_is_supported() {
    let caps: Vec<&str> = CA_CAPS.lines().collect();
    for cap in [
        "AES",
        "DES3",
        "POSTPKIOperation",
        "Renewal",
        "SCEPStandard",
        "SHA-256",
        "SHA-512",
    ] {
        assert!(caps.contains(&cap), "{cap}");
    }
    assert!(!caps.contains(&"SHA-1"));
}

#[test]
fn codes_round_trip() {
    for t in REQUESTS.into_iter().chain([MessageType::CertRep]) {
        assert_eq!(MessageType::from_code(t.code()), Some(t));
    }
    for f in FailInfo::ALL {
        assert_eq!(FailInfo::from_code(f.code()), Some(f));
    }
    assert_eq!(MessageType::from_code("18"), None);
    assert_eq!(FailInfo::BadCertId.to_string(), "badCertId");
}
