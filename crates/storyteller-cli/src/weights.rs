//! torchvision's ResNet weights: which files, where they are cached, and a resumable,
//! checksum-verified download.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// Where torchvision's files are served from; `STORYTELLER_WEIGHTS_URL` overrides it (a
/// mirror, or a local server in tests).
pub const DEFAULT_BASE_URL: &str = "https://download.pytorch.org/models";

/// One torchvision weights file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsFile {
    /// The name on the command line (`resnet50`, `resnet50-v2`, ...).
    pub name: &'static str,
    /// torchvision's file name; the hex digits after the dash are the first digits of the
    /// file's SHA-256 (torchvision's own check).
    pub file: &'static str,
    /// torchvision's name for the weights.
    pub torchvision: &'static str,
}

impl WeightsFile {
    /// The SHA-256 prefix the file name carries.
    pub fn sha256_prefix(&self) -> &str {
        let stem = self.file.trim_end_matches(".pth");
        stem.rsplit('-').next().unwrap_or_default()
    }
}

/// The ResNet weights torchvision publishes for ImageNet: V1 (the original recipe) and V2
/// (the 2021 recipe, higher accuracy).
pub const KNOWN: [WeightsFile; 6] = [
    WeightsFile {
        name: "resnet50",
        file: "resnet50-0676ba61.pth",
        torchvision: "ResNet50_Weights.IMAGENET1K_V1",
    },
    WeightsFile {
        name: "resnet50-v2",
        file: "resnet50-11ad3fa6.pth",
        torchvision: "ResNet50_Weights.IMAGENET1K_V2",
    },
    WeightsFile {
        name: "resnet101",
        file: "resnet101-63fe2227.pth",
        torchvision: "ResNet101_Weights.IMAGENET1K_V1",
    },
    WeightsFile {
        name: "resnet101-v2",
        file: "resnet101-cd907fc2.pth",
        torchvision: "ResNet101_Weights.IMAGENET1K_V2",
    },
    WeightsFile {
        name: "resnet152",
        file: "resnet152-394f9c45.pth",
        torchvision: "ResNet152_Weights.IMAGENET1K_V1",
    },
    WeightsFile {
        name: "resnet152-v2",
        file: "resnet152-f82ba261.pth",
        torchvision: "ResNet152_Weights.IMAGENET1K_V2",
    },
];

/// The known file of `model` (`resnet50`, `resnet101`, `resnet152`), V2 when `v2`.
pub fn lookup(model: &str, v2: bool) -> Option<&'static WeightsFile> {
    let name = if v2 {
        format!("{model}-v2")
    } else {
        model.to_owned()
    };
    KNOWN.iter().find(|w| w.name == name)
}

/// The weights cache: `STORYTELLER_WEIGHTS_DIR`, else `$XDG_CACHE_HOME/storyteller/weights`,
/// else `~/.cache/storyteller/weights`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("STORYTELLER_WEIGHTS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::home_dir()
            .context("no home directory: set STORYTELLER_WEIGHTS_DIR")?
            .join(".cache"),
    };
    Ok(base.join("storyteller").join("weights"))
}

