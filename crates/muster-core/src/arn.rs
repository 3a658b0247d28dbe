//! Every ARN Muster writes or reads, for both services it speaks, as AWS writes them:
//!
//! - `ssm-contacts` (with a region): `arn:aws:ssm-contacts:{region}:{account}:contact/{alias}`,
//!   `contact-channel/{alias}/{uuid}`, `engagement/{alias}/{uuid}`, `page/{alias}/{uuid}`,
//!   `rotation/{uuid}`;
//! - `ssm-incidents` (global: the region is empty):
//!   `arn:aws:ssm-incidents::{account}:response-plan/{name}`,
//!   `incident-record/{response plan name}/{uuid}`, `replication-set/{uuid}`.
//!
//! [`Arn`] is the parsed form; [`ArnOf`] builds the text from parts already known to be valid
//! (stored records) without copying them, which is what the engine does per page. Both write
//! through one function, so the two cannot disagree; nothing else in Muster formats an ARN.

use crate::{AccountId, ContactAlias, ParseError, Region};
use std::fmt;
use uuid::Uuid;

/// The AWS service an ARN belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `ssm-contacts`: regional.
    Contacts,
    /// `ssm-incidents`: global, its ARNs have an empty region.
    Incidents,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Contacts => "ssm-contacts",
            Service::Incidents => "ssm-incidents",
        }
    }
}

/// What an ARN points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceRef {
    Contact {
        alias: ContactAlias,
    },
    ContactChannel {
        alias: ContactAlias,
        id: Uuid,
    },
    Engagement {
        alias: ContactAlias,
        id: Uuid,
    },
    Page {
        alias: ContactAlias,
        id: Uuid,
    },
    Rotation {
        id: Uuid,
    },
    /// A response plan: its name is 1 to 200 of `a-zA-Z0-9-_`.
    ResponsePlan {
        name: String,
    },
    /// An incident record, under the name of the response plan that started it.
    IncidentRecord {
        plan: String,
        id: Uuid,
    },
    ReplicationSet {
        id: Uuid,
    },
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
            ResourceRef::ResponsePlan { .. } => "RESPONSE_PLAN",
            ResourceRef::IncidentRecord { .. } => "INCIDENT_RECORD",
            ResourceRef::ReplicationSet { .. } => "REPLICATION_SET",
        }
    }

    fn of(&self) -> ArnOf<'_> {
        match self {
            ResourceRef::Contact { alias } => ArnOf::Contact(alias.as_str()),
            ResourceRef::ContactChannel { alias, id } => ArnOf::ContactChannel(alias.as_str(), *id),
            ResourceRef::Engagement { alias, id } => ArnOf::Engagement(alias.as_str(), *id),
            ResourceRef::Page { alias, id } => ArnOf::Page(alias.as_str(), *id),
            ResourceRef::Rotation { id } => ArnOf::Rotation(*id),
            ResourceRef::ResponsePlan { name } => ArnOf::ResponsePlan(name),
            ResourceRef::IncidentRecord { plan, id } => ArnOf::IncidentRecord(plan, *id),
            ResourceRef::ReplicationSet { id } => ArnOf::ReplicationSet(*id),
        }
    }
}

/// A parsed ARN in the `aws` partition. `region` is `None` exactly for `ssm-incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub region: Option<Region>,
    pub account: AccountId,
    pub resource: ResourceRef,
}

