//! Field rules shared by every operation that takes them.

use crate::{Error, Result};

/// A login name: 1 to 64 characters of letters, digits and `.`, `_`, `-`, `@`.
pub fn username(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "username must be 1 to 64 characters of letters, digits, '.', '_', '-' or '@'".into(),
        ))
    }
}

/// The name of an enrollment protocol's profile, which is a segment of every URL its clients
/// hold: 1 to 63 lowercase letters, digits or hyphens, and none of `reserved` (the segments of
/// the protocol's own URLs, which a profile of that name would shadow).
pub fn profile_name(protocol: &str, name: &str, reserved: &[&str]) -> Result<()> {
    let well_formed = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(Error::Invalid(format!(
            "{protocol} profile name '{name}' must be 1 to 63 lowercase letters, digits or hyphens"
        )));
    }
    if reserved.contains(&name) {
        return Err(Error::Invalid(format!(
            "{protocol} profile name '{name}' is reserved: {protocol}'s own URLs use it"
        )));
    }
    Ok(())
}

/// An e-mail address: at most 254 characters, one `@` with text on both sides, no spaces.
pub fn email(address: &str) -> Result<()> {
    let ok = address.len() <= 254
        && !address.chars().any(char::is_whitespace)
        && address
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{}' is not a valid e-mail address",
            truncate(address)
        )))
    }
}

/// Free text such as a display name or a key name: `min..=max` characters, no control characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::Invalid(format!(
            "{field} must be {min} to {max} characters long"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(username("alice.smith@corp").is_ok());
        assert!(username("").is_err());
        assert!(username("has space").is_err());
        assert!(username(&"a".repeat(65)).is_err());
        assert!(email("a@b.example").is_ok());
        assert!(email("no-at").is_err());
        assert!(email("a@b@c").is_err());
        assert!(text("name", "ok", 1, 5).is_ok());
        assert!(text("name", "", 1, 5).is_err());
        assert!(text("name", "a\nb", 1, 5).is_err());
    }
}
