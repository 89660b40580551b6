//! `--filter KEY=VALUE` as docker reads it: filters of one key are
//! alternatives (any may match), filters of different keys all apply.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// `given` (each `KEY=VALUE`), whose keys must be among `known`.
    pub fn parse(given: &[String], known: &[&str]) -> Result<Filters> {
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for filter in given {
            let Some((key, value)) = filter.split_once('=') else {
                bail!(
                    "bad filter {filter:?}: give KEY=VALUE (keys: {})",
                    known.join(", ")
                );
            };
            if !known.contains(&key) {
                bail!(
                    "invalid filter '{key}': this command filters by {}",
                    known.join(", ")
                );
            }
            filters
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        Ok(Filters(filters))
    }

    /// The values given for `key`.
    pub fn values(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether `key` is not filtered on, or one of its values passes `test`.
    pub fn allows(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        self.0
            .get(key)
            .is_none_or(|values| values.iter().any(|v| test(v)))
    }
}

/// docker's `label=KEY` (the label is set) or `label=KEY=VALUE`.
pub fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(filter),
    }
}

/// A name filter: docker takes a regular expression; rocker takes its
/// common forms, a part of the name, with `^` and `$` anchoring it.
pub fn name_matches(filter: &str, name: &str) -> bool {
    let (start, rest) = match filter.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, filter),
    };
    let (end, core) = match rest.strip_suffix('$') {
        Some(core) => (true, core),
        None => (false, rest),
    };
    match (start, end) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_docker_combines_them() {
        let given: Vec<String> = ["status=exited", "status=created", "name=web"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let filters = Filters::parse(&given, &["status", "name", "label"]).unwrap();
        assert!(filters.allows("status", |s| s == "created"));
        assert!(!filters.allows("status", |s| s == "running"));
        assert!(
            filters.allows("label", |_| false),
            "no label filter: all pass"
        );
        assert!(Filters::parse(&["colour=red".to_string()], &["name"]).is_err());
        assert!(Filters::parse(&["name".to_string()], &["name"]).is_err());
        let labels: BTreeMap<String, String> = [("team".to_string(), "core".to_string())].into();
        assert!(label_matches("team", &labels) && label_matches("team=core", &labels));
        assert!(!label_matches("team=edge", &labels) && !label_matches("tier", &labels));
        assert!(name_matches("web", "my-web-1") && name_matches("^my", "my-web-1"));
        assert!(name_matches("^web$", "web") && !name_matches("^web$", "web2"));
    }
}
