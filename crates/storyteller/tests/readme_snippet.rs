//! The README's "Use it as a library" section, as a new user runs it: a throwaway crate
//! outside the workspace with the README's `[dependencies]` (this crate by path instead of
//! the registry) and its program as `src/main.rs`, built with cargo and run on a model
//! directory and an image.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use storyteller::demo::run_demo;
use storyteller_test_support::tiny::{tiny_demo, tiny_train};

/// The README's fenced block of `lang` after `marker` (the first after it).
fn block_after(readme: &str, marker: &str, lang: &str) -> String {
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker:?}"));
    let fence = format!("```{lang}\n");
    let open = start + readme[start..].find(&fence).expect("a fenced block") + fence.len();
    let close = open + readme[open..].find("```").expect("a closing fence");
    readme[open..close].to_owned()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_readme_library_snippet_builds_outside_the_workspace_and_captions() {
    let root = workspace().canonicalize().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme
        .find("## Use it as a library")
        .expect("README.md has a library section")..];
    let dependencies = block_after(section, "## Use it as a library", "toml");
    let program = block_after(section, "<!-- library-snippet -->", "rust");
    assert!(
        dependencies.contains("storyteller = \"0.1\""),
        "{dependencies}"
    );
    let dependencies = dependencies.replace(
        "storyteller = \"0.1\"",
        &format!(
            "storyteller = {{ path = {:?} }}",
            root.join("crates/storyteller")
        ),
    );

    let tmp = tempfile::tempdir().unwrap();
    let krate = tmp.path().join("new-user");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"new-user\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             {dependencies}\n[workspace]\n\n[profile.dev]\ndebug = false\n"
        ),
    )
    .unwrap();
    std::fs::write(krate.join("src/main.rs"), &program).unwrap();
    // The workspace's versions, so the build reuses what CI has downloaded.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    // A target directory of its own that persists between runs (next to the workspace's).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("readme-snippet");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = Command::new(&cargo)
        .args(["build", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "the README's snippet does not build:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );

    // A model and an image from the tiny demo.
    let demo = tmp.path().join("demo");
    run_demo(&demo, &tiny_demo(tiny_train()), &Device::flex()).unwrap();
    let dataset = storyteller::Flickr30k::open(demo.join("dataset")).unwrap();
    let image = dataset.images()[0].path.clone();
    let run = Command::new(target.join("debug/new-user"))
        .arg(demo.join("model"))
        .arg(&image)
        .env("BURN_DEVICE", "flex")
        .output()
        .expect("the snippet's program runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "the path and three captions:\n{stdout}");
    assert!(lines[0].ends_with(image.file_name().unwrap().to_str().unwrap()));
    for line in &lines[1..] {
        let (score, text) = line.trim().split_once("  ").expect("score, then caption");
        assert!(score.trim().parse::<f32>().is_ok(), "{line}");
        assert!(!text.trim().is_empty(), "{line}");
    }
}
