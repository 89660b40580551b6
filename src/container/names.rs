//! Container names: given with `--name` (checked as docker checks them) or
//! made up, docker-style, as ADJECTIVE_NOUN.

use anyhow::{bail, Result};

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "eager", "fair", "fancy",
    "gentle", "happy", "keen", "kind", "lively", "lucid", "merry", "modest", "neat", "nifty",
    "noble", "patient", "plucky", "proud", "quick", "quiet", "sharp", "shy", "steady", "sunny",
    "swift", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "young", "zealous", "zen",
];

const NOUNS: &[&str] = &[
    "albatross",
    "badger",
    "beaver",
    "bison",
    "caracal",
    "cheetah",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "gazelle",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "koala",
    "lemur",
    "lynx",
    "marmot",
    "narwhal",
    "ocelot",
    "otter",
    "panda",
    "pelican",
    "puffin",
    "quokka",
    "raven",
    "salmon",
    "seal",
    "sparrow",
    "tapir",
    "toucan",
    "urchin",
    "vole",
    "walrus",
    "wombat",
    "yak",
    "zebra",
];

/// docker's rule: a letter or digit, then letters, digits, `_`, `.`, `-`.
pub fn check(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    if !valid {
        bail!(
            "invalid container name {name:?}: use letters, digits, '_', '.' and '-', \
             starting with a letter or digit"
        );
    }
    Ok(())
}

/// A made-up name for container `id` (64 hex digits, random) that
/// `taken` does not refuse: pairs of the id's bytes pick the words, and
/// if every pair's name is taken, part of the id makes it unique.
pub fn made_up(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let bytes: Vec<u8> = (0..id.len() / 2)
        .filter_map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
        .collect();
    bytes
        .chunks(2)
        .map(generate)
        .find(|name| !taken(name))
        .unwrap_or_else(|| format!("{}_{}", generate(&bytes), &id[..8]))
}

/// A made-up name from `random` bytes.
fn generate(random: &[u8]) -> String {
    let pick = |i: usize| usize::from(random.get(i).copied().unwrap_or(0));
    format!(
        "{}_{}",
        ADJECTIVES[pick(0) % ADJECTIVES.len()],
        NOUNS[pick(1) % NOUNS.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "db-1", "a.b_c", "9lives"] {
            check(good).unwrap();
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "é"] {
            assert!(check(bad).is_err(), "{bad}");
        }
        check(&generate(&[7, 9])).unwrap();
        let id = "07090709".repeat(8);
        let first = made_up(&id, |_| false);
        check(&first).unwrap();
        let other = made_up(&id, |name| name == first);
        assert!(other.ends_with(&id[..8]), "{other}");
        check(&other).unwrap();
    }
}
