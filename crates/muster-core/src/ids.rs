//! Identifiers: accounts, regions, contact aliases.

use crate::ParseError;
use std::fmt;

/// A 12-digit account number. Every access key belongs to exactly one account, and
/// every resource is owned by one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(ParseError::new(format!(
                "account id {s:?} must be exactly 12 digits"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS-style region name such as `us-east-1`, used in ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(ParseError::new(format!(
                "region {s:?} must be lower-case letters, digits and dashes, like us-east-1"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A contact's alias: 1 to 255 of `a-z`, `0-9`, `_` and `-`. Unique per account, never
/// changed after creation; it is the last part of the contact's ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactAlias(String);

impl ContactAlias {
    /// The model members (`Shape$Member`) with exactly this rule (see [`crate::limits`]).
    pub const MEMBERS: &'static [&'static str] = &["CreateContactRequest$Alias"];
    /// The fewest and most characters the model accepts.
    pub const MIN_CHARS: usize = 1;
    pub const MAX_CHARS: usize = 255;
    /// The model's pattern, as the API quotes it.
    pub const PATTERN: &'static str = r"^[a-z0-9_\-]*$";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(ContactAlias(s.to_owned()))
        } else {
            Err(ParseError::new(format!(
                "alias {s:?} must be 1 to 255 characters of a-z, 0-9, _ and -"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContactAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(AccountId::parse("000000000000").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
    }

    #[test]
    fn aliases() {
        assert!(ContactAlias::parse("akua_mansa-2").is_ok());
        assert!(ContactAlias::parse("").is_err());
        assert!(ContactAlias::parse("Akua").is_err());
        assert!(ContactAlias::parse(&"a".repeat(256)).is_err());
        assert!(ContactAlias::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn regions() {
        assert!(Region::parse("eu-west-1").is_ok());
        assert!(Region::parse("EU").is_err());
        assert!(Region::parse("-x").is_err());
    }
}
