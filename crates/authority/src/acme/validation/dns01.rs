//! dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>` holding the base64url
//! SHA-256 digest of the key authorization.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hickory_resolver::proto::rr::RData;
use sha2::{Digest, Sha256};

use super::{Failure, Validator, dns_error, excerpt, normalise_name, not_for_ip};
use crate::acme::{Identifier, ProblemType};

impl Validator {
    pub(super) async fn dns01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<(), Failure> {
        let Identifier::Dns(name) = identifier else {
            return Err(not_for_ip());
        };
        let base = name.strip_prefix("*.").unwrap_or(name);
        let record = format!("_acme-challenge.{}", normalise_name(base));
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()));
        let lookup = match self.resolver.txt_lookup(format!("{record}.")).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() => {
                return Err(Failure::new(
                    ProblemType::Unauthorized,
                    format!("no TXT record at {record}"),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    ProblemType::Dns,
                    format!(
                        "looking up TXT records at {record} failed: {}",
                        dns_error(&e)
                    ),
                ));
            }
        };
        let values: Vec<Vec<u8>> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(txt.txt_data.concat()),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            return Err(Failure::new(
                ProblemType::Unauthorized,
                format!("no TXT record at {record}"),
            ));
        }
        if values.iter().any(|value| value == expected.as_bytes()) {
            return Ok(());
        }
        let found: Vec<String> = values.iter().take(3).map(|v| excerpt(v)).collect();
        Err(Failure::new(
            ProblemType::IncorrectResponse,
            format!(
                "no TXT record at {record} holds the expected value {expected:?}; found {} \
                 record(s): {}",
                values.len(),
                found.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;
    use std::time::Duration;

    use hickory_resolver::proto::rr::rdata::{A, TXT};
    use tokio::net::UdpSocket;

    use crate::acme::ChallengeType;
    use crate::acme::validation::test_support::{
        KEY_AUTHORIZATION, LOCALHOST, Outcome, TOKEN, Zone, assert_problem, config, dns,
        dns_server, validator,
    };

    fn txt(strings: &[&str]) -> RData {
        RData::TXT(TXT::new(strings.iter().map(|s| (*s).to_owned()).collect()))
    }

    // ---- dns-01 ----

    fn expected_txt() -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(KEY_AUTHORIZATION.as_bytes()))
    }

    async fn dns_validator(zone: Zone) -> Validator {
        let mut config = config(1, 1);
        config.dns_resolver = Some(dns_server(zone).await);
        validator(config)
    }

    async fn dns01(validator: &Validator, identifier: &Identifier) -> Outcome {
        validator
            .validate(ChallengeType::Dns01, identifier, TOKEN, KEY_AUTHORIZATION)
            .await
    }

    #[tokio::test]
    async fn dns01_passes_when_any_txt_record_matches() {
        let expected = expected_txt();
        let (head, tail) = expected.split_at(10);
        let zone = Zone::default()
            .with("_acme-challenge.one.test.", txt(&["unrelated"]))
            .with("_acme-challenge.one.test.", txt(&[&expected]))
            // Strings of one record are concatenated.
            .with("_acme-challenge.split.test.", txt(&[head, tail]));
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("one.test")).await, Ok(()));
        assert_eq!(dns01(&validator, &dns("split.test")).await, Ok(()));
    }

    #[tokio::test]
    async fn dns01_validates_a_wildcard_at_its_base_name() {
        let zone = Zone::default().with("_acme-challenge.wild.test.", txt(&[&expected_txt()]));
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("*.wild.test")).await, Ok(()));
    }

    #[tokio::test]
    async fn dns01_refuses_a_wrong_value() {
        let zone = Zone::default().with("_acme-challenge.wrong.test.", txt(&["not-the-digest"]));
        let validator = dns_validator(zone).await;
        let identifier = dns("wrong.test");
        assert_problem(
            &dns01(&validator, &identifier).await,
            ProblemType::IncorrectResponse,
            "\"not-the-digest\"",
            &identifier,
        );
    }

    #[tokio::test]
    async fn dns01_without_a_record_is_unauthorized() {
        let zone = Zone::default()
            // The name exists, with an A record but no TXT (NODATA).
            .with(
                "_acme-challenge.nodata.test.",
                RData::A(A(Ipv4Addr::LOCALHOST)),
            );
        let validator = dns_validator(zone).await;
        for name in ["absent.test", "nodata.test"] {
            let identifier = dns(name);
            assert_problem(
                &dns01(&validator, &identifier).await,
                ProblemType::Unauthorized,
                &format!("no TXT record at _acme-challenge.{name}"),
                &identifier,
            );
        }
    }

    #[tokio::test]
    async fn dns01_reports_resolver_failures_as_dns() {
        let mut zone = Zone::default();
        zone.servfail
            .insert("_acme-challenge.broken.test.".to_owned());
        let servfail = dns_validator(zone).await;
        let identifier = dns("broken.test");
        assert_problem(
            &dns01(&servfail, &identifier).await,
            ProblemType::Dns,
            "_acme-challenge.broken.test",
            &identifier,
        );

        // A resolver that never answers.
        let silent = UdpSocket::bind((LOCALHOST, 0)).await.expect("test socket");
        let mut config = config(1, 1);
        config.dns_resolver = Some(silent.local_addr().expect("test address"));
        config.timeout = Duration::from_millis(300);
        let outcome = dns01(&validator(config), &identifier).await;
        assert_problem(&outcome, ProblemType::Dns, "", &identifier);
    }

    #[tokio::test]
    async fn dns01_retries_over_tcp_when_the_udp_answer_is_truncated() {
        let mut zone = Zone::default().with("_acme-challenge.big.test.", txt(&[&expected_txt()]));
        zone.truncated
            .insert("_acme-challenge.big.test.".to_owned());
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("big.test")).await, Ok(()));
    }
}
