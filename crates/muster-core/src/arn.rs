//! ARNs of ssm-contacts resources, as AWS writes them:
//! `arn:aws:ssm-contacts:{region}:{account}:contact/{alias}`,
//! `contact-channel/{alias}/{uuid}`, `engagement/{alias}/{uuid}`, `page/{alias}/{uuid}`,
//! `rotation/{uuid}`.

use crate::{AccountId, ContactAlias, ParseError, Region};
use std::fmt;
use uuid::Uuid;

/// What an ARN points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceRef {
    Contact { alias: ContactAlias },
    ContactChannel { alias: ContactAlias, id: Uuid },
    Engagement { alias: ContactAlias, id: Uuid },
    Page { alias: ContactAlias, id: Uuid },
    Rotation { id: Uuid },
}

impl ResourceRef {
    /// The noun AWS uses in `ResourceType` of errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            ResourceRef::Contact { .. } => "CONTACT",
            ResourceRef::ContactChannel { .. } => "CONTACT_CHANNEL",
            ResourceRef::Engagement { .. } => "ENGAGEMENT",
            ResourceRef::Page { .. } => "PAGE",
            ResourceRef::Rotation { .. } => "ROTATION",
        }
    }
}

/// A parsed ssm-contacts ARN in the `aws` partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub region: Region,
    pub account: AccountId,
    pub resource: ResourceRef,
}

impl Arn {
    pub fn new(region: &Region, account: &AccountId, resource: ResourceRef) -> Self {
        Arn {
            region: region.clone(),
            account: account.clone(),
            resource,
        }
    }

    pub fn contact(region: &Region, account: &AccountId, alias: &ContactAlias) -> Self {
        Self::new(
            region,
            account,
            ResourceRef::Contact {
                alias: alias.clone(),
            },
        )
    }

    pub fn channel(region: &Region, account: &AccountId, alias: &ContactAlias, id: Uuid) -> Self {
        Self::new(
            region,
            account,
            ResourceRef::ContactChannel {
                alias: alias.clone(),
                id,
            },
        )
    }

    /// Parses an ARN. Anything that is not one of the resource shapes above is an error.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::new(format!("{s:?} is not an ssm-contacts ARN"));
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some("aws"),
            Some("ssm-contacts"),
            Some(region),
            Some(account),
            Some(rest),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(bad());
        };
        let region = Region::parse(region).map_err(|_| bad())?;
        let account = AccountId::parse(account).map_err(|_| bad())?;
        let segs: Vec<&str> = rest.split('/').collect();
        let alias = |a: &str| ContactAlias::parse(a).map_err(|_| bad());
        let id = |u: &str| {
            // Only the canonical hyphenated lower-case form is one of ours.
            Uuid::parse_str(u)
                .ok()
                .filter(|p| p.hyphenated().to_string() == u)
                .ok_or_else(bad)
        };
        let resource = match segs.as_slice() {
            ["contact", a] => ResourceRef::Contact { alias: alias(a)? },
            ["contact-channel", a, u] => ResourceRef::ContactChannel {
                alias: alias(a)?,
                id: id(u)?,
            },
            ["engagement", a, u] => ResourceRef::Engagement {
                alias: alias(a)?,
                id: id(u)?,
            },
            ["page", a, u] => ResourceRef::Page {
                alias: alias(a)?,
                id: id(u)?,
            },
            ["rotation", u] => ResourceRef::Rotation { id: id(u)? },
            _ => return Err(bad()),
        };
        Ok(Arn {
            region,
            account,
            resource,
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:aws:ssm-contacts:{}:{}:", self.region, self.account)?;
        match &self.resource {
            ResourceRef::Contact { alias } => write!(f, "contact/{alias}"),
            ResourceRef::ContactChannel { alias, id } => write!(f, "contact-channel/{alias}/{id}"),
            ResourceRef::Engagement { alias, id } => write!(f, "engagement/{alias}/{id}"),
            ResourceRef::Page { alias, id } => write!(f, "page/{alias}/{id}"),
            ResourceRef::Rotation { id } => write!(f, "rotation/{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "arn:aws:ssm-contacts:us-east-1:111122223333:contact/akuam",
            "arn:aws:ssm-contacts:us-east-2:111122223333:contact-channel/akuam/fc7405c4-46b2-48b7-87b2-93e2f225b90d",
            "arn:aws:ssm-contacts:us-east-2:111122223333:engagement/akuam/607ced0e-e8fa-4ea7-8958-a237b8803f8f",
            "arn:aws:ssm-contacts:us-east-2:111122223333:page/akuam/ad0052bd-e606-498a-861b-25726292eb93",
            "arn:aws:ssm-contacts:us-east-2:111122223333:rotation/ad0052bd-e606-498a-861b-25726292eb93",
        ] {
            assert_eq!(Arn::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_others() {
        for s in [
            "",
            "arn:aws:ssm-contacts:us-east-1:111122223333:contact/",
            "arn:aws:ssm-contacts:us-east-1:111122223333:contact/a/b",
            "arn:aws:ssm-contacts:us-east-1:1111:contact/a",
            "arn:aws:sns:us-east-1:111122223333:contact/a",
            "arn:aws:ssm-contacts:us-east-1:111122223333:contact-channel/a/not-a-uuid",
            "arn:aws:ssm-contacts:us-east-1:111122223333:contact-channel/a/FC7405C4-46B2-48B7-87B2-93E2F225B90D",
        ] {
            assert!(Arn::parse(s).is_err(), "{s}");
        }
    }
}
