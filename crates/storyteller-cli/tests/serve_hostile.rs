//! `storyteller serve` against hostile clients: slow and idle connections, half-sent
//! uploads at shutdown, SIGTERM, decompression bombs, a flooded queue, other sites, and
//! error answers that must still be JSON. Each test starts the real binary with small
//! limits so that the behaviour shows within seconds.

mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use server::{Server, encode, http, picture, raw};

/// Connects without sending anything.
fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent, and how long that took.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (got, started.elapsed())
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(body)))
}

/// A request head for an upload of `length` bytes.
fn upload_head(addr: &str, length: usize) -> String {
    format!(
        "POST /api/caption HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[test]
fn slow_heads_and_idle_connections_are_cut_off_and_connections_are_limited() {
    let server = Server::start(&["--header-timeout", "1", "--max-connections", "4"]);
    // A head that never completes is cut off at the header timeout.
    let mut slow = connect(&server.addr);
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0")
        .unwrap();
    let (_, waited) = read_until_closed(&mut slow);
    assert!(
        waited < Duration::from_secs(5),
        "a stalled head held its connection for {waited:?}"
    );

    // Four idle connections take every slot: the fifth is answered 503 and closed.
    let idle: Vec<TcpStream> = (0..4).map(|_| connect(&server.addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = http(&server.addr, "GET", "/api/health", &[], &[]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("connections")
    );

    // The idle ones are closed at the header timeout, and the server answers again.
    for mut stream in idle {
        let (_, waited) = read_until_closed(&mut stream);
        assert!(waited < Duration::from_secs(5), "idle for {waited:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = server.get("/api/health");
    assert_eq!(status, 200);
}

#[test]
fn an_upload_that_stalls_gets_408() {
    let server = Server::start(&["--body-timeout", "1"]);
    let mut stream = connect(&server.addr);
    let mut request = upload_head(&server.addr, 100_000).into_bytes();
    request.extend_from_slice(&[0x89, b'P', b'N', b'G']);
    stream.write_all(&request).unwrap();
    let (answer, waited) = read_until_closed(&mut stream);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn shutdown_abandons_a_half_sent_upload_at_its_deadline() {
    let server = Server::start(&["--body-timeout", "120", "--shutdown-deadline", "1"]);
    let mut stream = connect(&server.addr);
    stream
        .write_all(upload_head(&server.addr, 100_000).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.signal("INT");
    let (status, stderr) = server.wait();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(status.success(), "{status:?} {stderr}");
    assert!(stderr.contains("abandoned 1 connection"), "{stderr}");
}

#[test]
fn a_second_signal_stops_the_drain_at_once() {
    let server = Server::start(&["--body-timeout", "120", "--shutdown-deadline", "120"]);
    let mut stream = connect(&server.addr);
    stream
        .write_all(upload_head(&server.addr, 100_000).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    server.signal("INT");
    let (status, stderr) = server.wait();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("second signal"), "{stderr}");
}

/// `clients` simultaneous uploads of `png`; `during` runs while they are in flight. The
/// status and body of each answer.
fn concurrent_uploads(
    server: &Server,
    png: &[u8],
    clients: usize,
    during: impl FnOnce(),
) -> Vec<(u16, Vec<u8>)> {
    std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..clients)
            .map(|_| {
                let addr = &server.addr;
                scope.spawn(move || {
                    http(
                        addr,
                        "POST",
                        "/api/caption",
                        &[("Content-Type", "image/png")],
                        png,
                    )
                })
            })
            .collect();
        during();
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    })
}

#[test]
fn sigterm_drains_the_requests_in_flight() {
    let server = Server::start(&["--batch-window-ms", "1500"]);
    let png = encode(&picture(3), image::ImageFormat::Png);
    let answers: Vec<u16> = concurrent_uploads(&server, &png, 4, || {
        // The uploads wait in the batch window when SIGTERM arrives.
        std::thread::sleep(Duration::from_millis(600));
        server.signal("TERM");
    })
    .into_iter()
    .map(|(status, _)| status)
    .collect();
    assert_eq!(answers, [200, 200, 200, 200]);
    let (status, stderr) = server.wait();
    assert!(status.success(), "{status:?} {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

/// A valid PNG header declaring `width` x `height` pixels, with almost no pixel data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(
        &image::RgbImage::from_pixel(1, 1, image::Rgb([0, 0, 0])),
        image::ImageFormat::Png,
    );
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn oversized_and_truncated_images_are_refused_with_422() {
    let server = Server::start(&["--max-image-pixels", "2000"]);
    let bomb = png_claiming(8192, 8192);
    let (status, answer) = server.caption("", "image/png", &bomb);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("8192x8192"),
        "{answer}"
    );
    // 48 x 48 = 2304 pixels: within the side limit, over the pixel limit.
    let png = encode(&picture(1), image::ImageFormat::Png);
    let (status, answer) = server.caption("", "image/png", &png);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("2000 pixels"),
        "{answer}"
    );
    let server = Server::start(&[]);
    let jpeg = encode(&picture(2), image::ImageFormat::Jpeg);
    let (status, answer) = server.caption("", "image/jpeg", &jpeg[..jpeg.len() * 2 / 3]);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("truncated"),
        "{answer}"
    );
    let (status, _) = server.caption("", "image/jpeg", &jpeg);
    assert_eq!(status, 200);
}

#[test]
fn a_full_queue_answers_503() {
    let server = Server::start(&["--max-queue", "2", "--batch-window-ms", "2000"]);
    let png = encode(&picture(4), image::ImageFormat::Png);
    let mut answers = concurrent_uploads(&server, &png, 3, || {});
    answers.sort_by_key(|(status, _)| *status);
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 200, 503]);
    assert!(
        json_of(&answers[2].1)["error"]
            .as_str()
            .unwrap()
            .contains("busy")
    );
    let (_, health) = server.get("/api/health");
    assert_eq!(health["refused"], 1, "{health}");
}

#[test]
fn other_sites_cannot_reach_the_model() {
    let server = Server::start(&["--allowed-host", "captions.example"]);
    let png = encode(&picture(5), image::ImageFormat::Png);
    let request = |host: &str, origin: Option<&str>| {
        let mut head = format!(
            "POST /api/caption HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: image/png\r\nContent-Length: {}\r\n",
            png.len()
        );
        if let Some(origin) = origin {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&png);
        let (status, body) = raw(&server.addr, &bytes);
        (status, json_of(&body))
    };
    let addr = server.addr.clone();
    // DNS rebinding: a page of evil.example whose name now points at the loopback server.
    let (status, answer) = request("evil.example:8080", None);
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("--allowed-host"));
    // A cross-site "simple" POST from another page.
    let (status, answer) = request(&addr, Some("http://evil.example"));
    assert_eq!(status, 403, "{answer}");
    // The page itself, a named host, and clients that send no Origin are served.
    assert_eq!(request(&addr, Some(&format!("http://{addr}"))).0, 200);
    assert_eq!(request("captions.example", None).0, 200);
    assert_eq!(request(&addr, None).0, 200);
}

