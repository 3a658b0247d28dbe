//! Who is calling: established by authentication, passed to every operation.

use muster_core::{AccountId, Region};

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The account the access key belongs to; every resource touched belongs to it.
    pub account: AccountId,
    /// The region written into ARNs (from configuration).
    pub region: Region,
    /// The `x-amzn-RequestId` of this request.
    pub request_id: String,
    /// The access key that signed the request.
    pub access_key_id: String,
}

impl RequestContext {
    /// The application's caller: this request's account, region and access key.
    pub fn caller(&self) -> muster_app::Caller {
        let principal = match self.access_key_id.strip_prefix("console:") {
            // The console still calls through this adapter (until it calls the application
            // directly): its requests name the signed-in user.
            Some(user) => muster_app::Principal::ConsoleUser(user.to_owned()),
            None => muster_app::Principal::AccessKey(self.access_key_id.clone()),
        };
        muster_app::Caller {
            account: self.account.clone(),
            region: self.region.clone(),
            principal,
        }
    }
}
