//! The OpenAPI 3.1 document. Handlers document themselves with `#[utoipa::path]`; this adds the
//! title and the two security schemes every access declaration names.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::access::SESSION_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "certmint",
        description = "Self-hosted certificate authority and certificate lifecycle manager.\n\n\
            Successful responses are `{\"data\", \"message\", \"meta\": {\"page\", \"per_page\", \"total\"}}`; \
            errors are `{\"error\": true, \"code\", \"message\"}`. Each operation's `security` names the \
            permission it requires (an empty requirement means public). Cookie-authenticated \
            state-changing requests must send the login's csrf_token as `X-CSRF-Token`.",
        license(name = "Apache-2.0 OR MIT")
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
