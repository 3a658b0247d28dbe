//! The limits the AWS SSM Contacts model puts on what people type: names, message texts,
//! codes, minutes, counts. One newtype per member (or per group of members with the same
//! rule), each with a `parse` that accepts exactly what the model's `@length`, `@pattern` and
//! `@range` traits accept for that member, so a form and the API cannot disagree.
//!
//! `MEMBERS` on each type lists the model members it mirrors as Smithy member ids
//! (`Shape$Member`); muster-aws has a property test that runs the generated validation of each
//! of those members against the type's `parse`.
//!
//! Lengths are counted in characters (Unicode scalar values), as Smithy's `@length` is. Where
//! the model writes `\s` it means Unicode white space ([`char::is_whitespace`]); `\p{L}`,
//! `\p{Z}` and `\p{N}` are the Unicode general categories Letter, Separator and Number.
//!
//! These are the model's limits only. Rules the service adds on top (an address valid for its
//! channel type, a time zone that exists, a duration of 0 only for a stage with targets) are
//! checked elsewhere ([`crate::ChannelAddress`], [`crate::rotation::time_zone`],
//! [`crate::Plan::check_shape`]).

use crate::ParseError;
use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

// ---- the rules -----------------------------------------------------------------------------

/// The characters a text may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chars {
    /// Anything (the model's `^[.\s\S]*$`).
    Any,
    /// `^[\p{L}\p{Z}\p{N}_.\-]*$`: letters, separators and numbers of any script, `_ . -`.
    Names,
    /// `^[a-zA-Z0-9_\-\s\.]*$`.
    RotationName,
    /// `^[:a-zA-Z0-9_\-\s\.\\/]*$`.
    TimeZoneId,
    /// `^[\\a-zA-Z0-9_@#%*+=:?.\/!\s-]*$`.
    Sender,
    /// `^[\\\/a-zA-Z0-9_+=\-]*$`.
    IdempotencyToken,
    /// `^[0-9]*$`.
    Digits,
}

/// One character that is not `\p{L}`, `\p{Z}`, `\p{N}`, `_`, `.` or `-`.
static NOT_A_NAME_CHAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[^\p{L}\p{Z}\p{N}_.\-]").expect("the name character class compiles")
});

impl Chars {
    /// The first character of `s` that is not allowed, if any.
    fn first_refused(self, s: &str) -> Option<char> {
        let allowed: fn(char) -> bool = match self {
            Chars::Any => return None,
            Chars::Names => {
                return NOT_A_NAME_CHAR
                    .find(s)
                    .and_then(|m| m.as_str().chars().next());
            }
            Chars::RotationName => {
                |c| c.is_ascii_alphanumeric() || c.is_whitespace() || "_-.".contains(c)
            }
            Chars::TimeZoneId => {
                |c| c.is_ascii_alphanumeric() || c.is_whitespace() || ":_-.\\/".contains(c)
            }
            Chars::Sender => {
                |c| c.is_ascii_alphanumeric() || c.is_whitespace() || "\\_@#%*+=:?./!-".contains(c)
            }
            Chars::IdempotencyToken => |c| c.is_ascii_alphanumeric() || "\\/_+=-".contains(c),
            Chars::Digits => |c| c.is_ascii_digit(),
        };
        s.chars().find(|&c| !allowed(c))
    }

    /// The model's pattern, as the model writes it (and as the API quotes it in its
    /// `must match the pattern …` errors).
    const fn source(self) -> &'static str {
        match self {
            Chars::Any => r"^[.\s\S]*$",
            Chars::Names => r"^[\p{L}\p{Z}\p{N}_.\-]*$",
            Chars::RotationName => r"^[a-zA-Z0-9_\-\s\.]*$",
            Chars::TimeZoneId => r"^[:a-zA-Z0-9_\-\s\.\\/]*$",
            Chars::Sender => r"^[\\a-zA-Z0-9_@#%*+=:?.\/!\s-]*$",
            Chars::IdempotencyToken => r"^[\\\/a-zA-Z0-9_+=\-]*$",
            Chars::Digits => r"^[0-9]*$",
        }
    }

    /// The allowed characters, for a message.
    fn describe(self) -> &'static str {
        match self {
            Chars::Any => "any characters",
            Chars::Names => {
                "letters and digits (of any alphabet), spaces, underscores (_), full stops (.) \
                 and hyphens (-)"
            }
            Chars::RotationName => {
                "the letters A-Z and a-z, the digits 0-9, spaces, underscores (_), hyphens (-) \
                 and full stops (.)"
            }
            Chars::TimeZoneId => {
                "the letters A-Z and a-z, the digits 0-9, spaces and the characters : _ - . \\ /"
            }
            Chars::Sender => {
                "the letters A-Z and a-z, the digits 0-9, spaces and the characters \
                 \\ _ @ # % * + = : ? . / ! -"
            }
            Chars::IdempotencyToken => {
                "the letters A-Z and a-z, the digits 0-9 and the characters \\ / _ + = -"
            }
            Chars::Digits => "the digits 0-9",
        }
    }
}

