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
}

/// Reads `acme/api.git/info/refs` with its method and query; `None` for
/// anything but a smart-HTTP request.
pub fn route(path: &str, is_post: bool, query: Option<&str>) -> Option<GitRoute> {
    let (repo, rest) = path.split_once(".git/")?;
    if repo.is_empty() || repo.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return None;
    }
    let (endpoint, service) = match (is_post, rest) {
        (false, "info/refs") => match query.unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("service=")) {
            Some("git-upload-pack") => (Endpoint::InfoRefs, Service::UploadPack),
            Some("git-receive-pack") => (Endpoint::InfoRefs, Service::ReceivePack),
            _ => return None,
        },
        (true, "git-upload-pack") => (Endpoint::Rpc, Service::UploadPack),
        (true, "git-receive-pack") => (Endpoint::Rpc, Service::ReceivePack),
        _ => return None,
    };
    Some(GitRoute { repo: repo.to_string(), endpoint, service })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(repo: &str, endpoint: Endpoint, service: Service) -> Option<GitRoute> {
        Some(GitRoute { repo: repo.into(), endpoint, service })
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
            assert_eq!(route(path, is_post, query), None, "{path} {query:?}");
        }
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
