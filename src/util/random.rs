//! Random ids, as docker makes them: 64 hex digits from the kernel's
//! random source.

use anyhow::{Context, Result};

/// 64 random hex digits (32 bytes of /dev/urandom).
pub fn hex_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| std::io::Read::read_exact(&mut urandom, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(super::hex::encode(&bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (super::hex_id().unwrap(), super::hex_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
