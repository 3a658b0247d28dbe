-- The web console: users, their sessions, and sign-in attempts (for the sign-in limit),
-- SQLite flavour. ../postgres/0007_console.sql must stay in step with it (same tables,
-- columns, constraint names and indexes); the conventions of 0001_init.sql hold (TEXT ids,
-- INTEGER `*_ms`; SQLite compares TEXT bytewise, as the PostgreSQL side does with
-- COLLATE "C").

-- Console users. `email` is normalised by the caller (trimmed, lower case) and unique;
-- `password_hash` is an Argon2id PHC string (never the password).
CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    -- 0 or 1
    is_admin      INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    -- set when the user is disabled: no sign-in, no session
    disabled_ms   INTEGER,
    CONSTRAINT users_email_key UNIQUE (email)
) STRICT;

-- Signed-in sessions. Only the SHA-256 (hex) of the cookie's token is stored. A session is
-- valid while now < expires_ms (the caller moves expires_ms on with use: an idle timeout).
CREATE TABLE sessions (
    token_hash   TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- the session's CSRF token, put in every form of its pages
    csrf_token   TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_ms);

-- Sign-in attempts that count against the limits: one row per attempt that has not (yet)
-- succeeded, by e-mail as typed (normalised, whether or not such a user exists) and by client
-- address. A successful sign-in deletes the e-mail's rows; old rows are pruned.
CREATE TABLE login_attempts (
    id         TEXT    NOT NULL PRIMARY KEY,
    email      TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX login_attempts_email ON login_attempts (email, created_ms);
CREATE INDEX login_attempts_address ON login_attempts (address, created_ms);
CREATE INDEX login_attempts_created ON login_attempts (created_ms);
