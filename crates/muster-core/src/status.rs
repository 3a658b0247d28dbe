//! What happened to a page ([`ReceiptKind`]) and why an engagement ended ([`StopReason`]),
//! with the exact strings the store keeps and the AWS API shows.

use std::fmt;

/// The kind of a page receipt: the AWS `ReceiptType` values, stored as their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// The provider took the message.
    Sent,
    /// The provider reports it delivered (or a reply came back).
    Delivered,
    /// Acknowledged (AcceptPage READ, an SMS code, a keypress, a link).
    Read,
    /// It could not be sent or delivered.
    Error,
    /// No more sends: the engagement ended or the channel stopped.
    Stop,
}

impl ReceiptKind {
    pub const ALL: [ReceiptKind; 5] = [
        ReceiptKind::Sent,
        ReceiptKind::Delivered,
        ReceiptKind::Read,
        ReceiptKind::Error,
        ReceiptKind::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Sent => "SENT",
            ReceiptKind::Delivered => "DELIVERED",
            ReceiptKind::Read => "READ",
            ReceiptKind::Error => "ERROR",
            ReceiptKind::Stop => "STOP",
        }
    }

    /// The kind a stored string names (`None` for anything else).
    pub fn parse(s: &str) -> Option<ReceiptKind> {
        ReceiptKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an engagement ended, as stored in its `stop_reason`: `completed` (its plan ran out),
/// `acknowledged`, or `stopped` with the reason StopEngagement gave (`stopped: {reason}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StopReason {
    Completed,
    Acknowledged,
    Stopped(Option<String>),
}

impl StopReason {
    /// A StopEngagement with `reason` (blank reasons are none).
    pub fn stopped(reason: Option<&str>) -> StopReason {
        StopReason::Stopped(
            reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
        )
    }

    /// The reason a stored string names; text that is none of the three reads as a stop
    /// with that text (rows written by hand).
    pub fn parse(s: &str) -> StopReason {
        match s {
            "completed" => StopReason::Completed,
            "acknowledged" => StopReason::Acknowledged,
            "stopped" => StopReason::Stopped(None),
            other => StopReason::Stopped(Some(
                other.strip_prefix("stopped: ").unwrap_or(other).to_owned(),
            )),
        }
    }

    /// Whether the engagement still runs after it: a completed plan keeps its pages'
    /// retries and acknowledgements open; an acknowledgement or a stop ends everything.
    pub fn keeps_pages_open(&self) -> bool {
        matches!(self, StopReason::Completed)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Completed => f.write_str("completed"),
            StopReason::Acknowledged => f.write_str("acknowledged"),
            StopReason::Stopped(None) => f.write_str("stopped"),
            StopReason::Stopped(Some(r)) => write!(f, "stopped: {r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_kinds_are_the_aws_names() {
        let names: Vec<&str> = ReceiptKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["SENT", "DELIVERED", "READ", "ERROR", "STOP"]);
        for k in ReceiptKind::ALL {
            assert_eq!(ReceiptKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ReceiptKind::parse("sent"), None);
    }

    #[test]
    fn stop_reasons_keep_their_stored_text() {
        for (reason, text) in [
            (StopReason::Completed, "completed"),
            (StopReason::Acknowledged, "acknowledged"),
            (StopReason::Stopped(None), "stopped"),
            (StopReason::Stopped(Some("done".into())), "stopped: done"),
        ] {
            assert_eq!(reason.to_string(), text);
            assert_eq!(StopReason::parse(text), reason);
        }
        assert_eq!(StopReason::stopped(Some("  ")), StopReason::Stopped(None));
        assert_eq!(
            StopReason::stopped(Some(" db down ")).to_string(),
            "stopped: db down"
        );
        assert!(StopReason::Completed.keeps_pages_open());
        assert!(!StopReason::Acknowledged.keeps_pages_open());
        assert!(!StopReason::Stopped(None).keeps_pages_open());
    }
}
