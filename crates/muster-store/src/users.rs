//! Console users, their sessions, and the sign-in attempts that the sign-in limits count.
//!
//! The store never sees a password or a session token: users carry an Argon2id hash, sessions
//! the SHA-256 of their token, both computed by the caller (`muster-console`). E-mails are
//! compared exactly: the caller normalises them (trimmed, lower case).
//!
//! Sign-in attempts of one e-mail and of one client address are serialised (advisory locks on
//! PostgreSQL; SQLite has one writer), so concurrent attempts cannot get past a limit: an
//! attempt is recorded *before* the password is checked and only a success clears it.

use crate::StoreError;
use crate::backend::store_methods;
use crate::common::{has_nul, id_text, parse_id};
use crate::error::is_foreign_key_violation;
use crate::model::{LoginAttempt, LoginLimits, SessionRecord, UserRecord};
use uuid::Uuid;

macro_rules! user_columns {
    () => {
        "id, email, password_hash, is_admin, created_ms, disabled_ms"
    };
}

const INSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
const GET_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const GET_USER_BY_EMAIL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
const LIST_USERS: &str = concat!("SELECT ", user_columns!(), " FROM users ORDER BY email");
const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
const DISABLE_USER: &str =
    "UPDATE users SET disabled_ms = $2 WHERE id = $1 AND disabled_ms IS NULL";
const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";

const INSERT_SESSION: &str = "INSERT INTO sessions \
     (token_hash, user_id, csrf_token, created_ms, expires_ms, last_seen_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";
/// A live session of an enabled user, with the user.
const GET_SESSION: &str = "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_ms, \
     s.expires_ms, s.last_seen_ms, u.id, u.email, u.password_hash, u.is_admin, \
     u.created_ms AS user_created_ms, u.disabled_ms \
     FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = $1 AND s.expires_ms > $2 AND u.disabled_ms IS NULL";
const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_ms = $2, expires_ms = $3 \
     WHERE token_hash = $1 AND expires_ms > $2";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1";
const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_ms <= $1";

const ATTEMPTS_OF_EMAIL: &str = "SELECT created_ms FROM login_attempts \
     WHERE email = $1 AND created_ms > $2 ORDER BY created_ms";
const ATTEMPTS_OF_ADDRESS: &str = "SELECT created_ms FROM login_attempts \
     WHERE address = $1 AND created_ms > $2 ORDER BY created_ms";
const INSERT_ATTEMPT: &str =
    "INSERT INTO login_attempts (id, email, address, created_ms) VALUES ($1, $2, $3, $4)";
const CLEAR_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE email = $1";
const PRUNE_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE created_ms <= $1";

/// How long until one more attempt is allowed, if `times` (ascending, all in the window)
/// already hold `max` or more: when the attempt that brings the count below `max` leaves.
fn wait_for(times: &[i64], max: u32, now_ms: i64, window_ms: i64) -> Option<i64> {
    let max = max as usize;
    if times.len() < max {
        return None;
    }
    // With max = 0 every attempt is refused; wait a whole window.
    let leaving = times.get(times.len() - max).copied().unwrap_or(now_ms);
    Some((leaving + window_ms - now_ms).max(1))
}

