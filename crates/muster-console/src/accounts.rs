//! Console users: e-mail normalisation, the password rule, Argon2id hashing, creation.
//!
//! `muster users create` and the tests create users through [`create_user`], the one code
//! path; the sign-in page checks passwords with [`verify_password`].

use crate::ConsoleError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use muster_core::Clock;
use muster_store::{Store, StoreError, UserRecord};
use std::sync::LazyLock;
use uuid::Uuid;

/// Shortest accepted password, in characters (Unicode scalar values).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes: Argon2 takes any length, but a megabyte "password"
/// posted to the sign-in form should not cost more than a normal one.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest accepted e-mail address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Trims and lower-cases an e-mail address and checks its shape (`local@domain`, no spaces
/// or control characters). Users are found by this form, so `Ann@Example.com` and
/// `ann@example.com` are one user.
pub fn normalise_email(email: &str) -> Result<String, ConsoleError> {
    let email = email.trim().to_lowercase();
    let bad = |why: &str| Err(ConsoleError::InvalidEmail(format!("{email:?}: {why}")));
    if email.is_empty() {
        return bad("it is empty");
    }
    if email.len() > MAX_EMAIL_BYTES {
        return bad("it is longer than 254 bytes");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => bad("it must look like name@example.com"),
    }
}

/// Checks the password rule: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_password(password: &str) -> Result<(), ConsoleError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ConsoleError::WeakPassword(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long (it has {chars})"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ConsoleError::WeakPassword(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    Ok(())
}

/// Hashes a password with Argon2id (version 19, the crate's defaults: 19 MiB, 2 passes, 1
/// lane, as OWASP recommends) and a random 16-byte salt, as a PHC string. CPU-heavy: call
/// it from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, ConsoleError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ConsoleError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (with the parameters stored in it). An
/// unparsable hash matches nothing. CPU-heavy: call it from a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password nobody knows: checked when the e-mail has no user, so that
/// an unknown e-mail takes as long to refuse as a wrong password.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let random = crate::auth::random_token();
        hash_password(&random).expect("hashing a random password")
    });
    &DUMMY
}

/// Creates a console user: normalises the e-mail, checks the password rule, refuses an
/// e-mail in use (`EmailTaken`), hashes the password with Argon2id and stores the user.
pub async fn create_user(
    store: &Store,
    clock: &dyn Clock,
    email: &str,
    password: &str,
    is_admin: bool,
) -> Result<UserRecord, ConsoleError> {
    let email = normalise_email(email)?;
    check_password(password)?;
    if store.get_user_by_email(&email).await?.is_some() {
        return Err(ConsoleError::EmailTaken(email));
    }
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ConsoleError::Hash(e.to_string()))??;
    let user = UserRecord {
        id: Uuid::new_v4(),
        email,
        password_hash,
        is_admin,
        created_ms: clock.now_ms(),
        disabled_ms: None,
    };
    match store.create_user(&user).await {
        Ok(()) => Ok(user),
        // Created by someone else between the check and the insert.
        Err(StoreError::Conflict(_)) => Err(ConsoleError::EmailTaken(user.email)),
        Err(e) => Err(e.into()),
    }
}

/// Disables the user with this e-mail and ends their sessions. `Ok(false)` if they were
/// disabled already.
pub async fn disable_user(
    store: &Store,
    clock: &dyn Clock,
    email: &str,
) -> Result<bool, ConsoleError> {
    let email = normalise_email(email)?;
    let Some(user) = store.get_user_by_email(&email).await? else {
        return Err(ConsoleError::NoSuchUser(email));
    };
    Ok(store.disable_user(user.id, clock.now_ms()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ann.Lee@Example.COM \n").unwrap(),
            "ann.lee@example.com"
        );
        for bad in [
            "",
            "   ",
            "ann",
            "@example.com",
            "ann@",
            "a@b@c",
            "ann lee@example.com",
            "ann@exa\u{0}mple.com",
        ] {
            assert!(
                matches!(normalise_email(bad), Err(ConsoleError::InvalidEmail(_))),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalise_email(&long).is_err());
    }

    #[test]
    fn password_rule_counts_characters() {
        assert!(check_password("short").is_err());
        assert!(check_password("elevenchars").is_err());
        check_password("twelve chars").unwrap();
        // Twelve characters, more bytes.
        check_password("ééééééééééééé").unwrap();
        assert!(check_password("ééééé").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battery ", &h));
        assert!(!verify_password("", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Salted: the same password hashes differently.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
        assert!(!verify_password("anything at all", dummy_hash()));
    }
}
