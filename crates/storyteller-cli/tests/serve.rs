//! `storyteller serve` end to end: the JSON API against the library, every bad input, a
//! panic-free batch of 32, a bounded load test, and the page in headless Chromium.
//!
//! Every server is the real binary on a loopback port chosen by the OS; the model is a
//! tiny `storyteller demo` run shared by the tests (`server/`).

mod server;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use storyteller::{GreedySearch, Search};

use server::{
    Server, beam, beam_max_len, encode, http, library_captions, model, multipart, picture, texts,
};

// ---------------------------------------------------------------- the API

#[test]
fn api_captions_like_the_library_and_answers_bad_input_with_4xx() {
    let server = Server::start(&["--max-upload-bytes", "200000"]);
    let image = picture(1);
    let png = encode(&image, image::ImageFormat::Png);

    // Good images: raw body and multipart, beam and greedy, equal to the library's.
    let (status, answer) = server.caption("?n_best=3", "image/png", &png);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(texts(&answer), library_captions(&image, &beam(3, 3)));
    assert_eq!(
        answer["search"],
        json!({"kind": "beam", "width": 3, "n_best": 3})
    );
    let (content_type, body) = multipart("image", &png);
    let (status, answer) = server.caption("?search=greedy", &content_type, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        texts(&answer),
        library_captions(&image, &Search::Greedy(GreedySearch::new()))
    );
    let jpeg = encode(&picture(2), image::ImageFormat::Jpeg);
    let (status, answer) = server.caption("?width=5", "image/jpeg", &jpeg);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(texts(&answer).len(), 1);

    // Bad input: a 4xx with a message that says what is wrong.
    let mut truncated = png.clone();
    truncated.truncate(png.len() / 2);
    let mut huge = encode(&picture(3), image::ImageFormat::Jpeg);
    let sof = huge.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    huge[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60,000 x 60,000
    let (multipart_type, no_image_field) = multipart("photo", &png);
    // (name, query, content type, body, status, part of the message)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "not an image",
            "",
            "text/plain",
            b"hello, I am text".to_vec(),
            422,
            "cannot decode image",
        ),
        (
            "truncated png",
            "",
            "image/png",
            truncated,
            422,
            "cannot decode image",
        ),
        ("huge dimensions", "", "image/jpeg", huge, 422, "upload"),
        ("empty body", "", "image/png", Vec::new(), 400, "empty"),
        (
            "over the limit",
            "",
            "image/png",
            vec![0u8; 300_000],
            413,
            "limit of 200000 bytes",
        ),
        (
            "no image field",
            "",
            &multipart_type,
            no_image_field,
            400,
            "`image` field",
        ),
        (
            "bad search",
            "?search=sample",
            "image/png",
            png.clone(),
            400,
            "expected greedy or beam",
        ),
        (
            "bad width",
            "?width=0",
            "image/png",
            png.clone(),
            400,
            "width",
        ),
        (
            "width not a number",
            "?width=three",
            "image/png",
            png.clone(),
            400,
            "width",
        ),
        (
            "n_best over width",
            "?width=2&n_best=3",
            "image/png",
            png.clone(),
            400,
            "n_best (3)",
        ),
        (
            "unknown parameter",
            "?beam=3",
            "image/png",
            png.clone(),
            400,
            "unknown query parameter",
        ),
    ];
    for (name, query, content_type, body, expected, message) in cases {
        let (status, answer) = server.caption(query, content_type, &body);
        assert_eq!(status, expected, "{name}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(message),
            "{name}: {error:?} lacks {message:?}"
        );
    }
    let (status, answer) = server.get("/api/nothing");
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("no such route"))
    );

    // Still serving, and the model's config and metrics are there.
    let (status, answer) = server.caption("", "image/png", &png);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(texts(&answer), library_captions(&image, &beam(3, 1)));
    let (status, health) = server.get("/api/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["panics"], 0);
    let (status, info) = server.get("/api/model");
    assert_eq!(status, 200);
    assert_eq!(info["config"]["decoder"]["d_hidden"], 32);
    assert_eq!(info["metrics"].as_array().unwrap().len(), 2);
    let (status, page) = http(&server.addr, "GET", "/", &[], &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Neural Storyteller"));

    // Ctrl-C: a clean exit.
    let (success, stderr) = server.interrupt();
    assert!(success, "{stderr}");
    assert!(stderr.contains("shut down"), "{stderr}");
}

#[test]
fn thirty_two_simultaneous_uploads_are_one_batch() {
    let server = Server::start(&["--max-batch", "32", "--batch-window-ms", "5000"]);
    let pngs: Vec<Vec<u8>> = (0..32u8)
        .map(|i| encode(&picture(i), image::ImageFormat::Png))
        .collect();
    let started = Instant::now();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = pngs
            .iter()
            .map(|png| scope.spawn(|| server.caption("?search=greedy", "image/png", png)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
    }
    let (_, health) = server.get("/api/health");
    assert_eq!(health["batches"], 1, "{health}");
    assert_eq!(health["images"], 32, "{health}");
    // The batch is full at 32, so nobody waited for the 5 s window.
    eprintln!("32 simultaneous uploads: {:?}", started.elapsed());
}

// ---------------------------------------------------------------- load

#[test]
fn load_200_requests_from_16_clients_without_failures() {
    let server = Server::start(&[]);
    let pngs: Vec<Vec<u8>> = (0..8u8)
        .map(|i| encode(&picture(i), image::ImageFormat::Png))
        .collect();
    let report = load(&server.addr, &pngs, 200, 16);
    let (_, health) = server.get("/api/health");
    let summary = format!("{report}; model calls {}", health["batches"]);
    eprintln!("{summary}");
    std::fs::write(artifact_path("serve-load.txt"), summary + "\n").unwrap();
    assert_eq!(report.failures, 0, "{report}");
    assert_eq!(health["images"], 200);
}

struct LoadReport {
    requests: usize,
    clients: usize,
    failures: usize,
    p50: Duration,
    p99: Duration,
    wall: Duration,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests from {} clients: {} failures, p50 {:.1} ms, p99 {:.1} ms, {:.1} req/s",
            self.requests,
            self.clients,
            self.failures,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests as f64 / self.wall.as_secs_f64()
        )
    }
}