/// A text member's rule: `min..=max` characters of `chars`.
struct TextRule {
    /// What the value is, lower case, for messages ("the full name").
    label: &'static str,
    min: usize,
    max: usize,
    chars: Chars,
}

/// `label` with its first letter in upper case, to start a sentence.
fn sentence_start(label: &str) -> String {
    let mut chars = label.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Characters that show nothing by themselves: white space, separators, control and format
/// characters, unassigned and private-use code points.
static INVISIBLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\s\p{Z}\p{C}]$").expect("the invisible class compiles"));
/// Characters drawn onto the one before them (accents written separately).
static COMBINING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{M}$").expect("the combining class compiles"));

/// A character as a person can find it in what they typed.
fn show_char(c: char) -> String {
    let code = format!("U+{:04X}", u32::from(c));
    let mut buf = [0u8; 4];
    let one = c.encode_utf8(&mut buf);
    if INVISIBLE.is_match(one) {
        format!("the invisible character {code}")
    } else if COMBINING.is_match(one) {
        format!("the combining mark {code}")
    } else {
        format!("“{c}” ({code})")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl TextRule {
    fn check(&self, s: &str) -> Result<(), ParseError> {
        let label = sentence_start(self.label);
        let unit = if self.chars == Chars::Digits {
            ("digit", "digits")
        } else {
            ("character", "characters")
        };
        let n = s.chars().count();
        if n == 0 && self.min > 0 {
            return Err(ParseError::new(if self.min == 1 {
                format!("{label} is required: enter at least one character.")
            } else {
                format!(
                    "{label} is required: enter {} to {} {}.",
                    self.min, self.max, unit.1
                )
            }));
        }
        if n < self.min {
            return Err(ParseError::new(format!(
                "{label} must be {} to {} {} long; this one has {}.",
                self.min,
                self.max,
                unit.1,
                plural(n, unit.0, unit.1)
            )));
        }
        if n > self.max {
            return Err(ParseError::new(format!(
                "{label} can be at most {} long; this one has {}: shorten it by {}.",
                plural(self.max, unit.0, unit.1),
                n,
                plural(n - self.max, "character", "characters")
            )));
        }
        if let Some(c) = self.chars.first_refused(s) {
            return Err(ParseError::new(format!(
                "{label} cannot contain {}: use only {}.",
                show_char(c),
                self.chars.describe()
            )));
        }
        Ok(())
    }
}

/// An integer member's rule: `min..=max` (`max: None`: no upper limit but the wire's `i32`).
struct IntRule {
    label: &'static str,
    /// "minutes", or "" for a plain number.
    unit: &'static str,
    min: i64,
    max: Option<i64>,
}

impl IntRule {
    fn range_error(&self, shown: &str) -> ParseError {
        let label = sentence_start(self.label);
        let of = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" of {}", self.unit)
        };
        ParseError::new(match self.max {
            Some(max) => format!(
                "{label} must be a whole number{of} from {} to {max}; {shown} is not.",
                self.min
            ),
            None => format!(
                "{label} must be a whole number{of}, at least {}; {shown} is not.",
                self.min
            ),
        })
    }

    fn check(&self, n: i64) -> Result<i64, ParseError> {
        if n < self.min || self.max.is_some_and(|max| n > max) {
            return Err(self.range_error(&n.to_string()));
        }
        if n > i64::from(i32::MAX) {
            return Err(ParseError::new(format!(
                "{} is too large: the most it can be is {}; {n} is more.",
                sentence_start(self.label),
                i32::MAX
            )));
        }
        Ok(n)
    }

    fn parse(&self, s: &str) -> Result<i64, ParseError> {
        match s.parse::<i64>() {
            Ok(n) => self.check(n),
            Err(_) => Err(self.range_error(&format!("“{s}”"))),
        }
    }
}

