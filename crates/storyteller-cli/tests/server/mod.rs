//! The `storyteller serve` harness shared by the serve tests: a tiny demo model, the real
//! binary on a loopback port, and a minimal HTTP/1.1 client that shows exactly what the
//! server sent.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use burn::tensor::Device;
use image::RgbImage;
use serde_json::Value;
use storyteller::demo::run_demo;
use storyteller::{Captioner, Search};
use storyteller_test_support::tiny::{tiny_demo, tiny_train};

// ---------------------------------------------------------------- fixtures

pub struct Model {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// One tiny demo model (`tiny_demo`, 2 epochs) shared by every test.
pub fn model() -> &'static Path {
    static MODEL: OnceLock<Model> = OnceLock::new();
    &MODEL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("demo");
            let config = tiny_demo(tiny_train().with_epochs(2));
            run_demo(&out, &config, &Device::flex()).unwrap();
            Model {
                _dir: dir,
                path: out.join("model"),
            }
        })
        .path
}

/// The library's captions of `image` with `search`, loaded in this process. Burn's random
/// generator is global, so loads are serialised.
pub fn library_captions(image: &RgbImage, search: &Search) -> Vec<String> {
    static LOCK: Mutex<()> = Mutex::new(());
    let captioner = {
        let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        Captioner::load(model(), &Device::flex()).unwrap()
    };
    captioner
        .ranked(std::slice::from_ref(image), search)
        .unwrap()
        .remove(0)
        .into_iter()
        .map(|c| c.text)
        .collect()
}

/// The longest caption the model's configured search writes.
pub fn beam_max_len() -> usize {
    storyteller::ModelConfig::load(model())
        .unwrap()
        .beam
        .max_len
}

pub fn beam(width: usize, n_best: usize) -> Search {
    let captioner_beam = storyteller::ModelConfig::load(model()).unwrap().beam;
    Search::Beam(captioner_beam.with_width(width).with_n_best(n_best))
}

/// A 48 px picture: a coloured square on a plain background.
pub fn picture(seed: u8) -> RgbImage {
    RgbImage::from_fn(48, 48, |x, y| {
        if (12..36).contains(&x) && (12..36).contains(&y) {
            image::Rgb([200, seed.wrapping_mul(40), 40])
        } else {
            image::Rgb([240, 240, 240])
        }
    })
}

pub fn encode(image: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

// ---------------------------------------------------------------- the server

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything the server wrote to stderr so far (read by a thread, so that the access
    /// log never fills the pipe and blocks the server).
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(model(), extra)
    }

    pub fn start_with(model: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storyteller"))
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the storyteller binary runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.wait();
            let _ = stderr_reader.join();
            panic!(
                "the server did not start: {line:?} {}",
                stderr.lock().unwrap()
            )
        };
        Self {
            child,
            addr: addr.to_owned(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(&self.addr, "GET", path, &[], &[]);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn caption(&self, query: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let (status, body) = http(
            &self.addr,
            "POST",
            &format!("/api/caption{query}"),
            &[("Content-Type", content_type)],
            body,
        );
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
        (status, value)
    }

    /// Ctrl-C: SIGINT, then the exit status and stderr.
    pub fn interrupt(self) -> (bool, String) {
        self.signal("INT");
        let (status, err) = self.wait();
        (status.success(), err)
    }

    /// Sends the signal `name` (`INT`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the server to exit: its status and stderr.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the (de-chunked) body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    exchange(stream, &request)
}

/// Sends `request` (bytes exactly as given) on a fresh connection; the status and body.
pub fn raw(addr: &str, request: &[u8]) -> (u16, Vec<u8>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    exchange(stream, request)
}

/// Writes `request` on `stream` and reads the response.
fn exchange(mut stream: TcpStream, request: &[u8]) -> (u16, Vec<u8>) {
    let addr = stream
        .peer_addr()
        .map_or_else(|_| "the server".to_owned(), |a| a.to_string());
    // The server may answer (413) and close before reading everything; the answer counts.
    let _ = stream.write_all(request);
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap_or(0);
        assert!(
            n > 0,
            "no complete HTTP response head from {addr}: {head:?}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_lowercase());
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status: {head:?}"));
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length") {
        // Read exactly the body: a keep-alive peer (chromedriver) may not close.
        body.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    (status, body)
}

pub fn multipart(field: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "storytellerboundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn texts(answer: &Value) -> Vec<String> {
    answer["captions"]
        .as_array()
        .unwrap_or_else(|| panic!("no captions: {answer}"))
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}
