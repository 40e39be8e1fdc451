//! Git's smart HTTP protocol as the gateway sees it: which URLs are git
//! requests, for which repository, and which service (and so which access
//! level) each needs.
//!
//! Only the four smart-HTTP endpoints exist for the gateway; dumb HTTP
//! (`HEAD`, `objects/…`) and anything else is not a git request it serves.

use super::level::Level;

/// Which git service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    /// The level a grant needs for this service: fetching reads, pushing writes.
    pub fn needs(self) -> Level {
        match self {
            Service::UploadPack => Level::Read,
            Service::ReceivePack => Level::Write,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The realm of the gateway's challenge for this service: git hands it
    /// to its credential helpers (`wwwauth[]`), so jit's helper knows whether
    /// git is fetching or pushing and names the level that needs.
    pub fn realm(self) -> &'static str {
        match self {
            Service::UploadPack => "jit fetch",
            Service::ReceivePack => "jit push",
        }
    }

    /// The service a `WWW-Authenticate` value (as git hands it on) names, if
    /// it is one of the gateway's challenges.
    pub fn from_challenge(challenge: &str) -> Option<Service> {
        let realm = challenge.strip_prefix("Basic ")?.split(',').find_map(|p| p.trim().strip_prefix("realm="))?;
        [Service::UploadPack, Service::ReceivePack].into_iter().find(|s| realm.trim_matches('"') == s.realm())
    }

    /// `fetching` / `pushing`, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Service::UploadPack => "fetching",
            Service::ReceivePack => "pushing",
        }
    }
}

/// Which of the two request kinds of a smart-HTTP exchange this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET …/info/refs?service=…`: the ref advertisement.
    InfoRefs,
    /// `POST …/git-upload-pack` or `…/git-receive-pack`: the exchange that moves data.
    Rpc,
}

/// A git request the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRoute {
    /// The repo's short name (`acme/api` for `acme/api.git/…`).
    pub repo: String,
    pub endpoint: Endpoint,
    pub service: Service,
}

impl GitRoute {
    /// The path below the repository, as `git http-backend` expects it.
    pub fn rest(&self) -> &'static str {
        match self.endpoint {
            Endpoint::InfoRefs => "info/refs",
            Endpoint::Rpc => self.service.name(),
        }
    }

    /// The only query the backend is given: what was validated, rebuilt, so
    /// it can never read a service other than the one access was checked for.
    pub fn backend_query(&self) -> String {
        match self.endpoint {
            Endpoint::InfoRefs => format!("service={}", self.service.name()),
            Endpoint::Rpc => String::new(),
        }
    }
}

/// Why a request is not one the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("not a git smart-HTTP request this gateway serves")]
    NotSmartHttp,
    /// More than one `service` (however spelled): readers disagree on which counts.
    #[error("ambiguous query: `service` given more than once")]
    Ambiguous,
}

