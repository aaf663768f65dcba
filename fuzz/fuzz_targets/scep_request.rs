//! `scep::read_request`: every pkiMessage POSTed (or sent by GET) to the SCEP door, from anyone,
//! read by a fixed RA (`fixtures/scep-ra.pem`) so that the corpus's requests decrypt. Whatever
//! is read, or refused, must be answerable.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pki::scep::{self, MessageType, Ra, Reply, ScepError};

fn ra() -> &'static Ra {
    static RA: OnceLock<Ra> = OnceLock::new();
    RA.get_or_init(|| {
        let fixture = pki::bundle::read(include_bytes!("../fixtures/scep-ra.pem"), None)
            .expect("the fixture holds the RA's certificate and key");
        Ra::new(&fixture.certificates[0], &fixture.private_keys[0])
            .expect("the fixture is a usable RA")
    })
}

fuzz_target!(|data: &[u8]| {
    let ra = ra();
    match scep::read_request(data, ra) {
        Ok(request) => {
            assert_ne!(request.message_type, MessageType::CertRep);
            let certificates = [ra.certificate()];
            scep::cert_rep(
                ra,
                &request.reply_to,
                &Reply::Success {
                    certificates: &certificates,
                },
            )
            .expect("a request read is answerable");
        }
        Err(ScepError::Refused {
            reply_to,
            fail_info,
            ..
        }) => {
            scep::cert_rep(ra, &reply_to, &Reply::Failure(fail_info))
                .expect("a request refused is answerable");
        }
        Err(ScepError::Malformed(_)) => {}
    }
});
