//! The resources the fake serves, as one table: what discovery lists, what
//! the router accepts and what the store keys objects by.

/// One served resource (a plural under a group/version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    /// Version, e.g. `v1`.
    pub version: &'static str,
    /// The plural in URLs, e.g. `pods`.
    pub plural: &'static str,
    /// The lower-case singular, e.g. `pod`.
    pub singular: &'static str,
    /// The object's `kind`, e.g. `Pod`.
    pub kind: &'static str,
    /// Namespaced (`/namespaces/NS/plural`) or cluster-scoped.
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource keep the old
    /// `status`, writes to `/status` keep the old `spec`.
    pub status: bool,
    /// Short names kubectl resolves (`po`, `no`, `ns`, `netpol`, ...).
    pub short_names: &'static [&'static str],
}

impl Resource {
    /// `group/version`, or `version` for the core group (an `apiVersion`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The `kind` of its lists, e.g. `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `plural` or `plural.group`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn res(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        status,
        short_names,
    }
}

/// Every resource the fake serves (all at version v1).
pub const RESOURCES: &[Resource] = &[
    res(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        true,
        &["ns"],
    ),
    res("", "nodes", "node", "Node", false, true, &["no"]),
    res("", "pods", "pod", "Pod", true, true, &["po"]),
    res("", "services", "service", "Service", true, true, &["svc"]),
    res(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        false,
        &[],
    ),
    res(
        "networking.k8s.io",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        false,
        &["netpol"],
    ),
    res(
        "tweed.dev",
        "policies",
        "policy",
        "Policy",
        true,
        false,
        &[],
    ),
    res(
        "tweed.dev",
        "globalpolicies",
        "globalpolicy",
        "GlobalPolicy",
        false,
        false,
        &[],
    ),
    res(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
    ),
];

/// The verbs every resource answers (discovery lists them; kubectl checks).
pub const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The namespaces the real server creates at start-up.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-node-lease", "kube-public", "kube-system"];

/// The index of `plural` under `group`/`version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The index of the resource whose objects carry `api_version` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.api_version() == api_version && r.kind == kind)
}

/// The index of the resource a user names: plural, singular, kind, short
/// name (case-insensitive), or `plural.group`.
pub fn by_name(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    RESOURCES.iter().position(|r| {
        r.plural == lower
            || r.singular == lower
            || r.kind.eq_ignore_ascii_case(&lower)
            || r.short_names.contains(&lower.as_str())
            || r.qualified() == lower
    })
}

/// The groups other than core, each once, in table order.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(by_kind("v1", "Pod"), Some(pods));
        assert_eq!(by_name("po"), Some(pods));
        assert_eq!(by_name("Pod"), Some(pods));
        let gp = by_name("globalpolicies.tweed.dev").unwrap();
        assert_eq!(RESOURCES[gp].api_version(), "tweed.dev/v1");
        assert!(!RESOURCES[gp].namespaced);
        assert_eq!(find("tweed.dev", "v1", "pods"), None);
    }

    #[test]
    fn groups_are_listed_once() {
        let groups = groups();
        assert_eq!(groups.len(), 4);
        assert!(groups.contains(&"tweed.dev"));
    }
}