// ---- text newtypes -------------------------------------------------------------------------

macro_rules! text_limit {
    (
        $(#[$doc:meta])*
        $name:ident {
            label: $label:literal,
            chars: $min:literal ..= $max:literal,
            allowed: $allowed:ident,
            members: [$($member:literal),+ $(,)?] $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The fewest characters the model accepts.
            pub const MIN_CHARS: usize = $min;
            /// The most characters the model accepts.
            pub const MAX_CHARS: usize = $max;
            /// The model members (`Shape$Member`) with exactly this rule.
            pub const MEMBERS: &'static [&'static str] = &[$($member),+];
            /// The model's pattern, as the API quotes it.
            pub const PATTERN: &'static str = Chars::$allowed.source();

            const RULE: TextRule = TextRule {
                label: $label,
                min: $min,
                max: $max,
                chars: Chars::$allowed,
            };

            /// `s` as it is (nothing is trimmed), or a sentence saying what to change.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                Self::RULE.check(s).map(|()| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_limit! {
    /// The full name of a contact, escalation plan or on-call schedule (`DisplayName`): 0 to
    /// 255 characters, each a letter, separator or number of any script (`\p{L}`, `\p{Z}`,
    /// `\p{N}`), `_`, `.` or `-`. Empty is allowed (no name).
    DisplayName {
        label: "the full name",
        chars: 0..=255,
        allowed: Names,
        members: ["CreateContactRequest$DisplayName", "UpdateContactRequest$DisplayName"],
    }
}

text_limit! {
    /// The name of a contact channel (`Name`): 1 to 255 characters, each a letter, separator
    /// or number of any script (`\p{L}`, `\p{Z}`, `\p{N}`), `_`, `.` or `-`.
    ChannelName {
        label: "the contact channel name",
        chars: 1..=255,
        allowed: Names,
        members: ["CreateContactChannelRequest$Name", "UpdateContactChannelRequest$Name"],
    }
}

text_limit! {
    /// The name of a rotation (`Name`): 1 to 255 characters of `A-Z`, `a-z`, `0-9`, `_`, `-`,
    /// `.` and white space.
    RotationName {
        label: "the rotation name",
        chars: 1..=255,
        allowed: RotationName,
        members: ["CreateRotationRequest$Name"],
    }
}

text_limit! {
    /// A rotation's time zone as the model spells it (`TimeZoneId`): 1 to 255 characters of
    /// `A-Z`, `a-z`, `0-9`, `:`, `_`, `-`, `.`, `\`, `/` and white space. Whether the zone
    /// exists is [`crate::rotation::time_zone`]'s question (note that `+` is refused, so
    /// `Etc/GMT+5` cannot be named).
    TimeZoneId {
        label: "the time zone",
        chars: 1..=255,
        allowed: TimeZoneId,
        members: ["CreateRotationRequest$TimeZoneId", "UpdateRotationRequest$TimeZoneId"],
    }
}

text_limit! {
    /// Who started an engagement (`Sender`): 0 to 255 characters of `A-Z`, `a-z`, `0-9`,
    /// white space and `\ _ @ # % * + = : ? . / ! -`.
    Sender {
        label: "the sender",
        chars: 0..=255,
        allowed: Sender,
        members: ["StartEngagementRequest$Sender"],
    }
}

text_limit! {
    /// The incident an engagement belongs to (`IncidentId`): 0 to 1024 characters of `A-Z`,
    /// `a-z`, `0-9`, white space and `\ _ @ # % * + = : ? . / ! -`.
    IncidentId {
        label: "the incident id",
        chars: 0..=1024,
        allowed: Sender,
        members: ["StartEngagementRequest$IncidentId"],
    }
}

text_limit! {
    /// The subject of an engagement's message (`Subject`, `PublicSubject`): 1 to 2048
    /// characters, any.
    EngagementSubject {
        label: "the subject",
        chars: 1..=2048,
        allowed: Any,
        members: ["StartEngagementRequest$Subject", "StartEngagementRequest$PublicSubject"],
    }
}

text_limit! {
    /// The content of an engagement's message (`Content`, `PublicContent`): 1 to 8192
    /// characters, any.
    EngagementContent {
        label: "the content",
        chars: 1..=8192,
        allowed: Any,
        members: ["StartEngagementRequest$Content", "StartEngagementRequest$PublicContent"],
    }
}

text_limit! {
    /// The reason given when stopping an engagement (StopEngagement `Reason`): 0 to 255
    /// characters, any. It becomes the text of [`crate::StopReason::Stopped`].
    StopReasonText {
        label: "the reason",
        chars: 0..=255,
        allowed: Any,
        members: ["StopEngagementRequest$Reason"],
    }
}

text_limit! {
    /// The note kept with an acknowledgement (AcceptPage `Note`): 1 to 2048 characters, any.
    AcceptNote {
        label: "the note",
        chars: 1..=2048,
        allowed: Any,
        members: ["AcceptPageRequest$Note"],
    }
}

text_limit! {
    /// The code that activates a contact channel (`ActivationCode`): 6 to 10 digits `0-9`.
    ActivationCode {
        label: "the activation code",
        chars: 6..=10,
        allowed: Digits,
        members: ["ActivateContactChannelRequest$ActivationCode"],
    }
}

text_limit! {
    /// The code that acknowledges a page (AcceptPage `AcceptCode`): 6 to 10 digits `0-9`.
    AcceptCode {
        label: "the acknowledgement code",
        chars: 6..=10,
        allowed: Digits,
        members: ["AcceptPageRequest$AcceptCode"],
    }
}

text_limit! {
    /// A client's idempotency token (`IdempotencyToken`): 0 to 2048 characters of `A-Z`,
    /// `a-z`, `0-9` and `\ / _ + = -`.
    IdempotencyToken {
        label: "the idempotency token",
        chars: 0..=2048,
        allowed: IdempotencyToken,
        members: [
            "StartEngagementRequest$IdempotencyToken",
            "CreateContactRequest$IdempotencyToken",
            "CreateContactChannelRequest$IdempotencyToken",
            "CreateRotationRequest$IdempotencyToken",
            "CreateRotationOverrideRequest$IdempotencyToken",
        ],
    }
}

// ---- integer newtypes ----------------------------------------------------------------------

macro_rules! int_limit {
    (
        $(#[$doc:meta])*
        $name:ident($repr:ty) {
            label: $label:literal,
            unit: $unit:literal,
            min: $min:literal,
            max: $max:expr,
            members: [$($member:literal),+ $(,)?] $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($repr);

        impl $name {
            /// The smallest value the model accepts.
            pub const MIN: $repr = $min;
            /// The model members (`Shape$Member`) with exactly this rule.
            pub const MEMBERS: &'static [&'static str] = &[$($member),+];

            const RULE: IntRule = IntRule {
                label: $label,
                unit: $unit,
                min: $min,
                max: $max,
            };

            /// `n` when the model accepts it, or a sentence saying what it must be.
            pub fn new(n: i64) -> Result<Self, ParseError> {
                Self::RULE.check(n).and_then(Self::narrow)
            }

            /// A whole number in decimal (an optional sign, then digits; nothing is trimmed).
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                Self::RULE.parse(s).and_then(Self::narrow)
            }

            /// Only called with a value `RULE` accepted, which fits.
            fn narrow(n: i64) -> Result<Self, ParseError> {
                <$repr>::try_from(n)
                    .map($name)
                    .map_err(|_| Self::RULE.range_error(&n.to_string()))
            }

            pub fn get(self) -> $repr {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_limit! {
    /// How long a stage lasts before the next one starts (`DurationInMinutes`): 0 to 30
    /// minutes. (That 0 needs a target is [`crate::Plan::check_shape`]'s rule.)
    StageMinutes(u32) {
        label: "the wait before the next stage",
        unit: "minutes",
        min: 0,
        max: Some(30),
        members: ["Stage$DurationInMinutes"],
    }
}

impl StageMinutes {
    /// The longest stage.
    pub const MAX: u32 = 30;
}

int_limit! {
    /// How often a failed page to a channel is retried (`RetryIntervalInMinutes`): 0 to 60
    /// minutes; 0 means no retry.
    RetryMinutes(u32) {
        label: "the retry interval",
        unit: "minutes",
        min: 0,
        max: Some(60),
        members: ["ChannelTargetInfo$RetryIntervalInMinutes"],
    }
}

impl RetryMinutes {
    /// The longest retry interval.
    pub const MAX: u32 = 60;
}

int_limit! {
    /// How many contacts of a rotation are on call at once (`NumberOfOnCalls`): at least 1
    /// (and at most `i32::MAX`, the wire's integer).
    OnCallCount(u32) {
        label: "the number of contacts on call at once",
        unit: "",
        min: 1,
        max: None,
        members: ["RecurrenceSettings$NumberOfOnCalls"],
    }
}

impl OnCallCount {
    /// The largest count the wire can carry.
    pub const MAX: u32 = i32::MAX as u32;
}

int_limit! {
    /// How many hand-off periods one shift lasts (`RecurrenceMultiplier`): 1 to 100.
    RecurrenceMultiplier(u32) {
        label: "the shift length (hand-off periods per shift)",
        unit: "",
        min: 1,
        max: Some(100),
        members: ["RecurrenceSettings$RecurrenceMultiplier"],
    }
}

impl RecurrenceMultiplier {
    /// The longest shift, in hand-off periods.
    pub const MAX: u32 = 100;
}

int_limit! {
    /// The day of a monthly hand-off (`DayOfMonth`): 1 to 31. (Days a month lacks are clamped
    /// to its last day: see [`crate::rotation::Cadence::Monthly`].)
    DayOfMonth(u8) {
        label: "the day of the month",
        unit: "",
        min: 1,
        max: Some(31),
        members: ["MonthlySetting$DayOfMonth"],
    }
}

impl DayOfMonth {
    /// The last day a month can have.
    pub const MAX: u8 = 31;
}

int_limit! {
    /// The hour of a hand-off or coverage time (`HourOfDay`): 0 to 23.
    HourOfDay(u8) {
        label: "the hour",
        unit: "",
        min: 0,
        max: Some(23),
        members: ["HandOffTime$HourOfDay"],
    }
}

impl HourOfDay {
    /// The last hour of the day.
    pub const MAX: u8 = 23;
}

int_limit! {
    /// The minute of a hand-off or coverage time (`MinuteOfHour`): 0 to 59.
    MinuteOfHour(u8) {
        label: "the minute",
        unit: "",
        min: 0,
        max: Some(59),
        members: ["HandOffTime$MinuteOfHour"],
    }
}

impl MinuteOfHour {
    /// The last minute of the hour.
    pub const MAX: u8 = 59;
}

// ---- list newtypes -------------------------------------------------------------------------

/// A rotation's members in rotation order (`ContactIds` of CreateRotation and UpdateRotation):
/// 1 to 30 of them. `T` is whatever names a contact (an alias, an ARN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RotationMembers<T>(Vec<T>);

impl<T> RotationMembers<T> {
    /// The fewest members a rotation has.
    pub const MIN_ITEMS: usize = 1;
    /// The most members a rotation has.
    pub const MAX_ITEMS: usize = 30;
    /// The model members (`Shape$Member`) with exactly this rule.
    pub const MEMBERS: &'static [&'static str] = &[
        "CreateRotationRequest$ContactIds",
        "UpdateRotationRequest$ContactIds",
    ];

    /// The members when there are 1 to 30 of them, or a sentence saying what to change.
    pub fn parse(members: Vec<T>) -> Result<Self, ParseError> {
        let n = members.len();
        if n < Self::MIN_ITEMS {
            return Err(ParseError::new(
                "A rotation needs at least one member: add a contact to it.",
            ));
        }
        if n > Self::MAX_ITEMS {
            return Err(ParseError::new(format!(
                "A rotation can have at most {} members; this one has {n}: remove {}.",
                Self::MAX_ITEMS,
                n - Self::MAX_ITEMS
            )));
        }
        Ok(RotationMembers(members))
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

/// Who is on call during a rotation override (`NewContactIds`): 0 to 30 contacts. `T` is
/// whatever names a contact (an alias, an ARN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OverrideMembers<T>(Vec<T>);

impl<T> OverrideMembers<T> {
    /// The most contacts an override names.
    pub const MAX_ITEMS: usize = 30;
    /// The model members (`Shape$Member`) with exactly this rule.
    pub const MEMBERS: &'static [&'static str] = &["CreateRotationOverrideRequest$NewContactIds"];

    /// The contacts when there are at most 30, or a sentence saying what to change.
    pub fn parse(members: Vec<T>) -> Result<Self, ParseError> {
        let n = members.len();
        if n > Self::MAX_ITEMS {
            return Err(ParseError::new(format!(
                "An override can name at most {} contacts; this one names {n}: remove {}.",
                Self::MAX_ITEMS,
                n - Self::MAX_ITEMS
            )));
        }
        Ok(OverrideMembers(members))
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

/// The rotations a plan names (`Plan$RotationIds`): at most 25. (An on-call schedule may
/// name fewer: `Plan::check_shape`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanRotations<T>(Vec<T>);

impl<T> PlanRotations<T> {
    /// The most rotations a plan names.
    pub const MAX_ITEMS: usize = 25;
    /// The model members (`Shape$Member`) with exactly this rule.
    pub const MEMBERS: &'static [&'static str] = &["Plan$RotationIds"];

    /// The rotations when there are at most 25, or a sentence saying what to change.
    pub fn parse(rotations: Vec<T>) -> Result<Self, ParseError> {
        let n = rotations.len();
        if n > Self::MAX_ITEMS {
            return Err(ParseError::new(format!(
                "A plan can name at most {} rotations; this one names {n}: remove {}.",
                Self::MAX_ITEMS,
                n - Self::MAX_ITEMS
            )));
        }
        Ok(PlanRotations(rotations))
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n_of(c: &str, n: usize) -> String {
        c.repeat(n)
    }

    /// `parse` accepts every `ok` and refuses every `bad`.
    fn check<T: fmt::Debug>(parse: fn(&str) -> Result<T, ParseError>, ok: &[&str], bad: &[&str]) {
        for s in ok {
            assert!(parse(s).is_ok(), "should accept {s:?}: {:?}", parse(s));
        }
        for s in bad {
            assert!(parse(s).is_err(), "should refuse {s:?}");
        }
    }

    #[test]
    fn display_names() {
        check(
            DisplayName::parse,
            &[
                "",
                "a",
                "Akua Mansa",
                "José Núñez",
                "李小龍",
                "Ørjan_Ødegård-2.0",
                "Ⅻ",          // Nl
                "½",          // No
                "٣",          // Nd, Arabic-Indic
                "a\u{a0}b",   // Zs no-break space
                "a\u{2028}b", // Zl
                "a\u{3000}b", // Zs ideographic space
                "_.-",
            ],
            &[
                "a@b",
                "O'Brien",
                "a,b",
                "a+b",
                "a\tb",      // white space, but Cc, not Z
                "a\nb",      // Cc
                "e\u{301}",  // combining acute accent: Mn, not a letter
                "a\u{200b}", // zero-width space: Cf
                "\u{feff}",  // Cf
                "😀",        // So
                "Ⓐ",         // So, though Alphabetic
                "\u{93e}",   // Devanagari vowel sign: Mc, though Alphabetic
            ],
        );
        assert!(DisplayName::parse(&n_of("a", 255)).is_ok());
        assert!(DisplayName::parse(&n_of("a", 256)).is_err());
        // Characters, not bytes: 255 two-byte letters fit.
        assert!(DisplayName::parse(&n_of("é", 255)).is_ok());
        assert!(DisplayName::parse(&n_of("é", 256)).is_err());
        let name = DisplayName::parse("Akua").unwrap();
        assert_eq!(name.as_str(), "Akua");
        assert_eq!(name.to_string(), "Akua");
        assert_eq!(name.into_string(), "Akua");
    }

    #[test]
    fn channel_names() {
        check(
            ChannelName::parse,
            &["a", "Work phone", "Téléphone", "電話 2"],
            &["", "Work/phone", "a\tb"],
        );
        assert!(ChannelName::parse(&n_of("x", 255)).is_ok());
        assert!(ChannelName::parse(&n_of("x", 256)).is_err());
        assert!(ChannelName::parse(&n_of("ß", 255)).is_ok());
    }

    #[test]
    fn rotation_names() {
        check(
            RotationName::parse,
            &[
                "a",
                "Primary on-call.2_b",
                "a\tb\nc",
                "a\u{85}b",   // NEL: White_Space
                "a\u{a0}b",   // no-break space: White_Space
                "a\u{3000}b", // ideographic space: White_Space
                "Z9",
            ],
            &[
                "",
                "é",
                "a/b",
                "a:b",
                "a\u{feff}b", // Cf, not White_Space
                "a\u{200b}b",
                "a\u{0}b",
                "Ⅻ",
            ],
        );
        assert!(RotationName::parse(&n_of("r", 255)).is_ok());
        assert!(RotationName::parse(&n_of("r", 256)).is_err());
    }

    #[test]
    fn time_zone_ids() {
        check(
            TimeZoneId::parse,
            &[
                "Europe/Berlin",
                "America/Port-au-Prince",
                "America/Argentina/Buenos_Aires",
                "UTC",
                "a:b\\c.d e",
            ],
            &["", "Etc/GMT+5", "Europe/Zürich", "a,b"],
        );
        assert!(TimeZoneId::parse(&n_of("z", 255)).is_ok());
        assert!(TimeZoneId::parse(&n_of("z", 256)).is_err());
    }

    #[test]
    fn senders_and_incident_ids() {
        let ok = ["", "ann@example.com", "\\_@#%*+=:?./!-", "a b\tc", "Z"];
        let bad = ["o'brien", "a&b", "a$b", "a,b", "é", "a\u{0}b", "a\u{feff}"];
        check(Sender::parse, &ok, &bad);
        check(IncidentId::parse, &ok, &bad);
        assert!(Sender::parse(&n_of("s", 255)).is_ok());
        assert!(Sender::parse(&n_of("s", 256)).is_err());
        assert!(IncidentId::parse(&n_of("i", 1024)).is_ok());
        assert!(IncidentId::parse(&n_of("i", 1025)).is_err());
    }

    #[test]
    fn free_texts_only_have_lengths() {
        let anything = "any\u{0}thing\n😀\u{feff}<>&'\"";
        check(EngagementSubject::parse, &["s", anything], &[""]);
        check(EngagementContent::parse, &["c", anything], &[""]);
        check(AcceptNote::parse, &["n", anything], &[""]);
        check(StopReasonText::parse, &["", "r", anything], &[]);
        assert!(EngagementSubject::parse(&n_of("😀", 2048)).is_ok());
        assert!(EngagementSubject::parse(&n_of("😀", 2049)).is_err());
        assert!(EngagementContent::parse(&n_of("c", 8192)).is_ok());
        assert!(EngagementContent::parse(&n_of("c", 8193)).is_err());
        assert!(AcceptNote::parse(&n_of("n", 2048)).is_ok());
        assert!(AcceptNote::parse(&n_of("n", 2049)).is_err());
        assert!(StopReasonText::parse(&n_of("r", 255)).is_ok());
        assert!(StopReasonText::parse(&n_of("r", 256)).is_err());
    }

    #[test]
    fn codes() {
        let ok = ["000000", "123456", "1234567890"];
        let bad = [
            "",
            "12345",
            "12345678901",
            "12345a",
            " 123456",
            "١٢٣٤٥٦", // Arabic-Indic digits: numbers, but not 0-9
            "１２３４５６",
        ];
        check(ActivationCode::parse, &ok, &bad);
        check(AcceptCode::parse, &ok, &bad);
    }

    #[test]
    fn idempotency_tokens() {
        check(
            IdempotencyToken::parse,
            &[
                "",
                "a",
                "AZaz09\\/_+=-",
                "0f8fad5b-d9cb-469f-a165-70867728950e",
            ],
            &["a b", "a.b", "a:b", "é", "a\u{0}"],
        );
        assert!(IdempotencyToken::parse(&n_of("t", 2048)).is_ok());
        assert!(IdempotencyToken::parse(&n_of("t", 2049)).is_err());
    }

    /// `new` accepts exactly `min..=max` among the values around the bounds.
    fn check_range<T: fmt::Debug>(new: fn(i64) -> Result<T, ParseError>, min: i64, max: i64) {
        for n in [
            i64::MIN,
            min - 1,
            min,
            min + 1,
            max - 1,
            max,
            max + 1,
            i64::MAX,
        ] {
            assert_eq!(new(n).is_ok(), (min..=max).contains(&n), "{n}");
        }
    }

    #[test]
    fn integer_ranges() {
        check_range(StageMinutes::new, 0, 30);
        check_range(RetryMinutes::new, 0, 60);
        check_range(OnCallCount::new, 1, 2_147_483_647);
        check_range(RecurrenceMultiplier::new, 1, 100);
        check_range(DayOfMonth::new, 1, 31);
        check_range(HourOfDay::new, 0, 23);
        check_range(MinuteOfHour::new, 0, 59);
        assert_eq!(StageMinutes::new(30).unwrap().get(), 30);
        assert_eq!(DayOfMonth::new(31).unwrap().get(), 31u8);
        assert_eq!(
            OnCallCount::new(2_147_483_647).unwrap().get(),
            2_147_483_647
        );
        assert_eq!(RetryMinutes::new(5).unwrap().to_string(), "5");
        assert_eq!(
            (StageMinutes::MIN, StageMinutes::MAX, RetryMinutes::MAX),
            (0, 30, 60)
        );
    }

    #[test]
    fn integers_from_text() {
        assert_eq!(StageMinutes::parse("30").map(StageMinutes::get), Ok(30));
        assert_eq!(StageMinutes::parse("+7").map(StageMinutes::get), Ok(7));
        assert_eq!(StageMinutes::parse("007").map(StageMinutes::get), Ok(7));
        for bad in [
            "",
            "31",
            "-1",
            "x",
            " 5",
            "5 ",
            "1.5",
            "99999999999999999999",
        ] {
            assert!(StageMinutes::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HourOfDay::parse("23").is_ok());
        assert!(HourOfDay::parse("24").is_err());
    }

    #[test]
    fn member_lists() {
        let list = |n: usize| -> Vec<usize> { (0..n).collect() };
        for (n, ok) in [(0, false), (1, true), (30, true), (31, false)] {
            assert_eq!(RotationMembers::parse(list(n)).is_ok(), ok, "{n}");
        }
        for (n, ok) in [(0, true), (1, true), (30, true), (31, false)] {
            assert_eq!(OverrideMembers::parse(list(n)).is_ok(), ok, "{n}");
        }
        let members = RotationMembers::parse(vec!["a", "b"]).unwrap();
        assert_eq!(members.as_slice(), ["a", "b"]);
        assert_eq!(members.into_vec(), vec!["a", "b"]);
    }

    #[test]
    fn messages_say_what_to_change() {
        let msg = |r: Result<(), ParseError>| r.unwrap_err().0;
        assert_eq!(
            msg(DisplayName::parse("Ann@Work").map(drop)),
            "The full name cannot contain “@” (U+0040): use only letters and digits (of any \
             alphabet), spaces, underscores (_), full stops (.) and hyphens (-)."
        );
        assert_eq!(
            msg(RotationName::parse("a\u{feff}").map(drop)),
            "The rotation name cannot contain the invisible character U+FEFF: use only the \
             letters A-Z and a-z, the digits 0-9, spaces, underscores (_), hyphens (-) and \
             full stops (.)."
        );
        assert_eq!(
            msg(ChannelName::parse("e\u{301}").map(drop)),
            "The contact channel name cannot contain the combining mark U+0301: use only \
             letters and digits (of any alphabet), spaces, underscores (_), full stops (.) and \
             hyphens (-)."
        );
        assert_eq!(
            msg(Sender::parse("a\u{0}").map(drop)),
            "The sender cannot contain the invisible character U+0000: use only the letters \
             A-Z and a-z, the digits 0-9, spaces and the characters \\ _ @ # % * + = : ? . / \
             ! -."
        );
        assert_eq!(
            msg(ChannelName::parse("").map(drop)),
            "The contact channel name is required: enter at least one character."
        );
        assert_eq!(
            msg(ChannelName::parse(&n_of("x", 257)).map(drop)),
            "The contact channel name can be at most 255 characters long; this one has 257: \
             shorten it by 2 characters."
        );
        assert_eq!(
            msg(ActivationCode::parse("12345").map(drop)),
            "The activation code must be 6 to 10 digits long; this one has 5 digits."
        );
        assert_eq!(
            msg(AcceptCode::parse("").map(drop)),
            "The acknowledgement code is required: enter 6 to 10 digits."
        );
        assert_eq!(
            msg(StageMinutes::new(45).map(drop)),
            "The wait before the next stage must be a whole number of minutes from 0 to 30; 45 \
             is not."
        );
        assert_eq!(
            msg(RetryMinutes::parse("soon").map(drop)),
            "The retry interval must be a whole number of minutes from 0 to 60; “soon” is not."
        );
        assert_eq!(
            msg(OnCallCount::new(0).map(drop)),
            "The number of contacts on call at once must be a whole number, at least 1; 0 is \
             not."
        );
        assert_eq!(
            msg(OnCallCount::new(2_147_483_648).map(drop)),
            "The number of contacts on call at once is too large: the most it can be is \
             2147483647; 2147483648 is more."
        );
        assert_eq!(
            msg(RotationMembers::parse(list31()).map(drop)),
            "A rotation can have at most 30 members; this one has 31: remove 1."
        );
    }

    fn list31() -> Vec<u8> {
        vec![0; 31]
    }
}