/// The base URL: `STORYTELLER_WEIGHTS_URL` or torchvision's.
pub fn base_url() -> String {
    std::env::var("STORYTELLER_WEIGHTS_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned())
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The file was in the cache already (and verified).
    Cached(PathBuf),
    /// Downloaded now; `resumed_from` bytes came from an earlier, interrupted download.
    Downloaded {
        /// Where it is.
        path: PathBuf,
        /// Bytes kept from an interrupted download (0 for a fresh one).
        resumed_from: u64,
    },
}

impl Fetched {
    /// The verified file.
    pub fn path(&self) -> &Path {
        match self {
            Fetched::Cached(path) | Fetched::Downloaded { path, .. } => path,
        }
    }
}

/// Downloads `weights` from `base_url` into `dir` unless a verified copy is there.
///
/// The download goes to `<file>.part`; an interrupted one is resumed with an HTTP range
/// request (a server that ignores it sends the whole file, which replaces the part). The
/// finished file's SHA-256 must start with the digits in its name, or it is deleted and the
/// download fails; only then is it renamed into place.
///
/// # Errors
/// A network or HTTP failure (the part file is kept for a resume), a checksum mismatch, or
/// an I/O failure.
pub fn fetch(
    weights: &WeightsFile,
    base_url: &str,
    dir: &Path,
    progress: bool,
) -> anyhow::Result<Fetched> {
    let path = dir.join(weights.file);
    if path.exists() {
        verify(&path, weights)?;
        return Ok(Fetched::Cached(path));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the weights cache", dir.display()))?;
    let part = dir.join(format!("{}.part", weights.file));
    let url = format!("{}/{}", base_url.trim_end_matches('/'), weights.file);
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(&url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request
        .call()
        .with_context(|| format!("{url}: download failed"))?;
    let status = response.status().as_u16();
    let (resumed_from, mut file) = match status {
        206 => (
            have,
            OpenOptions::new()
                .append(true)
                .open(&part)
                .with_context(|| format!("{}: cannot append", part.display()))?,
        ),
        200 => (
            0,
            File::create(&part).with_context(|| format!("{}: cannot create", part.display()))?,
        ),
        // The part already holds the whole file.
        416 if have > 0 => (
            have,
            OpenOptions::new()
                .append(true)
                .open(&part)
                .with_context(|| format!("{}: cannot open", part.display()))?,
        ),
        other => bail!("{url}: the server answered HTTP {other}"),
    };
    if status != 416 {
        let total = response.body().content_length().map(|n| n + resumed_from);
        let bar = if progress {
            total.map_or_else(ProgressBar::no_length, ProgressBar::new)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid progress template"),
        );
        bar.set_position(resumed_from);
        let mut body = bar.wrap_read(response.into_body().into_reader());
        let copied = copy_body(&mut body, &mut file);
        bar.finish_and_clear();
        copied.with_context(|| {
            let kept = std::fs::metadata(&part).map_or(0, |m| m.len());
            format!(
                "{url}: download interrupted after {kept} bytes (kept in {}; run the command again to resume)",
                part.display()
            )
        })?;
    }
    file.sync_all()
        .with_context(|| format!("{}: cannot sync", part.display()))?;
    drop(file);
    if let Err(err) = verify(&part, weights) {
        let _ = std::fs::remove_file(&part);
        return Err(err.context(format!(
            "{url}: the download is corrupt and was deleted; run the command again"
        )));
    }
    std::fs::rename(&part, &path)
        .with_context(|| format!("{}: cannot move into place", path.display()))?;
    Ok(Fetched::Downloaded { path, resumed_from })
}

/// Copies a response body to the file, writing every chunk as it arrives (so an interrupted
/// download keeps what it received).
fn copy_body(body: &mut impl Read, file: &mut File) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..n])?;
    }
}

/// Checks that the SHA-256 of `path` starts with the digits in `weights`' file name.
fn verify(path: &Path, weights: &WeightsFile) -> anyhow::Result<()> {
    let digest = sha256_hex(path)?;
    let prefix = weights.sha256_prefix();
    if !digest.starts_with(prefix) {
        bail!(
            "{}: SHA-256 {digest} does not start with {prefix}, as torchvision's file name {} says",
            path.display(),
            weights.file
        );
    }
    Ok(())
}

