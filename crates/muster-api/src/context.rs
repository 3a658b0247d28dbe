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
