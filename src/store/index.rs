//! `index.json`: the layout's roots and tags, kept raw so that nothing another
//! tool put there is lost when epoch-store rewrites it.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::model::name::RefName;
use crate::model::{Descriptor, annotation, media_type};

/// The parsed `index.json`. Unknown top-level fields, entries and annotations
/// are kept in their original order and spelling; only the entries
/// epoch-store changes are rewritten.
#[derive(Clone, Debug, PartialEq)]
pub struct Index {
    object: Map<String, Value>,
    entries: Vec<Descriptor>,
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        let mut object = Map::new();
        object.insert("schemaVersion".into(), 2.into());
        object.insert("mediaType".into(), media_type::OCI_INDEX.into());
        object.insert("manifests".into(), Value::Array(vec![]));
        Index {
            object,
            entries: vec![],
        }
    }

    /// Parses `index.json`'s bytes.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`] about "index.json", naming what is wrong
    /// (and which entry); callers that know the file name it with
    /// `in_document`.
    pub fn parse(raw: &[u8]) -> Result<Index> {
        Index::parse_reason(raw).map_err(|reason| Error::document("index.json", reason))
    }

    fn parse_reason(raw: &[u8]) -> std::result::Result<Index, String> {
        let value: Value =
            serde_json::from_slice(raw).map_err(|e| format!("malformed JSON: {e}"))?;
        let Value::Object(mut object) = value else {
            return Err("not a JSON object".into());
        };
        match object.get("schemaVersion") {
            Some(v) if v == 2 => {}
            Some(v) => return Err(format!("schemaVersion is {v}, expected 2")),
            None => return Err("schemaVersion is missing".into()),
        }
        if let Some(mt) = object.get("mediaType")
            && mt != media_type::OCI_INDEX
        {
            return Err(format!(
                "mediaType is {mt}, expected {:?}",
                media_type::OCI_INDEX
            ));
        }
        if object.contains_key("layers") || object.contains_key("config") {
            return Err("ambiguous: an index with `config` or `layers`".into());
        }
        let list = match object.get("manifests") {
            Some(Value::Array(list)) => list,
            // oras (oras-go's layout store) writes an emptied layout's list
            // as `null`, Go's nil slice: no entries. The next write stores `[]`.
            Some(Value::Null) => {
                object.insert("manifests".into(), Value::Array(vec![]));
                return Ok(Index {
                    object,
                    entries: vec![],
                });
            }
            Some(_) => return Err("`manifests` is not an array".into()),
            None => return Err("`manifests` is missing".into()),
        };
        let entries = list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Descriptor::deserialize(v)
                    .map_err(|e| format!("manifests[{i}] is not a valid descriptor: {e}"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Index { object, entries })
    }

    /// The bytes to store: compact JSON, as other tools write it.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.object).expect("a JSON map always serializes")
    }

    /// Every entry, tagged or not, in order.
    pub fn entries(&self) -> &[Descriptor] {
        &self.entries
    }

    /// The entry tagged `name`, if any: the one lookup of a ref name.
    /// Entries that repeat a name with the same digest are one entry; with
    /// different digests the name is ambiguous and nothing is picked.
    ///
    /// # Errors
    /// [`Error::AmbiguousRef`] naming the digests.
    pub fn find(&self, name: &str) -> Result<Option<&Descriptor>> {
        let mut found: Option<&Descriptor> = None;
        let mut digests: Vec<Digest> = Vec::new();
        for d in self.entries.iter().filter(|d| d.ref_name() == Some(name)) {
            if !digests.contains(&d.digest) {
                digests.push(d.digest.clone());
            }
            found.get_or_insert(d);
        }
        if digests.len() > 1 {
            return Err(Error::AmbiguousRef {
                name: name.to_string(),
                digests,
            });
        }
        Ok(found)
    }

    /// Whether some entry is tagged exactly `name` (valid or not).
    pub fn has_ref(&self, name: &str) -> bool {
        self.entries.iter().any(|d| d.ref_name() == Some(name))
    }

    /// Every ref name that more than one entry carries with different
    /// digests, with those digests in index order.
    pub fn ambiguous_refs(&self) -> Vec<(&str, Vec<&Digest>)> {
        let mut by_name: HashMap<&str, Vec<&Digest>> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (name, d) in self.refs() {
            let digests = by_name.entry(name).or_insert_with(|| {
                order.push(name);
                Vec::new()
            });
            if !digests.contains(&&d.digest) {
                digests.push(&d.digest);
            }
        }
        order
            .into_iter()
            .filter_map(|name| {
                let digests = by_name.remove(name)?;
                (digests.len() > 1).then_some((name, digests))
            })
            .collect()
    }

    /// Every `(ref name, entry)` pair.
    pub fn refs(&self) -> impl Iterator<Item = (&str, &Descriptor)> {
        self.entries
            .iter()
            .filter_map(|d| d.ref_name().map(|r| (r, d)))
    }

    /// Points `name` at `target`: the entry already tagged `name` is replaced in
    /// place (any duplicates of it are dropped); otherwise a new entry is
    /// appended. `target`'s own annotations and platform are kept, with the
    /// ref name set; a [`RefName`] has been checked against the grammar.
    /// Returns the entry the ref pointed at before, if any.
    pub fn set_ref(&mut self, name: &RefName, target: &Descriptor) -> Option<Descriptor> {
        let name = name.as_str();
        let mut entry = target.clone();
        entry.data = None;
        entry
            .annotations
            .insert(annotation::REF_NAME.into(), name.into());
        let positions: Vec<usize> = self.positions(|d| d.ref_name() == Some(name));
        match positions.first() {
            Some(&first) => {
                for &i in positions[1..].iter().rev() {
                    self.remove_at(i);
                }
                self.list_mut()[first] = to_value(&entry);
                Some(std::mem::replace(&mut self.entries[first], entry))
            }
            None => {
                self.push(entry);
                None
            }
        }
    }

    /// Removes every entry tagged `name`; returns whether there was one.
    pub fn remove_ref(&mut self, name: &str) -> bool {
        let positions = self.positions(|d| d.ref_name() == Some(name));
        for &i in positions.iter().rev() {
            self.remove_at(i);
        }
        !positions.is_empty()
    }

    /// Removes every untagged entry of `digest` (a root without a ref name:
    /// what `add` without `--ref` makes, a referrer `oras attach` lists);
    /// entries that carry a ref name stay. Returns whether there was one.
    pub fn remove_untagged(&mut self, digest: &Digest) -> bool {
        let positions = self.positions(|d| &d.digest == digest && d.ref_name().is_none());
        for &i in positions.iter().rev() {
            self.remove_at(i);
        }
        !positions.is_empty()
    }

    /// Adds an untagged entry for `target` (a root for gc) unless one exists.
    pub fn add_untagged(&mut self, target: &Descriptor) {
        let exists = self
            .entries
            .iter()
            .any(|d| d.digest == target.digest && d.ref_name().is_none());
        if !exists {
            let mut entry = target.clone();
            entry.annotations.remove(annotation::REF_NAME);
            entry.data = None;
            self.push(entry);
        }
    }

    /// Whether any entry points at `digest`.
    pub fn contains_digest(&self, digest: &Digest) -> bool {
        self.entries.iter().any(|d| &d.digest == digest)
    }

    fn positions(&self, pred: impl Fn(&Descriptor) -> bool) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| pred(&self.entries[i]))
            .collect()
    }

    fn push(&mut self, entry: Descriptor) {
        self.list_mut().push(to_value(&entry));
        self.entries.push(entry);
    }

    fn remove_at(&mut self, i: usize) {
        self.entries.remove(i);
        self.list_mut().remove(i);
    }

    fn list_mut(&mut self) -> &mut Vec<Value> {
        match self.object.get_mut("manifests") {
            Some(Value::Array(list)) => list,
            _ => unreachable!("parse and new guarantee a manifests array"),
        }
    }
}

