//! Inbound replies: provider signatures, keywords, raw e-mail.
//!
//! Pure functions only: the HTTP handlers (`POST /hooks/twilio/sms`, `/hooks/twilio/voice`,
//! `/hooks/twilio/status`, `/hooks/email`) live in the API crate, extract the request, call
//! these, and act on the result. Nothing here does I/O or reads a clock.
//!
//! The usual flow for a reply:
//! 1. check the request is genuine ([`twilio::verify`] or [`email::verify_secret`]); on failure
//!    answer 403 and change nothing;
//! 2. parse it ([`twilio::parse_form`], [`email::parse`]);
//! 3. drop obvious machines ([`keywords::looks_automated`], [`email::InboundEmail::auto_submitted`]);
//! 4. classify ([`keywords::classify_text`], [`keywords::classify_keypress`]);
//! 5. act, and answer only if [`keywords::ReplyLimiter::allow`] says so, so that two machines
//!    replying to each other cannot loop.

pub mod auth_results;
pub mod email;
pub mod keywords;
pub mod twilio;
