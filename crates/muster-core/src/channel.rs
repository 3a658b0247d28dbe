//! Contact channels: the devices Muster pages (an e-mail address, an SMS number, a voice
//! number) and whether each has been activated.

use crate::ParseError;
use std::fmt;
use std::str::FromStr;

/// How a channel is reached. Wire names are the AWS ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    Email,
    Sms,
    Voice,
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Email => "EMAIL",
            ChannelType::Sms => "SMS",
            ChannelType::Voice => "VOICE",
        }
    }
}

impl FromStr for ChannelType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "EMAIL" => Ok(ChannelType::Email),
            "SMS" => Ok(ChannelType::Sms),
            "VOICE" => Ok(ChannelType::Voice),
            _ => Err(ParseError::new(format!(
                "channel type {s:?} must be EMAIL, SMS or VOICE"
            ))),
        }
    }
}

impl fmt::Display for ChannelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a channel may be paged. Channels start `NotActivated`; only an activation code
/// makes them `Activated`. Muster never pages a channel that is not activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationStatus {
    Activated,
    NotActivated,
}

impl ActivationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationStatus::Activated => "ACTIVATED",
            ActivationStatus::NotActivated => "NOT_ACTIVATED",
        }
    }
}

impl FromStr for ActivationStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "ACTIVATED" => Ok(ActivationStatus::Activated),
            "NOT_ACTIVATED" => Ok(ActivationStatus::NotActivated),
            _ => Err(ParseError::new(format!("unknown activation status {s:?}"))),
        }
    }
}

/// A delivery address valid for its channel type: an e-mail address for EMAIL, an E.164
/// number (`+` then country code and number, 7 to 15 digits) for SMS and VOICE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelAddress(String);

impl ChannelAddress {
    pub fn parse(channel_type: ChannelType, s: &str) -> Result<Self, ParseError> {
        match channel_type {
            ChannelType::Email => parse_email(s),
            ChannelType::Sms | ChannelType::Voice => parse_e164(s),
        }
        .map(|()| ChannelAddress(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_e164(s: &str) -> Result<(), ParseError> {
    let digits = s.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(ParseError::new(format!(
            "{s:?} is not an E.164 phone number: write '+' followed by the country code and \
             number, digits only, for example +12065550100"
        )))
    }
}

/// A practical e-mail check: `local@domain` with an RFC 5322 dot-atom local part and a
/// domain of at least two DNS labels. Quoted local parts and address literals are refused:
/// a pager address should be one a person can read back.
fn parse_email(s: &str) -> Result<(), ParseError> {
    let bad = |why: &str| {
        Err(ParseError::new(format!(
            "{s:?} is not an e-mail address: {why}"
        )))
    };
    if s.len() > 254 {
        return bad("longer than 254 characters");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return bad("it has no '@'");
    };
    if local.is_empty() || local.len() > 64 {
        return bad("the part before '@' must be 1 to 64 characters");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|p| p.is_empty() || !p.chars().all(atext))
    {
        return bad("the part before '@' has a character or dot that is not allowed");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad("the domain needs at least one dot, as in example.com");
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !labels.iter().all(label_ok) {
        return bad("the domain is not a valid host name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        for ok in [
            "+12065550100",
            "+442071838750",
            "+2901234",
            "+123456789012345",
        ] {
            assert!(ChannelAddress::parse(ChannelType::Sms, ok).is_ok(), "{ok}");
        }
        for bad in [
            "12065550100",
            "+1 206 555 0100",
            "+0123456789",
            "+123456",
            "+1234567890123456",
            "+1206555010a",
            "",
            "+",
        ] {
            assert!(
                ChannelAddress::parse(ChannelType::Voice, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "akua@example.com",
            "a.b+tag@mail.example.co.uk",
            "x_y@a-b.io",
        ] {
            assert!(
                ChannelAddress::parse(ChannelType::Email, ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "akua",
            "@example.com",
            "akua@",
            "akua@localhost",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@exa mple.com",
            "a b@example.com",
            "+12065550100",
        ] {
            assert!(
                ChannelAddress::parse(ChannelType::Email, bad).is_err(),
                "{bad}"
            );
        }
    }
}