fn to_value(d: &Descriptor) -> Value {
    serde_json::to_value(d).expect("a descriptor always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::Algorithm;

    fn desc(n: u8) -> Descriptor {
        Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::of_bytes(Algorithm::Sha256, &[n]),
            n as u64,
        )
    }

    #[test]
    fn keeps_unknown_fields_and_foreign_entries() {
        let raw = br#"{"schemaVersion":2,"zzz":{"keep":[1,2]},"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"other.tool":"x","org.opencontainers.image.ref.name":"a:1"},"weird":true}],"annotations":{"k":"v"}}"#;
        let mut idx = Index::parse(raw).unwrap();
        idx.set_ref(&"b:1".parse().unwrap(), &desc(1));
        let out: Value = serde_json::from_slice(&idx.to_bytes()).unwrap();
        assert_eq!(out["zzz"]["keep"][1], 2);
        assert_eq!(out["annotations"]["k"], "v");
        assert_eq!(out["manifests"][0]["weird"], true);
        assert_eq!(out["manifests"][0]["annotations"]["other.tool"], "x");
        assert_eq!(
            out["manifests"][1]["annotations"][annotation::REF_NAME],
            "b:1"
        );
        // Key order of the untouched document is kept.
        let s = String::from_utf8(idx.to_bytes()).unwrap();
        assert!(s.find("zzz").unwrap() < s.find("manifests").unwrap());
    }

    #[test]
    fn moving_a_tag_replaces_its_entry() {
        let mut idx = Index::new();
        assert_eq!(idx.set_ref(&"a:1".parse().unwrap(), &desc(1)), None);
        idx.set_ref(&"a:2".parse().unwrap(), &desc(1));
        let old = idx
            .set_ref(&"a:1".parse().unwrap(), &desc(2))
            .expect("a:1 existed");
        assert_eq!(old.digest, desc(1).digest);
        assert_eq!(idx.entries().len(), 2);
        assert_eq!(idx.find("a:1").unwrap().unwrap().digest, desc(2).digest);
        assert_eq!(idx.find("a:2").unwrap().unwrap().digest, desc(1).digest);
        assert!(idx.remove_ref("a:2"));
        assert!(!idx.remove_ref("a:2"));
        assert_eq!(Index::parse(&idx.to_bytes()).unwrap(), idx);
    }

    #[test]
    fn duplicate_refs_from_other_tools_collapse() {
        let mut idx = Index::new();
        idx.push({
            let mut d = desc(1);
            d.annotations
                .insert(annotation::REF_NAME.into(), "x".into());
            d
        });
        idx.push({
            let mut d = desc(2);
            d.annotations
                .insert(annotation::REF_NAME.into(), "x".into());
            d
        });
        idx.set_ref(&"x".parse().unwrap(), &desc(3));
        assert_eq!(idx.entries().len(), 1);
        assert_eq!(idx.find("x").unwrap().unwrap().digest, desc(3).digest);
    }

    #[test]
    fn a_null_manifests_list_is_an_empty_one() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null,"annotations":{"k":"v"}}"#;
        let mut idx = Index::parse(raw).unwrap();
        assert!(idx.entries().is_empty());
        idx.set_ref(&"a:1".parse().unwrap(), &desc(1));
        let out: Value = serde_json::from_slice(&idx.to_bytes()).unwrap();
        assert_eq!(out["manifests"].as_array().map(Vec::len), Some(1));
        assert_eq!(out["annotations"]["k"], "v");
        let empty = Index::parse(raw).unwrap().to_bytes();
        let out: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(out["manifests"], Value::Array(vec![]));
    }

    #[test]
    fn rejects_broken_indexes() {
        for bad in [
            &b"[]"[..],
            b"{\"schemaVersion\":1,\"manifests\":[]}",
            b"{\"schemaVersion\":2}",
            b"{\"schemaVersion\":2,\"manifests\":{}}",
            b"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:../x\",\"size\":1}]}",
            b"{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}",
            b"{\"schemaVersion\":2,\"manifests\":[",
        ] {
            assert!(Index::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn untagged_entries_are_not_duplicated() {
        let mut idx = Index::new();
        idx.add_untagged(&desc(1));
        idx.add_untagged(&desc(1));
        assert_eq!(idx.entries().len(), 1);
        assert!(idx.contains_digest(&desc(1).digest));
    }

    #[test]
    fn removing_untagged_entries_leaves_the_tagged_ones() {
        let mut idx = Index::new();
        idx.add_untagged(&desc(1));
        idx.set_ref(&"a:1".parse().unwrap(), &desc(1));
        idx.push(desc(1));
        idx.add_untagged(&desc(2));
        assert!(idx.remove_untagged(&desc(1).digest));
        assert!(!idx.remove_untagged(&desc(1).digest));
        let left: Vec<_> = idx
            .entries()
            .iter()
            .map(|d| (d.ref_name(), d.digest.clone()))
            .collect();
        assert_eq!(
            left,
            vec![(Some("a:1"), desc(1).digest), (None, desc(2).digest)]
        );
        assert_eq!(Index::parse(&idx.to_bytes()).unwrap(), idx);
    }
}
