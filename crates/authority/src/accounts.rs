//! User administration, and each user's own profile and password.

use zeroize::Zeroizing;

use crate::audit::Event;
use crate::principal::Principal;
use crate::rbac::Role;
use crate::sessions::Guess;
use crate::{Authority, Error, Page, PageRequest, Result, UserFilter, UserRow, password, validate};

/// What a password change did to the account's other credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChanged {
    /// Other login sessions ended.
    pub sessions_ended: u64,
    /// API keys, which keep working (revoke them separately if the password leaked).
    pub api_keys_kept: usize,
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUserInput {
    /// Login name.
    pub username: String,
    /// Contact address.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Role name.
    pub role: String,
    /// Initial password; one is generated (and returned once) when absent.
    pub password: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdateInput {
    /// New contact address (`Some(None)` clears it).
    pub email: Option<Option<String>>,
    /// New display name (`Some(None)` clears it).
    pub full_name: Option<Option<String>>,
    /// New role.
    pub role: Option<String>,
}

fn check_profile(email: Option<&str>, full_name: Option<&str>) -> Result<()> {
    if let Some(e) = email {
        validate::email(e)?;
    }
    if let Some(n) = full_name {
        validate::text("full_name", n, 0, 200)?;
    }
    Ok(())
}

impl Authority {
    /// Users matching `filter`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<UserRow>> {
        Ok(self.store.users(filter, page).await?)
    }

    /// One user.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such user.
    pub async fn user(&self, id: i64) -> Result<UserRow> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {id}")))
    }

    /// One user by login name.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such user.
    pub async fn user_by_name(&self, username: &str) -> Result<UserRow> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user '{username}'")))
    }

    /// Whether any user exists (first start creates the admin when none does).
    ///
    /// # Errors
    /// Store errors.
    pub async fn has_users(&self) -> Result<bool> {
        Ok(self.store.user_count().await? > 0)
    }

    fn checked_new_user(input: &NewUserInput, password_min_length: usize) -> Result<Role> {
        validate::username(&input.username)?;
        check_profile(input.email.as_deref(), input.full_name.as_deref())?;
        if let Some(p) = &input.password {
            password::check_policy(p, password_min_length)?;
        }
        Role::parse(&input.role)
    }

    /// Creates a user. Returns the user and, when none was given, the generated password (shown
    /// once, never stored in clear).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad field, [`Error::Conflict`] for a taken username.
    pub async fn create_user(
        &self,
        principal: &Principal,
        input: NewUserInput,
    ) -> Result<(UserRow, Option<Zeroizing<String>>)> {
        let mut created = self.create_users(principal, vec![input]).await?;
        created
            .pop()
            .ok_or_else(|| Error::Internal("user creation returned nothing".into()))
    }

    /// Creates the first admin of a new database, `admin`, with `password` or a generated one
    /// (returned, to be shown once).
    ///
    /// # Errors
    /// As [`Authority::create_user`]: [`Error::Invalid`] for a password the policy refuses.
    pub async fn create_first_admin(
        &self,
        password: Option<String>,
    ) -> Result<(UserRow, Option<Zeroizing<String>>)> {
        self.create_user(
            &Principal::local("system"),
            NewUserInput {
                username: "admin".into(),
                role: "admin".into(),
                full_name: Some("Administrator".into()),
                password,
                ..NewUserInput::default()
            },
        )
        .await
    }

    /// Creates several users in one transaction: all of them or, if any is refused, none.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first bad entry, [`Error::Conflict`] for a taken username.
    pub async fn create_users(
        &self,
        principal: &Principal,
        inputs: Vec<NewUserInput>,
    ) -> Result<Vec<(UserRow, Option<Zeroizing<String>>)>> {
        if inputs.is_empty() || inputs.len() > 1000 {
            return Err(Error::Invalid("give between 1 and 1000 users".into()));
        }
        let many = inputs.len() > 1;
        let mut prepared = Vec::with_capacity(inputs.len());
        let password_min_length = self.policy_now().await.password_min_length;
        for (i, input) in inputs.into_iter().enumerate() {
            Self::checked_new_user(&input, password_min_length).map_err(|e| match e {
                Error::Invalid(m) if many => {
                    Error::Invalid(format!("users[{i}] ({}): {m}", input.username))
                }
                other => other,
            })?;
            let generated = match &input.password {
                Some(_) => None,
                None => Some(password::generate()?),
            };
            let plain = input
                .password
                .as_deref()
                .or(generated.as_deref().map(String::as_str))
                .unwrap_or_default();
            let hash = password::hash(plain).await?;
            prepared.push((input, hash, generated));
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut ids = Vec::with_capacity(prepared.len());
        for (input, hash, _) in &prepared {
            let id = tx
                .insert_user(
                    &store::NewUser {
                        username: input.username.clone(),
                        email: input.email.clone(),
                        full_name: input.full_name.clone(),
                        role: input.role.clone(),
                        password_hash: hash.clone(),
                    },
                    now,
                )
                .await
                .map_err(|e| match e {
                    store::Error::Conflict(_) => {
                        Error::Conflict(format!("username '{}' is taken", input.username))
                    }
                    other => other.into(),
                })?;
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "user_created",
                    "user",
                    id,
                    format!("user '{}' created with role {}", input.username, input.role),
                ),
            ))
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, (_, _, generated)) in ids.into_iter().zip(prepared) {
            out.push((self.user(id).await?, generated));
        }
        Ok(out)
    }

    /// Changes a user's contact details or role. The last enabled admin keeps its role.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Invalid`], or [`Error::Conflict`] for the last admin.
    pub async fn update_user(
        &self,
        principal: &Principal,
        id: i64,
        input: UserUpdateInput,
    ) -> Result<UserRow> {
        check_profile(
            input.email.clone().flatten().as_deref(),
            input.full_name.clone().flatten().as_deref(),
        )?;
        if let Some(role) = &input.role {
            Role::parse(role)?;
        }
        let before = self.user(id).await?;
        let mut tx = self.store.begin_write().await?;
        if input
            .role
            .as_deref()
            .is_some_and(|r| r != Role::Admin.as_str())
        {
            self.keep_an_admin(&mut tx, &before).await?;
        }
        tx.update_user(
            id,
            &store::UserUpdate {
                email: input.email.clone(),
                full_name: input.full_name.clone(),
                role: input.role.clone(),
                enabled: None,
            },
            self.now(),
        )
        .await?;
        let mut changed = Vec::new();
        if input.email.is_some() {
            changed.push("email".to_owned());
        }
        if input.full_name.is_some() {
            changed.push("full_name".to_owned());
        }
        if let Some(role) = &input.role {
            changed.push(format!("role {} -> {role}", before.role));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "user_updated",
                "user",
                id,
                format!("user '{}' updated: {}", before.username, changed.join(", ")),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.user(id).await
    }

    async fn keep_an_admin(&self, tx: &mut store::WriteTx, user: &UserRow) -> Result<()> {
        if user.role == Role::Admin.as_str()
            && user.enabled
            && tx.count_enabled_with_role(Role::Admin.as_str()).await? <= 1
        {
            return Err(Error::Conflict(
                "this is the last enabled admin; make another admin first".into(),
            ));
        }
        Ok(())
    }

    fn not_self(principal: &Principal, id: i64, what: &str) -> Result<()> {
        if principal.user.as_ref().is_some_and(|u| u.id == id) {
            return Err(Error::Conflict(format!(
                "you cannot {what} your own account"
            )));
        }
        Ok(())
    }

    /// Enables a disabled user or disables an enabled one. Nobody disables themselves or the
    /// last enabled admin.
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::Conflict`].
    pub async fn toggle_user(&self, principal: &Principal, id: i64) -> Result<UserRow> {
        Self::not_self(principal, id, "disable")?;
        let before = self.user(id).await?;
        let mut tx = self.store.begin_write().await?;
        if before.enabled {
            self.keep_an_admin(&mut tx, &before).await?;
        }
        let enabled = !before.enabled;
        let update = store::UserUpdate {
            enabled: Some(enabled),
            ..store::UserUpdate::default()
        };
        tx.update_user(id, &update, self.now()).await?;
        let (action, done) = if enabled {
            ("user_enabled", "enabled")
        } else {
            ("user_disabled", "disabled")
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "user",
                id,
                format!("user '{}' {done}", before.username),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.user(id).await
    }

    /// Sets a user's password (generating one when none is given), clears any lockout and ends
    /// the user's sessions. Returns the generated password, if any.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Invalid`] for a password that breaks the policy.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        id: i64,
        new_password: Option<&str>,
    ) -> Result<Option<Zeroizing<String>>> {
        let user = self.user(id).await?;
        let generated = match new_password {
            Some(p) => {
                password::check_policy(p, self.policy_now().await.password_min_length)?;
                None
            }
            None => Some(password::generate()?),
        };
        let plain = new_password
            .or(generated.as_deref().map(String::as_str))
            .unwrap_or_default();
        let hash = password::hash(plain).await?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.set_password(id, &hash, now).await?;
        tx.revoke_sessions(id, None, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "password_reset",
                "user",
                id,
                format!("password of '{}' reset; sessions ended", user.username),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(generated)
    }

    /// Deletes a user with its sessions and API keys. Nobody deletes themselves or the last
    /// enabled admin.
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::Conflict`].
    pub async fn delete_user(&self, principal: &Principal, id: i64) -> Result<()> {
        Self::not_self(principal, id, "delete")?;
        let user = self.user(id).await?;
        let mut tx = self.store.begin_write().await?;
        self.keep_an_admin(&mut tx, &user).await?;
        tx.delete_user(id).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "user_deleted",
                "user",
                id,
                format!("user '{}' deleted", user.username),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Changes the principal's own e-mail and display name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad field.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        email: Option<Option<String>>,
        full_name: Option<Option<String>>,
    ) -> Result<UserRow> {
        let id = principal.account()?.id;
        check_profile(
            email.clone().flatten().as_deref(),
            full_name.clone().flatten().as_deref(),
        )?;
        let mut tx = self.store.begin_write().await?;
        let update = store::UserUpdate {
            email,
            full_name,
            ..store::UserUpdate::default()
        };
        tx.update_user(id, &update, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("profile_updated", "user", id, "profile updated"),
        ))
        .await?;
        tx.commit().await?;
        self.user(id).await
    }

    /// Changes the principal's own password after checking the current one, and ends the
    /// principal's other sessions. API keys are separate credentials and keep working; the
    /// outcome counts them so the caller can say so. A wrong current password counts towards
    /// the lockout like a failed login.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the current password is wrong or the principal is not a login
    /// session (a key cannot change the password that makes more keys); [`Error::Locked`] when
    /// the account is or becomes locked; [`Error::Invalid`] when the new one breaks the policy.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<PasswordChanged> {
        principal.require_session("changing the password")?;
        let id = principal.account()?.id;
        let user = self.user(id).await?;
        let failed = |reason: &str| {
            self.entry_by(
                principal,
                Event::new("password_change_failed", "user", id, reason).failed(),
            )
        };
        match self.check_password(&user, current).await? {
            Guess::Right => {}
            Guess::Wrong(_) => {
                let mut tx = self.store.begin_write().await?;
                tx.audit(&failed("current password was wrong")).await?;
                tx.commit().await?;
                return Err(Error::Forbidden("the current password is wrong".into()));
            }
            Guess::Locked {
                attempts,
                until,
                now,
            } => {
                let mut tx = self.store.begin_write().await?;
                let entry = if now {
                    self.entry_by(
                        principal,
                        Event::new(
                            "account_locked",
                            "user",
                            id,
                            "current password was wrong; account locked",
                        )
                        .failed(),
                    )
                } else {
                    failed("account locked")
                };
                tx.audit(&entry).await?;
                tx.commit().await?;
                return Err(Error::Locked { attempts, until });
            }
        }
        password::check_policy(new, self.policy_now().await.password_min_length)?;
        if current == new {
            return Err(Error::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        let hash = password::hash(new).await?;
        let now = self.now();
        let api_keys_kept = self
            .store
            .api_keys(id)
            .await?
            .iter()
            .filter(|k| k.enabled && k.expires_at.is_none_or(|t| t > now))
            .count();
        let mut tx = self.store.begin_write().await?;
        tx.set_password(id, &hash, now).await?;
        let sessions_ended = tx.revoke_sessions(id, principal.session_id(), now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "password_changed",
                "user",
                id,
                format!(
                    "password changed; {sessions_ended} other sessions ended, \
                     {api_keys_kept} API keys kept"
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(PasswordChanged {
            sessions_ended,
            api_keys_kept,
        })
    }
}
