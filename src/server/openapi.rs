//! The API's description, OpenAPI 3.1, generated from the handlers'
//! `#[utoipa::path]` annotations and the wire types in `api` (so it cannot
//! drift from them), served at `/v1/openapi.json`. Git's smart-HTTP routes
//! (`/git/…`) are git's own protocol, not this API, and are not in it.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::handlers::{audit, auth, grants, health, notifications, repos, requests, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jit broker",
        description = "Just-in-time access to git repositories: requests, decisions, grants, credentials and the audit log. \
                       Errors are {\"error\": {\"code\", \"message\", \"hint\"?, \"request_id\"}} with a stable code."
    ),
    paths(
        health::healthz,
        health::metrics,
        openapi_json,
        users::whoami,
        auth::methods,
        auth::start_device,
        auth::finish_device,
        auth::start_browser,
        auth::finish_browser,
        auth::callback,
        auth::sign_out,
        repos::list,
        users::list,
        users::add,
        users::remove,
        users::rotate_token,
        requests::list,
        requests::create,
        requests::get,
        requests::approve,
        requests::deny,
        requests::cancel,
        grants::list,
        grants::failing,
        grants::unreviewed,
        grants::get,
        grants::revoke,
        grants::report,
        grants::mint_credential,
        grants::extend,
        grants::review,
        notifications::list,
        notifications::replicas,
        audit::page,
        audit::verify,
        audit::checkpoint,
    ),
    components(schemas(crate::api::ErrorBody, crate::api::ErrorDetail)),
    modifiers(&BearerTokens, &CommonAnswers)
)]
pub struct ApiDoc;

/// Bearer tokens (`Authorization: Bearer jit_…`), as `security(("bearer" = []))` names them.
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The answers the layers in front of every handler give, added to each
/// operation they apply to rather than repeated in each annotation: the
/// token check (401, and 429 once a source has failed too often) on every
/// operation that takes a token, and the JSON body reader (413, 415) on
/// every operation that takes a body.
struct CommonAnswers;

impl utoipa::Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten() {
                let answers = &mut op.responses.responses;
                let mut add = |status: &str, description: &str| {
                    answers.entry(status.to_string()).or_insert_with(|| error_answer(description));
                };
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "no valid token");
                    add("429", "too many failed logins from this address: wait as Retry-After says");
                }
                if let Some(body) = &op.request_body {
                    add("413", "the body is too large");
                    // An optional body is read whatever its type says.
                    if body.required == Some(utoipa::openapi::Required::True) {
                        add("415", "the body is not JSON (`Content-Type: application/json`)");
                    }
                }
            }
        }
    }
}

fn error_answer(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", body).build().into()
}

/// The description, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc
    })
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, description = "this description")))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}
