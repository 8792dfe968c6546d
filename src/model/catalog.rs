//! The catalog: repositories and tags, derived from the layout's ref names.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::name::split_tag;

/// Repositories and their tags, derived from `index.json` ref names (never
/// stored beside them). A ref without a `:tag` part is listed under its whole
/// name with the empty tag `""`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Repositories by name.
    pub repositories: BTreeMap<String, Repository>,
    /// RFC 3339 time of the newest change seen (the `index.json` mtime).
    pub updated_at: String,
}

/// One repository's tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// Tag -> manifest digest.
    pub tags: BTreeMap<String, String>,
    /// RFC 3339 time of the newest change seen.
    pub updated_at: String,
}

impl Catalog {
    /// Builds a catalog from `(ref name, digest)` pairs.
    pub fn from_refs<'a>(
        refs: impl IntoIterator<Item = (&'a str, String)>,
        updated_at: &str,
    ) -> Catalog {
        let mut repositories: BTreeMap<String, Repository> = BTreeMap::new();
        for (name, digest) in refs {
            let (repo, tag) = split_tag(name);
            let r = repositories.entry(repo.to_string()).or_default();
            r.tags.insert(tag.unwrap_or("").to_string(), digest);
            r.updated_at = updated_at.to_string();
        }
        Catalog {
            repositories,
            updated_at: updated_at.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_tags_by_repository() {
        let c = Catalog::from_refs(
            [
                ("sre-agent-bot:v1", "sha256:a".to_string()),
                ("sre-agent-bot:v2", "sha256:b".to_string()),
                ("ghcr.io/x/ubuntu:24.04", "sha256:c".to_string()),
                ("base", "sha256:d".to_string()),
            ],
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(c.repositories.len(), 3);
        assert_eq!(c.repositories["sre-agent-bot"].tags["v2"], "sha256:b");
        assert_eq!(c.repositories["ghcr.io/x/ubuntu"].tags["24.04"], "sha256:c");
        assert_eq!(c.repositories["base"].tags[""], "sha256:d");
    }
}
