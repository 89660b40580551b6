//! The names docker gives its own objects (volumes, networks): a letter
//! or digit, then letters, digits, `_`, `.` and `-`; two characters at
//! least.

use anyhow::{bail, Result};

/// Checks `name` for an object of `kind` ("volume", "network").
pub fn check_object_name(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() < 2 {
        bail!(
            "invalid {kind} name {name:?}: two or more letters, digits, '_', '.' or '-', \
             beginning with a letter or digit"
        );
    }
    Ok(())
}
