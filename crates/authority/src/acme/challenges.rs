//! Challenges (RFC 8555 §7.5.1): the client says it is ready, the validator checks in the
//! background, and the result settles the authorization and its order.

use std::sync::Arc;

use store::AcmeAccountRow;

use super::validation::{ValidationConfig, Validator};
use super::{AcmeError, ChallengeType, Order, Problem, ProblemType, Status};
use crate::{Authority, Error, Result};

impl Authority {
    /// Uses `config` for challenge validation from now on (the default is
    /// [`ValidationConfig::default`]): call before serving.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the validator cannot be built from it.
    pub fn configure_acme_validation(&self, config: ValidationConfig) -> Result<()> {
        let validator = Arc::new(Validator::new(config)?);
        self.acme
            .validator
            .set(validator)
            .map_err(|_| Error::Conflict("ACME validation is already configured".into()))
    }

    fn validator(&self) -> Result<Arc<Validator>> {
        if let Some(v) = self.acme.validator.get() {
            return Ok(v.clone());
        }
        let built = Arc::new(Validator::new(ValidationConfig::default())?);
        Ok(self.acme.validator.get_or_init(|| built).clone())
    }

    /// The client is ready for challenge `kind` of authorization `index` of order `refid`:
    /// the challenge becomes processing and is validated in the background, when a slot of the
    /// validator is free. A challenge already processing or done is left as it is. Returns the
    /// order as it now stands.
    ///
    /// # Errors
    /// A 404 problem for no such challenge; `malformed` for an authorization no longer
    /// pending; `rateLimited` (the challenge stays pending) when the account already has as
    /// many validations waiting as it may.
    pub async fn acme_respond_challenge(
        self: &Arc<Self>,
        account: &AcmeAccountRow,
        refid: &str,
        index: usize,
        kind: ChallengeType,
    ) -> Result<Order, AcmeError> {
        let missing = || Error::NotFound("there is no such challenge".into());
        let change = move |order: &mut Order| {
            let authz = order.authorizations.get_mut(index).ok_or_else(missing)?;
            let authz_status = authz.status;
            let challenge = authz
                .challenges
                .iter_mut()
                .find(|c| c.kind == kind)
                .ok_or_else(missing)?;
            if challenge.status != Status::Pending {
                return Ok(false);
            }
            if authz_status != Status::Pending {
                return Err(Problem::new(
                    ProblemType::Malformed,
                    format!(
                        "the authorization is {}, so its challenges are closed",
                        authz_status.as_str()
                    ),
                )
                .into());
            }
            challenge.status = Status::Processing;
            Ok(true)
        };
        // Admitted before the challenge changes, so a refusal leaves it pending.
        let validator = self.validator()?;
        let admission = validator.admit(account.id)?;
        let (order, started) = self
            .acme_change_order(account.id, refid, Box::new(change))
            .await?;
        let authz = order.authorizations.get(index);
        let token = authz
            .and_then(|a| a.challenges.iter().find(|c| c.kind == kind))
            .map(|c| c.token.clone());
        let (Some(authz), Some(token), true) = (authz, token, started) else {
            return Ok(order);
        };
        let identifier = authz.identifier.clone();
        let authority = self.clone();
        let key_authorization = pki::jose::key_authorization(&token, &account.thumbprint);
        let (account_id, refid) = (account.id, refid.to_owned());
        tokio::spawn(async move {
            let outcome = admission
                .run(validator.validate(kind, &identifier, &token, &key_authorization))
                .await;
            if let Err(e) = authority
                .acme_record_validation(account_id, &refid, index, kind, outcome)
                .await
            {
                tracing::warn!(order = %refid, "recording an ACME validation failed: {e}");
            }
        });
        Ok(order)
    }

    /// Records the outcome of a validation: the challenge and its authorization become valid
    /// or invalid, and the order settles.
    async fn acme_record_validation(
        &self,
        account_id: i64,
        refid: &str,
        index: usize,
        kind: ChallengeType,
        outcome: Result<(), Problem>,
    ) -> Result<(), AcmeError> {
        let now = self.now();
        let change = move |order: &mut Order| {
            let Some(authz) = order.authorizations.get_mut(index) else {
                return Ok(false);
            };
            let identifier = authz.identifier.clone();
            let Some(challenge) = authz.challenges.iter_mut().find(|c| c.kind == kind) else {
                return Ok(false);
            };
            if challenge.status != Status::Processing || authz.status != Status::Pending {
                // Deactivated or expired meanwhile: the outcome no longer matters.
                return Ok(false);
            }
            match outcome {
                Ok(()) => {
                    challenge.status = Status::Valid;
                    challenge.validated = Some(now);
                    authz.status = Status::Valid;
                }
                Err(problem) => {
                    challenge.status = Status::Invalid;
                    challenge.error = Some(problem.about(identifier));
                    authz.status = Status::Invalid;
                }
            }
            order.settle();
            Ok(true)
        };
        self.acme_change_order(account_id, refid, Box::new(change))
            .await?;
        Ok(())
    }
}
