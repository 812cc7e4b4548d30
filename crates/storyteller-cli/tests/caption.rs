//! `storyteller caption` on awkward file names: a name that is not UTF-8 is captioned and
//! reported (lossily) in the JSON, not a panic.

mod server;

use std::process::Command;

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_is_captioned() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    let png = server::encode(&server::picture(2), image::ImageFormat::Png);
    std::fs::write(&path, png).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_storyteller"))
        .args(["caption", "--json", "--model"])
        .arg(server::model())
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let image = answer[0]["image"].as_str().unwrap();
    assert!(image.ends_with("caf\u{fffd}.png"), "{image}");
    assert!(
        !answer[0]["captions"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty()
    );
}
