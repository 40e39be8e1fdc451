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
        grants::get,
        grants::revoke,
        grants::report,
        grants::mint_credential,
        notifications::list,
        notifications::replicas,
        audit::page,
        audit::verify,
        audit::checkpoint,
    ),
    components(schemas(crate::api::ErrorBody, crate::api::ErrorDetail)),
    modifiers(&BearerTokens)
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
