//! `/hsm`: the PKCS#11 providers and the keys in their tokens. The providers with their
//! tokens' state on this node, each tested, synced or deleted from its row; the keys with the
//! CA each signs for; forms to add a provider and to generate a key. The authority decides as
//! it does for the REST API: reading needs `read:cas`, every change `admin:system`.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::form::{Form, blank_is_none, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::hsm::{HsmKeyView, HsmProviderView, key_type, key_view, provider_view};
use crate::error::{ApiError, ApiResult};
use authority::KeyId;
use authority::hsm::{PROVIDER_TYPES, ProviderInput};

/// The page.
const PAGE: &str = "/hsm";
/// The key algorithms the generation form offers, as the REST API names them.
const ALGORITHMS: [&str; 6] = [
    "EC-P256", "EC-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519",
];

/// The new provider's form.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ProviderForm {
    name: String,
    provider_type: String,
    module_path: String,
    token_label: String,
    slot_id: String,
    pin: String,
    pin_env: String,
    max_sessions: String,
    allow_key_import: Option<String>,
}

impl ProviderForm {
    fn to_input(&self) -> ApiResult<ProviderInput> {
        Ok(ProviderInput {
            name: self.name.trim().to_owned(),
            provider_type: self.provider_type.clone(),
            module_path: blank_is_none(&self.module_path).map(str::to_owned),
            token_label: blank_is_none(&self.token_label).map(str::to_owned),
            slot_id: number("slot_id", &self.slot_id)?,
            pin: (!self.pin.is_empty()).then(|| Zeroizing::new(self.pin.clone())),
            pin_env: blank_is_none(&self.pin_env).map(str::to_owned),
            max_sessions: number("max_sessions", &self.max_sessions)?,
            allow_key_import: self.allow_key_import.is_some(),
            enabled: Some(true),
        })
    }

    /// The form as it is shown again after a refusal: never the PIN.
    fn without_pin(mut self) -> Self {
        self.pin.clear();
        self
    }
}

/// The key generation form.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct KeyForm {
    provider_id: String,
    label: String,
    algorithm: String,
}

#[derive(Template)]
#[template(path = "console/hsm.html")]
struct HsmPage {
    head: Head,
    frame: Frame,
    providers: Vec<HsmProviderView>,
    keys: Vec<HsmKeyView>,
    types: Vec<(&'static str, &'static str)>,
    algorithms: [&'static str; 6],
    form: ProviderForm,
    key_form: KeyForm,
    /// What an action found (a test, a sync), shown once.
    notice: Option<String>,
    error: Option<String>,
}

/// What the page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    form: Option<ProviderForm>,
    key_form: Option<KeyForm>,
    notice: Option<String>,
    error: Option<ApiError>,
}

async fn hsm_page(app: &App, visitor: &Visitor, shown: Shown) -> Response {
    let frame = visitor.frame(PAGE);
    let read = async {
        let providers = app.authority.hsm_providers(&visitor.principal).await?;
        let keys = app.authority.hsm_keys(&visitor.principal, None).await?;
        Ok::<_, authority::Error>((providers, keys))
    };
    let (providers, keys) = match read.await {
        Ok(read) => read,
        Err(e) => return page::refused(frame, &e.into()),
    };
    page::render(
        shown
            .error
            .as_ref()
            .map_or(StatusCode::OK, ApiError::status),
        &HsmPage {
            head: Head::new(),
            frame,
            providers: providers.into_iter().map(provider_view).collect(),
            keys: keys.into_iter().map(key_view).collect(),
            types: PROVIDER_TYPES.iter().map(|t| (t.name, t.title)).collect(),
            algorithms: ALGORITHMS,
            form: shown.form.unwrap_or_default(),
            key_form: shown.key_form.unwrap_or_default(),
            notice: shown.notice,
            error: shown.error.map(|e| e.message().to_owned()),
        },
    )
}

/// Back to the page at `anchor` once `done` succeeded; the page with `shown` and the refusal
/// otherwise.
async fn then_back(
    app: &App,
    visitor: &Visitor,
    done: impl Future<Output = ApiResult<()>>,
    anchor: &str,
    shown: Shown,
) -> Response {
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}{anchor}")).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..shown
            };
            hsm_page(app, visitor, shown).await
        }
    }
}

/// GET `/hsm`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    hsm_page(&app, &visitor, Shown::default()).await
}

/// POST `/hsm`: adds a provider.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ProviderForm>,
) -> Response {
    let done = async {
        app.authority
            .create_hsm_provider(&visitor.principal, form.to_input()?)
            .await?;
        Ok(())
    };
    let shown = Shown {
        form: Some(form.clone().without_pin()),
        ..Shown::default()
    };
    then_back(&app, &visitor, done, "#providers", shown).await
}

/// POST `/hsm/{id}/test`: logs in to the token and says what it is.
pub async fn test(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let shown = match app
        .authority
        .test_hsm_provider(&visitor.principal, id)
        .await
    {
        Ok(t) => Shown {
            notice: Some(format!(
                "Token '{}' ({} {}, serial {}, slot {}) answered; it makes and signs with {}.",
                t.label,
                t.manufacturer,
                t.model,
                t.serial_number,
                t.slot_id,
                if t.key_types.is_empty() {
                    "none of the key types certmint uses".to_owned()
                } else {
                    t.key_types.join(", ")
                }
            )),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    hsm_page(&app, &visitor, shown).await
}

/// POST `/hsm/{id}/sync`: records the token's signing keys certmint does not know.
pub async fn sync(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let shown = match app
        .authority
        .sync_hsm_provider(&visitor.principal, id)
        .await
    {
        Ok(r) => Shown {
            notice: Some(format!(
                "{} signing key(s) in the token, {} newly recorded, {} recorded but missing \
                 from it.",
                r.found,
                r.added.len(),
                r.missing.len()
            )),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    hsm_page(&app, &visitor, shown).await
}

/// The deletion forms: their box must be ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    confirm: String,
}

fn confirmed(form: &DeleteForm) -> ApiResult<()> {
    if form.confirm.is_empty() {
        return Err(ApiError::invalid("tick the box to confirm the deletion"));
    }
    Ok(())
}

/// POST `/hsm/{id}/delete`: removes a provider whose token holds no recorded key.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let done = async {
        confirmed(&form)?;
        app.authority
            .delete_hsm_provider(&visitor.principal, id)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, "#providers", Shown::default()).await
}

/// POST `/hsm/keys`: generates a key in a provider's token.
pub async fn generate(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<KeyForm>,
) -> Response {
    let done = async {
        let provider = number("provider_id", &form.provider_id)?
            .ok_or_else(|| ApiError::invalid("choose the provider whose token makes the key"))?;
        app.authority
            .generate_hsm_key(
                &visitor.principal,
                provider,
                key_type(&form.algorithm)?,
                form.label.trim(),
            )
            .await?;
        Ok(())
    };
    let shown = Shown {
        key_form: Some(form.clone()),
        ..Shown::default()
    };
    then_back(&app, &visitor, done, "#keys", shown).await
}

/// POST `/hsm/keys/{id}/delete`: destroys a key no CA uses in its token.
pub async fn delete_key(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let done = async {
        confirmed(&form)?;
        app.authority
            .delete_hsm_key(&visitor.principal, KeyId(id))
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, "#keys", Shown::default()).await
}
