//! Muster's domain: the nouns of the paging service, parsed once at the edges into
//! types that cannot hold invalid values. No async and no I/O live here.
#![forbid(unsafe_code)]

pub mod alert;
pub mod arn;
pub mod channel;
pub mod clock;
pub mod contact;
pub mod engagement;
pub mod ical;
pub mod ids;
pub mod incident;
pub mod limits;
pub mod preview;
pub mod rotation;
pub mod status;

pub use arn::{Arn, ArnOf, ResourceRef, Service};
pub use channel::{ActivationStatus, ChannelAddress, ChannelType};
pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use contact::{ContactType, Plan, Stage, Target};
pub use ids::{AccountId, ContactAlias, Region};
pub use limits::{
    AcceptCode, AcceptNote, ActivationCode, ChannelName, DayOfMonth, DisplayName,
    EngagementContent, EngagementSubject, HourOfDay, IdempotencyToken, IncidentId, MinuteOfHour,
    OnCallCount, OverrideMembers, PlanRotations, RecurrenceMultiplier, RetryMinutes,
    RotationMembers, RotationName, Sender, StageMinutes, StopReasonText, TimeZoneId,
};
pub use status::{ReceiptKind, StopReason};

/// A value that failed to parse, with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(msg: impl Into<String>) -> Self {
        ParseError(msg.into())
    }
}
