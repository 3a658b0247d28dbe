//! Who is calling: established by the adapter (a verified signature, a console session, a
//! webhook's signature, the process itself) and passed to every operation. No adapter fakes
//! another's request context: each says who it is here.

use muster_core::{AccountId, Arn, ArnOf, Region, ResourceRef};

use crate::AppError;

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An AWS access key (the AWS API).
    AccessKey(String),
    /// A signed-in console user (by e-mail).
    ConsoleUser(String),
    /// An inbound integration: a provider webhook, a link in a message, an alert source.
    Integration(String),
    /// Muster itself: jobs, the auditor, the command line.
    System,
}

/// The account and principal of one operation.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Every resource touched belongs to this account.
    pub account: AccountId,
    /// The region written into (and expected in) `ssm-contacts` ARNs.
    pub region: Region,
    pub principal: Principal,
}

impl Caller {
    /// The ARN of a resource of this caller's account.
    pub fn arn(&self, of: ArnOf<'_>) -> String {
        of.in_account(self.region.as_str(), self.account.as_str())
    }

    /// Parses an ARN that must name a resource of the caller's account (and region, where
    /// its service has regions). Anything else names nothing this caller can see:
    /// [`AppError::NotFound`] of `kind`.
    pub fn own(&self, s: &str, kind: &'static str) -> Result<ResourceRef, AppError> {
        match Arn::parse(s) {
            Ok(arn) if arn.is_in(&self.region, &self.account) => Ok(arn.resource),
            _ => Err(AppError::not_found(kind, s)),
        }
    }

    /// The caller as an IAM-style principal ARN, for `createdBy` / `lastModifiedBy` of
    /// incidents: an access key is `user/<key id>`, a console user `user/console/<e-mail>`,
    /// an integration `role/muster-integration/<name>`, Muster itself `role/muster`.
    pub fn principal_arn(&self) -> String {
        let account = self.account.as_str();
        match &self.principal {
            Principal::AccessKey(k) => format!("arn:aws:iam::{account}:user/{k}"),
            Principal::ConsoleUser(u) => format!("arn:aws:iam::{account}:user/console/{u}"),
            Principal::Integration(i) => {
                format!("arn:aws:iam::{account}:role/muster-integration/{i}")
            }
            Principal::System => format!("arn:aws:iam::{account}:role/muster"),
        }
    }

    /// Who acted, for logs and receipts: `key AKIA…`, `console ann@…`, `twilio`, `system`.
    pub fn who(&self) -> String {
        match &self.principal {
            Principal::AccessKey(k) => format!("key {k}"),
            Principal::ConsoleUser(u) => format!("console {u}"),
            Principal::Integration(i) => i.clone(),
            Principal::System => "system".into(),
        }
    }
}
