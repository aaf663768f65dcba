//! The console's passkeys: the sign-in button of the login page and the account page's
//! section. The browser side is `assets/passkeys.js`, which drives WebAuthn and the REST API
//! (`/api/v2/account/webauthn/*`, `/api/v2/auth/login/webauthn/*`); these only decide what the
//! pages show.

use super::assets;
use crate::App;
use crate::api::v2::passkeys::relying_party;
use crate::error::ApiResult;

/// The account page's passkeys section.
pub struct Section {
    /// Why passkeys cannot be used here, when they cannot.
    pub unavailable: Option<String>,
    /// The visitor's passkeys.
    pub rows: Vec<authority::PasskeyRow>,
    /// The script's URL.
    pub script: String,
}

impl Section {
    /// The section for `principal`.
    pub async fn read(app: &App, principal: &authority::Principal) -> ApiResult<Self> {
        Ok(Self {
            unavailable: relying_party(app).err().map(|e| e.to_string()),
            rows: app.authority.passkeys(principal).await?,
            script: assets::url("passkeys"),
        })
    }
}

/// The script's URL for the login page, when passkeys can be used on this server.
pub fn login_script(app: &App) -> Option<String> {
    relying_party(app).is_ok().then(|| assets::url("passkeys"))
}
