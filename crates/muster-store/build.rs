//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of the
//! migration folders at compile time, and Cargo tracks the files it read but not new ones.
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