/// An ARN's resource, borrowed: what [`ArnOf::in_account`] writes from stored parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnOf<'a> {
    Contact(&'a str),
    ContactChannel(&'a str, Uuid),
    Engagement(&'a str, Uuid),
    Page(&'a str, Uuid),
    Rotation(Uuid),
    ResponsePlan(&'a str),
    IncidentRecord(&'a str, Uuid),
    ReplicationSet(Uuid),
}

impl<'a> ArnOf<'a> {
    pub fn service(self) -> Service {
        match self {
            ArnOf::Contact(_)
            | ArnOf::ContactChannel(..)
            | ArnOf::Engagement(..)
            | ArnOf::Page(..)
            | ArnOf::Rotation(_) => Service::Contacts,
            ArnOf::ResponsePlan(_) | ArnOf::IncidentRecord(..) | ArnOf::ReplicationSet(_) => {
                Service::Incidents
            }
        }
    }

    /// The ARN text of this resource in `account`. `region` is written for `ssm-contacts`
    /// and ignored for `ssm-incidents`, whose ARNs have none.
    pub fn in_account(self, region: &str, account: &str) -> String {
        let mut s = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write_arn(&mut s, region, account, self);
        s
    }
}

fn write_arn(f: &mut impl fmt::Write, region: &str, account: &str, of: ArnOf<'_>) -> fmt::Result {
    let service = of.service();
    let region = match service {
        Service::Contacts => region,
        Service::Incidents => "",
    };
    write!(f, "arn:aws:{}:{region}:{account}:", service.as_str())?;
    match of {
        ArnOf::Contact(alias) => write!(f, "contact/{alias}"),
        ArnOf::ContactChannel(alias, id) => write!(f, "contact-channel/{alias}/{id}"),
        ArnOf::Engagement(alias, id) => write!(f, "engagement/{alias}/{id}"),
        ArnOf::Page(alias, id) => write!(f, "page/{alias}/{id}"),
        ArnOf::Rotation(id) => write!(f, "rotation/{id}"),
        ArnOf::ResponsePlan(name) => write!(f, "response-plan/{name}"),
        ArnOf::IncidentRecord(plan, id) => write!(f, "incident-record/{plan}/{id}"),
        ArnOf::ReplicationSet(id) => write!(f, "replication-set/{id}"),
    }
}

/// A response plan's name: 1 to 200 of `a-zA-Z0-9-_` (the model's pattern and length).
fn plan_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Arn {
    pub fn new(region: &Region, account: &AccountId, resource: ResourceRef) -> Self {
        let region = match resource.of().service() {
            Service::Contacts => Some(region.clone()),
            Service::Incidents => None,
        };
        Arn {
            region,
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

    pub fn service(&self) -> Service {
        self.resource.of().service()
    }

    /// Whether this ARN names a resource of `account`, in `region` where its service has
    /// regions.
    pub fn is_in(&self, region: &Region, account: &AccountId) -> bool {
        self.account == *account
            && match &self.region {
                Some(r) => r == region,
                None => true,
            }
    }

    /// Parses an ARN. Anything that is not one of the resource shapes above is an error.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        // The message names the service the text claims (ssm-contacts unless it says otherwise).
        let claimed = if s.starts_with("arn:aws:ssm-incidents:") {
            Service::Incidents
        } else {
            Service::Contacts
        };
        let bad = || ParseError::new(format!("{s:?} is not an {} ARN", claimed.as_str()));
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some("aws"), Some(service), Some(region), Some(account), Some(rest)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let service = match service {
            "ssm-contacts" => Service::Contacts,
            "ssm-incidents" => Service::Incidents,
            _ => return Err(bad()),
        };
        let region = match (service, region) {
            (Service::Contacts, r) => Some(Region::parse(r).map_err(|_| bad())?),
            (Service::Incidents, "") => None,
            (Service::Incidents, _) => return Err(bad()),
        };
        let account = AccountId::parse(account).map_err(|_| bad())?;
        let segs: Vec<&str> = rest.split('/').collect();
        let alias = |a: &str| ContactAlias::parse(a).map_err(|_| bad());
        let plan = |p: &str| {
            if plan_name_ok(p) {
                Ok(p.to_owned())
            } else {
                Err(bad())
            }
        };
        let id = |u: &str| {
            // Only the canonical hyphenated lower-case form is one of ours.
            Uuid::parse_str(u)
                .ok()
                .filter(|p| p.hyphenated().to_string() == u)
                .ok_or_else(bad)
        };
        let resource = match (service, segs.as_slice()) {
            (Service::Contacts, ["contact", a]) => ResourceRef::Contact { alias: alias(a)? },
            (Service::Contacts, ["contact-channel", a, u]) => ResourceRef::ContactChannel {
                alias: alias(a)?,
                id: id(u)?,
            },
            (Service::Contacts, ["engagement", a, u]) => ResourceRef::Engagement {
                alias: alias(a)?,
                id: id(u)?,
            },
            (Service::Contacts, ["page", a, u]) => ResourceRef::Page {
                alias: alias(a)?,
                id: id(u)?,
            },
            (Service::Contacts, ["rotation", u]) => ResourceRef::Rotation { id: id(u)? },
            (Service::Incidents, ["response-plan", p]) => {
                ResourceRef::ResponsePlan { name: plan(p)? }
            }
            (Service::Incidents, ["incident-record", p, u]) => ResourceRef::IncidentRecord {
                plan: plan(p)?,
                id: id(u)?,
            },
            (Service::Incidents, ["replication-set", u]) => {
                ResourceRef::ReplicationSet { id: id(u)? }
            }
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
        let region = self.region.as_ref().map(Region::as_str).unwrap_or("");
        write_arn(f, region, self.account.as_str(), self.resource.of())
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
            "arn:aws:ssm-incidents::111122223333:response-plan/db-Outage_2",
            "arn:aws:ssm-incidents::111122223333:incident-record/db-Outage_2/ad0052bd-e606-498a-861b-25726292eb93",
            "arn:aws:ssm-incidents::111122223333:replication-set/ad0052bd-e606-498a-861b-25726292eb93",
        ] {
            let arn = Arn::parse(s).unwrap();
            assert_eq!(arn.to_string(), s);
            // The borrowed builder writes the same text as the parsed form.
            let region = arn
                .region
                .as_ref()
                .map(Region::as_str)
                .unwrap_or("us-east-9");
            assert_eq!(
                arn.resource.of().in_account(region, arn.account.as_str()),
                s
            );
        }
    }

    #[test]
    fn builders_write_what_aws_writes() {
        let id = Uuid::parse_str("fc7405c4-46b2-48b7-87b2-93e2f225b90d").unwrap();
        assert_eq!(
            ArnOf::ContactChannel("akuam", id).in_account("eu-west-1", "000000000000"),
            "arn:aws:ssm-contacts:eu-west-1:000000000000:contact-channel/akuam/fc7405c4-46b2-48b7-87b2-93e2f225b90d"
        );
        // ssm-incidents is global: the region given is not written.
        assert_eq!(
            ArnOf::IncidentRecord("plan", id).in_account("eu-west-1", "000000000000"),
            "arn:aws:ssm-incidents::000000000000:incident-record/plan/fc7405c4-46b2-48b7-87b2-93e2f225b90d"
        );
        let region = Region::parse("eu-west-1").unwrap();
        let account = AccountId::parse("000000000000").unwrap();
        let plan = Arn::new(
            &region,
            &account,
            ResourceRef::ResponsePlan { name: "db".into() },
        );
        assert_eq!(plan.region, None);
        assert_eq!(
            plan.to_string(),
            "arn:aws:ssm-incidents::000000000000:response-plan/db"
        );
        // Global resources belong to the account in every region; regional ones only in theirs.
        assert!(plan.is_in(&Region::parse("us-east-1").unwrap(), &account));
        let contact = Arn::contact(&region, &account, &ContactAlias::parse("a").unwrap());
        assert!(contact.is_in(&region, &account));
        assert!(!contact.is_in(&Region::parse("us-east-1").unwrap(), &account));
        assert!(!contact.is_in(&region, &AccountId::parse("111122223333").unwrap()));
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
            // ssm-contacts needs a region, ssm-incidents has none.
            "arn:aws:ssm-contacts::111122223333:contact/a",
            "arn:aws:ssm-incidents:us-east-1:111122223333:response-plan/p",
            // Each service has only its own resources.
            "arn:aws:ssm-incidents::111122223333:contact/a",
            "arn:aws:ssm-contacts:us-east-1:111122223333:response-plan/p",
            "arn:aws:ssm-incidents::111122223333:response-plan/",
            "arn:aws:ssm-incidents::111122223333:response-plan/a.b",
            "arn:aws:ssm-incidents::111122223333:incident-record/p/not-a-uuid",
        ] {
            assert!(Arn::parse(s).is_err(), "{s}");
        }
        let long = format!(
            "arn:aws:ssm-incidents::111122223333:response-plan/{}",
            "p".repeat(201)
        );
        assert!(Arn::parse(&long).is_err());
        let longest = format!(
            "arn:aws:ssm-incidents::111122223333:response-plan/{}",
            "p".repeat(200)
        );
        assert!(Arn::parse(&longest).is_ok());
    }
}