fn load(addr: &str, pngs: &[Vec<u8>], requests: usize, clients: usize) -> LoadReport {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= requests {
                            break mine;
                        }
                        let t = Instant::now();
                        let (status, body) = http(
                            addr,
                            "POST",
                            "/api/caption",
                            &[("Content-Type", "image/png")],
                            &pngs[i % pngs.len()],
                        );
                        let ok = status == 200
                            && serde_json::from_slice::<Value>(&body)
                                .is_ok_and(|v| v["captions"][0]["text"].is_string());
                        mine.push((t.elapsed(), ok));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    latencies.sort();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    LoadReport {
        requests,
        clients,
        failures: results.iter().filter(|(_, ok)| !ok).count(),
        p50: quantile(0.5),
        p99: quantile(0.99),
        wall,
    }
}

// ---------------------------------------------------------------- the browser

/// A WebDriver session (through the `fantoccini` client) on a chromedriver we started, driven
/// synchronously from the test on a runtime of its own.
struct Browser {
    driver: Child,
    runtime: tokio::runtime::Runtime,
    client: Option<fantoccini::Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` (with a message) when they are not
    /// installed, unless `STORYTELLER_REQUIRE_FIXTURES=1` (`scripts/test.sh`), which fails.
    fn start() -> Option<Self> {
        let chromedriver = std::env::var("STORYTELLER_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let chromium = std::env::var("STORYTELLER_CHROMIUM")
            .unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        if !(Path::new(&chromedriver).exists() && Path::new(&chromium).exists()) {
            let why = format!(
                "the browser test needs Chromium and ChromeDriver ({chromium}, {chromedriver}; \
                 Debian: apt-get install chromium chromium-driver, or set STORYTELLER_CHROMIUM \
                 and STORYTELLER_CHROMEDRIVER)"
            );
            assert!(
                std::env::var("STORYTELLER_REQUIRE_FIXTURES").as_deref() != Ok("1"),
                "{why}, and STORYTELLER_REQUIRE_FIXTURES=1"
            );
            eprintln!("skipped: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1100,760",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                fantoccini::ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://{addr}")),
            )
            .unwrap_or_else(|err| panic!("no WebDriver session: {err}"));
        Some(Self {
            driver,
            runtime,
            client: Some(client),
            _profile: profile,
        })
    }

    fn client(&self) -> &fantoccini::Client {
        self.client.as_ref().expect("a live session")
    }

    fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|err| panic!("WebDriver goto {url}: {err}"));
    }

    /// Types `text` into the element `css` names (a file input takes a path).
    fn send_keys(&self, css: &str, text: &str) {
        self.runtime
            .block_on(async {
                let element = self.client().find(fantoccini::Locator::Css(css)).await?;
                element.send_keys(text).await
            })
            .unwrap_or_else(|err| panic!("WebDriver send_keys {css}: {err}"));
    }

    fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.runtime
            .block_on(self.client().execute(script, args))
            .unwrap_or_else(|err| panic!("WebDriver script: {err}"))
    }
}

impl Browser {
    /// Waits until the page has answered (state `done` or `error`) and reads what it shows.
    fn wait_for_caption(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.script("return document.body.dataset.state", vec![]);
            if state == "done" || state == "error" {
                break;
            }
            assert!(Instant::now() < deadline, "no caption after 60 s: {state}");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.script(
            "return { state: document.body.dataset.state, \
             caption: document.getElementById('caption').textContent, \
             candidates: [...document.querySelectorAll('#alternatives li span:first-child')].map(e => e.textContent), \
             status: document.getElementById('status').textContent, \
             width_disabled: document.getElementById('width').disabled, \
             preview: document.querySelector('#drop img') !== null }",
            vec![],
        )
    }

    /// Sets a control of the page as a person would (value, then a change event).
    fn set_control(&self, id: &str, value: &str) {
        self.script(
            "document.body.dataset.state = 'changing'; \
             const el = document.getElementById(arguments[0]); \
             el.value = arguments[1]; \
             el.dispatchEvent(new Event('change'));",
            vec![json!(id), json!(value)],
        );
    }

    /// A PNG of the viewport.
    fn screenshot(&self) -> Vec<u8> {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .unwrap_or_else(|err| panic!("no screenshot: {err}"));
        assert!(image::load_from_memory(&png).unwrap().width() > 500);
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where a test leaves an artifact for CI to show: the cargo target directory.
fn artifact_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(
                &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
            )
            .join("../../target")
        });
    std::fs::create_dir_all(&target).unwrap();
    target.join(name)
}

#[test]
fn the_page_captions_an_uploaded_image_in_headless_chromium() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start(&[]);
    let image = picture(4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shapes.png");
    image.save(&file).unwrap();
    let expected = library_captions(&image, &beam(3, 3));

    browser.goto(&format!("http://{}/", server.addr));
    browser.send_keys("#file", file.to_str().unwrap());
    let page = browser.wait_for_caption();
    let png = browser.screenshot();
    let path = artifact_path("serve-screenshot.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    assert_eq!(page["state"], "done", "{page}");
    assert_eq!(page["caption"], expected[0].as_str(), "{page}");
    assert_eq!(page["candidates"], json!(expected), "{page}");
    assert_eq!(page["preview"], true);

    // Width 5 asks for five candidates; greedy for the one greedy caption.
    browser.set_control("width", "5");
    let page = browser.wait_for_caption();
    assert_eq!(
        page["candidates"],
        json!(library_captions(&image, &beam(5, 5))),
        "{page}"
    );
    browser.set_control("search", "greedy");
    let page = browser.wait_for_caption();
    let greedy = Search::Greedy(GreedySearch::new().with_max_len(beam_max_len()));
    assert_eq!(
        page["candidates"],
        json!(library_captions(&image, &greedy)),
        "{page}"
    );
    assert_eq!(page["width_disabled"], true, "{page}");
    assert!(image::load_from_memory(&png).unwrap().width() > 500);
}

/// A model directory is a file tree anyone may have written: values from its
/// `metrics.jsonl` reach the page as text, never as markup (the seed's footer ran script
/// stored there).
#[test]
fn the_page_renders_model_files_as_text() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("<img src=x onerror=window.pwned=1>");
    std::fs::create_dir_all(&hostile).unwrap();
    for file in ["config.json", "vocab.json", "decoder.bpk"] {
        std::fs::copy(model().join(file), hostile.join(file)).unwrap();
    }
    let mut config = storyteller::ModelConfig::load(model()).unwrap();
    config.encoder.weights = config.encoder_weights(model());
    config.save(&hostile).unwrap();
    let script = "<img src=x onerror=window.pwned=2>";
    let line = json!({"epoch": script, "val_bleu4": script});
    std::fs::write(hostile.join("metrics.jsonl"), format!("{line}\n")).unwrap();
    let server = Server::start_with(&hostile, &[]);
    let (status, info) = server.get("/api/model");
    assert_eq!(status, 200);
    assert!(
        !info.to_string().contains(dir.path().to_str().unwrap()),
        "/api/model reveals where the files live: {info}"
    );

    browser.goto(&format!("http://{}/", server.addr));
    let mut footer = Value::Null;
    for _ in 0..100 {
        footer = browser.script(
            "const f = document.getElementById('model'); return [f.textContent, f.querySelectorAll('img').length, window.pwned === undefined];",
            Vec::new(),
        );
        if footer[0].as_str().is_some_and(|t| t.contains("/api/model")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        footer[0]
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=window.pwned=1>"),
        "{footer}"
    );
    assert_eq!(
        footer[1], 0,
        "markup from the model directory was rendered: {footer}"
    );
    assert_eq!(
        footer[2], true,
        "script from the model directory ran: {footer}"
    );
}
