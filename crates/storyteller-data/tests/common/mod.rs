//! Shared helpers for the fixture-based tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// Whether a missing fixture must fail the test (`STORYTELLER_REQUIRE_FIXTURES=1`).
pub fn required() -> bool {
    std::env::var("STORYTELLER_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

/// The storyteller-data fixture folder, or `None` (with a visible skip
/// message) when it was not generated. Panics instead when fixtures are required.
pub fn fixtures(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("STORYTELLER_FIXTURES")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/storyteller/fixtures"))
        })?;
    let dir = root.join("data");
    if dir.join("preprocess_reference.safetensors").is_file() {
        return Some(dir);
    }
    skip(
        test,
        &format!(
            "fixtures missing in {} (run scripts/fixtures.d/30-data.sh)",
            dir.display()
        ),
    );
    None
}

/// The Python interpreter with the reference packages, or `None` with a skip message.
pub fn python(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("STORYTELLER_PYTHON").map(PathBuf::from),
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/storyteller/venv/bin/python")),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import safetensors, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    skip(
        test,
        "no Python with safetensors and numpy (set STORYTELLER_PYTHON)",
    );
    None
}

fn skip(test: &str, why: &str) {
    if required() {
        panic!("{test}: {why}, and STORYTELLER_REQUIRE_FIXTURES=1");
    }
    // Written to the stderr handle, not with eprintln!, so libtest's output
    // capture does not hide it.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}
