// The migrations are embedded by `sqlx::migrate!`; without this, editing or adding one would
// not rebuild the binaries that embed them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