/// Reads `acme/api.git/info/refs` with its method and query; an error for
/// anything but a smart-HTTP request.
///
/// The query is read the way `git http-backend` reads it, decoded
/// (`%73ervice=` is `service=`), and a second `service` is refused rather than
/// guessed at: the gateway's reading and the backend's can never differ.
pub fn route(path: &str, is_post: bool, query: Option<&str>) -> Result<GitRoute, RouteError> {
    let (repo, rest) = path.split_once(".git/").ok_or(RouteError::NotSmartHttp)?;
    if repo.is_empty() || repo.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(RouteError::NotSmartHttp);
    }
    let services: Vec<String> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).filter(|(k, _)| k == "service").map(|(_, v)| v.into_owned()).collect();
    if services.len() > 1 {
        return Err(RouteError::Ambiguous);
    }
    let (endpoint, service) = match (is_post, rest) {
        (false, "info/refs") => match services.first().map(String::as_str) {
            Some("git-upload-pack") => (Endpoint::InfoRefs, Service::UploadPack),
            Some("git-receive-pack") => (Endpoint::InfoRefs, Service::ReceivePack),
            _ => return Err(RouteError::NotSmartHttp),
        },
        (true, "git-upload-pack") => (Endpoint::Rpc, Service::UploadPack),
        (true, "git-receive-pack") => (Endpoint::Rpc, Service::ReceivePack),
        _ => return Err(RouteError::NotSmartHttp),
    };
    Ok(GitRoute { repo: repo.to_string(), endpoint, service })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_service() {
        for s in [Service::UploadPack, Service::ReceivePack] {
            assert_eq!(Service::from_challenge(&format!("Basic realm=\"{}\"", s.realm())), Some(s));
        }
        assert_eq!(Service::from_challenge("Basic realm=\"jit push\", charset=\"UTF-8\""), Some(Service::ReceivePack));
        assert_eq!(Service::from_challenge("Basic realm=\"jit\""), None);
        assert_eq!(Service::from_challenge("Bearer realm=\"jit push\""), None);
        assert_eq!(Service::from_challenge("Basic realm=\"GitHub\""), None);
    }

    #[test]
    fn services_read_as_their_names_verbs_and_levels() {
        let words: Vec<String> =
            [Service::UploadPack, Service::ReceivePack].iter().map(|s| format!("{} {} {}", s.name(), s.verb(), s.needs())).collect();
        assert_eq!(words, ["git-upload-pack fetching read", "git-receive-pack pushing write"]);
    }

    fn r(repo: &str, endpoint: Endpoint, service: Service) -> Result<GitRoute, RouteError> {
        Ok(GitRoute { repo: repo.into(), endpoint, service })
    }

    #[test]
    fn only_smart_http_routes() {
        assert_eq!(route("demo.git/info/refs", false, Some("service=git-upload-pack")), r("demo", Endpoint::InfoRefs, Service::UploadPack));
        assert_eq!(
            route("acme/api.git/info/refs", false, Some("service=git-receive-pack")),
            r("acme/api", Endpoint::InfoRefs, Service::ReceivePack)
        );
        assert_eq!(route("demo.git/git-upload-pack", true, None), r("demo", Endpoint::Rpc, Service::UploadPack));
        assert_eq!(route("demo.git/git-receive-pack", true, None), r("demo", Endpoint::Rpc, Service::ReceivePack));
        for (path, is_post, query) in [
            ("demo.git/info/refs", false, None),
            ("demo.git/info/refs", false, Some("service=git-upload-archive")),
            ("demo.git/info/refs", true, Some("service=git-upload-pack")),
            ("demo.git/HEAD", false, None),
            ("demo.git/objects/info/packs", false, None),
            ("demo.git/git-receive-pack", false, None),
            ("../etc.git/info/refs", false, Some("service=git-upload-pack")),
            ("a//b.git/git-upload-pack", true, None),
            ("a/./b.git/git-upload-pack", true, None),
            ("demo/info/refs", false, Some("service=git-upload-pack")),
            (".git/git-upload-pack", true, None),
        ] {
            assert_eq!(route(path, is_post, query), Err(RouteError::NotSmartHttp), "{path} {query:?}");
        }
    }

    #[test]
    fn the_service_is_read_as_the_backend_reads_it_and_ambiguity_is_refused() {
        // Regression: jit took the first `service=`, git http-backend the last,
        // decoded; a read credential got the receive-pack advertisement.
        for query in [
            "service=git-upload-pack&service=git-receive-pack",
            "service=git-upload-pack&%73ervice=git-receive-pack",
            "service=git-receive-pack&service=git-receive-pack",
        ] {
            assert_eq!(route("demo.git/info/refs", false, Some(query)), Err(RouteError::Ambiguous), "{query}");
        }
        let encoded = route("demo.git/info/refs", false, Some("%73ervice=git%2Dreceive%2Dpack")).unwrap();
        assert_eq!(encoded.service, Service::ReceivePack);
        assert_eq!(encoded.backend_query(), "service=git-receive-pack");
        let with_noise = route("demo.git/info/refs", false, Some("x=1&service=git-upload-pack")).unwrap();
        assert_eq!((with_noise.service, with_noise.backend_query()), (Service::UploadPack, "service=git-upload-pack".to_string()));
        assert_eq!(route("demo.git/git-upload-pack", true, Some("service=git-receive-pack")).unwrap().backend_query(), "");
    }

    #[test]
    fn services_need_their_level() {
        assert_eq!(Service::UploadPack.needs(), Level::Read);
        assert_eq!(Service::ReceivePack.needs(), Level::Write);
        let push = route("demo.git/git-receive-pack", true, None).unwrap();
        assert_eq!(push.rest(), "git-receive-pack");
        assert_eq!(route("demo.git/info/refs", false, Some("service=git-receive-pack")).unwrap().rest(), "info/refs");
    }
}
