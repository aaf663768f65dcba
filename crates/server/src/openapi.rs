//! The OpenAPI 3.1 document. Handlers document themselves with `#[utoipa::path]`; this adds the
//! title and the two security schemes every access declaration names, makes operation ids
//! unique, and leaves out of the served document the routes OpenAPI cannot express.

use std::collections::HashMap;

use utoipa::openapi::path::Operation;
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
            state-changing requests must send the login's csrf_token as `X-CSRF-Token`. \
            The server renders this document at `/api/docs`.",
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

/// Gives every operation an id of its own (OpenAPI 3.1 §4.8.10.1 requires them unique): utoipa
/// takes the handler's name, and handlers of different resources share names (`list`,
/// `create`). A shared id is prefixed with the operation's tag, and, if that is still shared
/// (one handler under two methods), suffixed with the method.
pub fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    let mut rename = |name: &dyn Fn(&str, &Operation, &str) -> String| {
        let mut uses: HashMap<String, usize> = HashMap::new();
        for (_, op) in operations(doc) {
            if let Some(id) = &op.operation_id {
                *uses.entry(id.clone()).or_default() += 1;
            }
        }
        for (method, op) in operations(doc) {
            if let Some(id) = op.operation_id.clone()
                && uses.get(&id).is_some_and(|n| *n > 1)
            {
                op.operation_id = Some(name(&id, op, method));
            }
        }
    };
    rename(
        &|id, op, _| match op.tags.as_ref().and_then(|t| t.first()) {
            Some(tag) => format!("{tag}_{id}"),
            None => id.to_owned(),
        },
    );
    rename(&|id, _, method| format!("{id}_{method}"));
}

/// Every operation of the document with its method, lower case.
fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("options", &mut item.options),
            ("head", &mut item.head),
            ("patch", &mut item.patch),
            ("trace", &mut item.trace),
        ]
        .into_iter()
        .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    })
}

/// The document as served: without the catch-all routes (`/ocsp/{request}/{*rest}`), whose
/// parameter spans path segments, which no OpenAPI path template can say. They stay in the
/// router and in the access table; the operations they extend say that they exist.
pub fn publishable(doc: &serde_json::Value) -> serde_json::Value {
    let mut doc = doc.clone();
    if let Some(paths) = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        paths.retain(|template, _| !template.contains("{*"));
    }
    doc
}