store_methods! {
    helpers {
        fn user_from_row(row: &Row, created: &str) -> Result<UserRecord, StoreError> {
            let id: String = row.try_get("id")?;
            Ok(UserRecord {
                id: parse_id(&id, "user id")?,
                email: row.try_get("email")?,
                password_hash: row.try_get("password_hash")?,
                is_admin: row.try_get("is_admin")?,
                created_ms: row.try_get(created)?,
                disabled_ms: row.try_get("disabled_ms")?,
            })
        }

        fn session_from_row(row: &Row) -> Result<SessionRecord, StoreError> {
            let user_id: String = row.try_get("user_id")?;
            Ok(SessionRecord {
                token_hash: row.try_get("token_hash")?,
                user_id: parse_id(&user_id, "session user id")?,
                csrf_token: row.try_get("csrf_token")?,
                created_ms: row.try_get("created_ms")?,
                expires_ms: row.try_get("expires_ms")?,
                last_seen_ms: row.try_get("last_seen_ms")?,
            })
        }
    }

    /// Creates the user. `Conflict` if the e-mail (or the id) is taken.
    pub async fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_USER)
            .bind(id_text(u.id))
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.is_admin)
            .bind(u.created_ms)
            .bind(u.disabled_ms)
            .execute(self.writer())
            .await
            .map_err(|e| {
                StoreError::on_unique(e, || {
                    format!("a user with e-mail '{}' already exists", u.email)
                })
            })?;
        Ok(())
    }

    /// The user with this id, disabled or not.
    pub async fn get_user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(GET_USER)
            .bind(id_text(id))
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(|r| user_from_row(r, "created_ms")).transpose()
    }

    /// The user with exactly this e-mail, disabled or not.
    pub async fn get_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        if has_nul(email) {
            return Ok(None);
        }
        let row = sqlx::query(GET_USER_BY_EMAIL)
            .bind(email)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(|r| user_from_row(r, "created_ms")).transpose()
    }

    /// Every user, disabled ones included, ordered by e-mail (code-point order).
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(LIST_USERS).fetch_all(self.reader()).await?;
        rows.iter().map(|r| user_from_row(r, "created_ms")).collect()
    }

    /// How many users exist, disabled ones included.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_USERS).fetch_one(self.reader()).await?)
    }

    /// Disables the user at `now_ms` and deletes their sessions, in one transaction. `false`
    /// if the user does not exist or was already disabled (the first instant is kept).
    pub async fn disable_user(&self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(DISABLE_USER)
            .bind(id_text(id))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(DELETE_USER_SESSIONS)
            .bind(id_text(id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Stores a new session. `NotFound` if its user does not exist; `Conflict` if the token
    /// hash is taken.
    pub async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_SESSION)
            .bind(&s.token_hash)
            .bind(id_text(s.user_id))
            .bind(&s.csrf_token)
            .bind(s.created_ms)
            .bind(s.expires_ms)
            .bind(s.last_seen_ms)
            .execute(self.writer())
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("user {}", id_text(s.user_id)))
                } else {
                    StoreError::on_unique(e, || "the session token is already in use".into())
                }
            })?;
        Ok(())
    }

    /// The session whose token hashes to `token_hash` and its user, if the session is live
    /// at `now_ms` (`now_ms < expires_ms`) and the user is not disabled; else `None`.
    pub async fn get_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        if has_nul(token_hash) {
            return Ok(None);
        }
        let row = sqlx::query(GET_SESSION)
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(self.reader())
            .await?;
        match row {
            Some(row) => Ok(Some((
                session_from_row(&row)?,
                user_from_row(&row, "user_created_ms")?,
            ))),
            None => Ok(None),
        }
    }

    /// Records a use of a live session at `now_ms` and moves its expiry to `expires_ms`.
    /// `false` if the session does not exist or has expired by `now_ms` (an expired session
    /// cannot be revived).
    pub async fn touch_session(
        &self,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        if has_nul(token_hash) {
            return Ok(false);
        }
        let done = sqlx::query(TOUCH_SESSION)
            .bind(token_hash)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the session (sign-out). `false` if there was none.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        if has_nul(token_hash) {
            return Ok(false);
        }
        let done = sqlx::query(DELETE_SESSION)
            .bind(token_hash)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the sessions expired at `now_ms` (`expires_ms <= now_ms`); returns how many.
    pub async fn delete_expired_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(DELETE_EXPIRED_SESSIONS)
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Starts a sign-in attempt for `email` (normalised, whether or not such a user exists)
    /// from client `address`, in one transaction serialised per e-mail and per address.
    ///
    /// The attempts that count are those of the last `limits.window_ms` milliseconds (`created_ms >
    /// now_ms - window_ms`) not cleared by a success. If the e-mail already has `max_per_email` of
    /// them, or the address `max_per_address`, the attempt is `Refused` and nothing is recorded.
    /// Otherwise it is recorded (counting as failed until
    /// [`Store::clear_login_attempts`](crate::Store::clear_login_attempts) runs for the e-mail) and
    /// `Allowed`.
    pub async fn begin_login_attempt(
        &self,
        email: &str,
        address: &str,
        now_ms: i64,
        limits: LoginLimits,
    ) -> Result<LoginAttempt, StoreError> {
        // PostgreSQL cannot store NUL; such input is refused on both backends alike.
        if has_nul(email) || has_nul(address) {
            return Ok(LoginAttempt::Refused {
                retry_after_ms: limits.window_ms.max(1),
            });
        }
        let since = now_ms - limits.window_ms;
        let mut tx = self.begin_write().await?;
        // Always e-mail first, then address: two attempts cannot wait on each other in a cycle.
        Backend::lock_key(&mut tx, &format!("login-email\n{email}")).await?;
        Backend::lock_key(&mut tx, &format!("login-address\n{address}")).await?;
        let by_email: Vec<i64> = sqlx::query_scalar(ATTEMPTS_OF_EMAIL)
            .bind(email)
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
        let by_address: Vec<i64> = sqlx::query_scalar(ATTEMPTS_OF_ADDRESS)
            .bind(address)
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
        let wait = [
            wait_for(&by_email, limits.max_per_email, now_ms, limits.window_ms),
            wait_for(&by_address, limits.max_per_address, now_ms, limits.window_ms),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after_ms) = wait {
            tx.rollback().await?;
            return Ok(LoginAttempt::Refused { retry_after_ms });
        }
        let id = Uuid::new_v4();
        sqlx::query(INSERT_ATTEMPT)
            .bind(id_text(id))
            .bind(email)
            .bind(address)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LoginAttempt::Allowed { id })
    }

    /// Deletes every recorded attempt of `email` (after a successful sign-in); returns how
    /// many.
    pub async fn clear_login_attempts(&self, email: &str) -> Result<u64, StoreError> {
        if has_nul(email) {
            return Ok(0);
        }
        let done = sqlx::query(CLEAR_ATTEMPTS)
            .bind(email)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes attempts made at or before `before_ms` (they no longer count); returns how
    /// many.
    pub async fn prune_login_attempts(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(PRUNE_ATTEMPTS)
            .bind(before_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::wait_for;

    #[test]
    fn waits_until_the_attempt_that_matters_leaves() {
        assert_eq!(wait_for(&[], 5, 100, 1_000), None);
        assert_eq!(wait_for(&[1, 2, 3, 4], 5, 100, 1_000), None);
        // Five in the window: one more once the first leaves (at 1 + 1000).
        assert_eq!(wait_for(&[1, 2, 3, 4, 5], 5, 100, 1_000), Some(901));
        // Seven (a limit lowered since): the third must leave.
        assert_eq!(wait_for(&[1, 2, 3, 4, 5, 6, 7], 5, 100, 1_000), Some(903));
        // No attempts allowed at all.
        assert_eq!(wait_for(&[], 0, 100, 1_000), Some(1_000));
    }
}