/// The SHA-256 of a file, in hex.
fn sha256_hex(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A `--weights` value: a file path, or the name of known torchvision weights
/// (`resnet50`, `resnet50-v2`, ...), fetched into the cache when missing.
///
/// # Errors
/// A name whose download fails.
pub fn resolve(value: &Path) -> anyhow::Result<PathBuf> {
    let Some(weights) = value
        .to_str()
        .and_then(|name| KNOWN.iter().find(|w| w.name == name))
    else {
        return Ok(value.to_owned());
    };
    if value.exists() {
        // A file that happens to carry the name wins over the cache.
        return Ok(value.to_owned());
    }
    let dir = cache_dir()?;
    if !dir.join(weights.file).exists() {
        eprintln!(
            "--weights {}: fetching {} ({}) into {}",
            weights.name,
            weights.file,
            weights.torchvision,
            dir.display()
        );
    }
    Ok(fetch(weights, &base_url(), &dir, true)?.path().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    #[test]
    fn every_known_file_carries_a_sha256_prefix() {
        for weights in &KNOWN {
            let prefix = weights.sha256_prefix();
            assert_eq!(prefix.len(), 8, "{}", weights.file);
            assert!(prefix.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_eq!(
            lookup("resnet50", false).unwrap().file,
            "resnet50-0676ba61.pth"
        );
        assert_eq!(
            lookup("resnet152", true).unwrap().file,
            "resnet152-f82ba261.pth"
        );
        assert!(lookup("resnet18", false).is_none());
    }

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// The whole file, or the asked range.
        Honest,
        /// Claims the whole length but closes the connection halfway (the first request
        /// only), then honest.
        TruncateOnce,
        /// Sends other bytes than the file.
        Corrupt,
    }

    /// A one-file HTTP/1.1 server on loopback; returns its base URL and the requests' Range
    /// headers.
    fn serve(
        file: &'static str,
        body: Vec<u8>,
        behaviour: Behaviour,
    ) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/models", listener.local_addr().unwrap());
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut range = None;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("range")
                    {
                        range = Some(value.trim().to_owned());
                    }
                }
                seen.lock().unwrap().push(range.clone());
                if !request_line.contains(&format!("/models/{file} ")) {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                }
                let mut payload = body.clone();
                if matches!(behaviour, Behaviour::Corrupt) {
                    payload[0] ^= 0xff;
                }
                let start = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                let head = match start {
                    Some(start) => format!(
                        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
                        payload.len() - start,
                        payload.len() - 1,
                        payload.len()
                    ),
                    None => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        payload.len()
                    ),
                };
                let start = start.unwrap_or(0);
                let end = if matches!(behaviour, Behaviour::TruncateOnce) && n == 0 {
                    payload.len() / 2
                } else {
                    payload.len()
                };
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&payload[start..end]);
            }
        });
        (base, ranges)
    }

    /// Fake weights and the entry that names them (a real prefix of their SHA-256).
    fn fake_weights(dir: &Path) -> (Vec<u8>, WeightsFile) {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let probe = dir.join("probe");
        std::fs::write(&probe, &body).unwrap();
        let prefix = sha256_hex(&probe).unwrap()[..8].to_owned();
        std::fs::remove_file(&probe).unwrap();
        let file: &'static str = Box::leak(format!("fake-{prefix}.pth").into_boxed_str());
        let weights = WeightsFile {
            name: "fake",
            file,
            torchvision: "Fake_Weights.TEST",
        };
        (body, weights)
    }

    #[test]
    fn downloads_verifies_and_then_uses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (body, weights) = fake_weights(dir.path());
        let (base, ranges) = serve(weights.file, body.clone(), Behaviour::Honest);
        let cache = dir.path().join("cache");
        let fetched = fetch(&weights, &base, &cache, false).unwrap();
        assert_eq!(
            fetched,
            Fetched::Downloaded {
                path: cache.join(weights.file),
                resumed_from: 0
            }
        );
        assert_eq!(std::fs::read(fetched.path()).unwrap(), body);
        assert_eq!(
            fetch(&weights, &base, &cache, false).unwrap(),
            Fetched::Cached(cache.join(weights.file))
        );
        assert_eq!(
            ranges.lock().unwrap().len(),
            1,
            "the cache needs no request"
        );
    }

    #[test]
    fn a_truncated_download_is_kept_and_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let (body, weights) = fake_weights(dir.path());
        let (base, ranges) = serve(weights.file, body.clone(), Behaviour::TruncateOnce);
        let cache = dir.path().join("cache");
        let err = format!("{:#}", fetch(&weights, &base, &cache, false).unwrap_err());
        assert!(err.contains("interrupted after 150000 bytes"), "{err}");
        assert!(err.contains("run the command again to resume"), "{err}");
        let fetched = fetch(&weights, &base, &cache, false).unwrap();
        assert_eq!(
            fetched,
            Fetched::Downloaded {
                path: cache.join(weights.file),
                resumed_from: 150_000
            }
        );
        assert_eq!(std::fs::read(fetched.path()).unwrap(), body);
        assert_eq!(
            *ranges.lock().unwrap(),
            [None, Some("bytes=150000-".to_owned())]
        );
        assert!(!cache.join(format!("{}.part", weights.file)).exists());
    }

    #[test]
    fn a_corrupt_download_is_deleted_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (body, weights) = fake_weights(dir.path());
        let (base, _) = serve(weights.file, body, Behaviour::Corrupt);
        let cache = dir.path().join("cache");
        let err = format!("{:#}", fetch(&weights, &base, &cache, false).unwrap_err());
        assert!(err.contains("corrupt and was deleted"), "{err}");
        assert!(err.contains("does not start with"), "{err}");
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            0,
            "nothing left"
        );

        // A corrupted file in the cache is refused too.
        std::fs::write(cache.join(weights.file), b"not the weights").unwrap();
        let err = format!("{:#}", fetch(&weights, &base, &cache, false).unwrap_err());
        assert!(err.contains("does not start with"), "{err}");
    }

    #[test]
    fn an_http_error_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (body, weights) = fake_weights(dir.path());
        let (base, _) = serve("another-file.pth", body, Behaviour::Honest);
        let err = format!(
            "{:#}",
            fetch(&weights, &base, &dir.path().join("cache"), false).unwrap_err()
        );
        assert!(err.contains("HTTP 404"), "{err}");
    }
}
