//! Where the generated fixtures live (`scripts/fixtures.d/`), and what a test does when
//! they are missing: skip visibly, or fail when `STORYTELLER_REQUIRE_FIXTURES=1`.

use std::path::PathBuf;

/// The version stamp `scripts/make_resnet_fixture.py` writes.
pub const ENCODER_FIXTURE_VERSION: &str = "encoder-fixture-v3";

/// Whether a missing fixture must fail the test (`STORYTELLER_REQUIRE_FIXTURES=1`).
pub fn required() -> bool {
    std::env::var("STORYTELLER_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

/// The fixture root: `$STORYTELLER_FIXTURES`, else `~/.cache/storyteller/fixtures`.
pub fn root() -> PathBuf {
    std::env::var_os("STORYTELLER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/storyteller/fixtures")
        })
}

/// The encoder fixture directory when it holds a current fixture; otherwise [`skip`]s.
pub fn encoder_fixture_dir(test: &str) -> Option<PathBuf> {
    let dir = root();
    let stamp = std::fs::read_to_string(dir.join("VERSION-encoder")).unwrap_or_default();
    if stamp.trim() == ENCODER_FIXTURE_VERSION {
        return Some(dir);
    }
    skip(
        test,
        &format!(
            "encoder fixture {ENCODER_FIXTURE_VERSION} not found in {} \
             (run scripts/fixtures.d/40-encoder.sh)",
            dir.display()
        ),
    );
    None
}

/// Reports a skipped test on stderr, or panics when fixtures are [`required`].
///
/// # Panics
/// When `STORYTELLER_REQUIRE_FIXTURES=1`.
pub fn skip(test: &str, why: &str) {
    if required() {
        panic!("{test}: {why}, and STORYTELLER_REQUIRE_FIXTURES=1");
    }
    // Written to the stderr handle, not with eprintln!, so libtest's output capture does
    // not hide it.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}