#[test]
fn every_error_answer_is_json_and_internals_stay_private() {
    let server = Server::start(&[]);
    let addr = server.addr.clone();
    let (status, body) = http(&addr, "GET", "/api/caption", &[], &[]);
    assert_eq!(status, 405);
    let answer = json_of(&body);
    assert!(
        answer["error"].as_str().unwrap().contains("POST"),
        "{answer}"
    );
    let long = format!("/api/health?{}", "a".repeat(10_000));
    let (status, body) = http(&addr, "GET", &long, &[], &[]);
    assert_eq!(status, 414);
    json_of(&body);
    let padding = "p".repeat(40_000);
    let (status, body) = http(&addr, "GET", "/api/health", &[("X-Padding", &padding)], &[]);
    assert_eq!(status, 431);
    json_of(&body);
    let (status, body) = http(&addr, "GET", "/nowhere", &[], &[]);
    assert_eq!(status, 404);
    json_of(&body);
    // The model's description names files, not where they live.
    let (_, model) = server.get("/api/model");
    let text = model.to_string();
    let dir = server::model()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!text.contains(&dir), "{text}");
    // Every request is in the access log, with its id, status and latency.
    let (ok, stderr) = server.interrupt();
    assert!(ok, "{stderr}");
    assert!(stderr.contains(r#"GET "/api/caption" 405"#), "{stderr}");
    assert!(stderr.contains(r#"GET "/nowhere" 404"#), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("id=") && l.contains("ms")),
        "{stderr}"
    );
}
