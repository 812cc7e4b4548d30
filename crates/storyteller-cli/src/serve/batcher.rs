//! The model thread: one `std::thread` owns the model, collects the requests that arrive
//! within a short window, decodes them in parallel and captions each group of requests
//! with the same search settings in one batch.
//!
//! Memory is bounded three ways: at most `max_queue` requests wait (more are refused, and
//! the server answers 503), one batch decodes at most `max_batch_pixels` pixels (declared by
//! the image headers, read before decoding; later uploads wait for the next batch), and
//! each image obeys the per-image [`DecodeLimits`]. A request whose client has gone is
//! dropped before it costs a decode or a forward.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use image::RgbImage;
use rayon::prelude::*;
use storyteller::{Caption, Search};
use storyteller_data::{DecodeLimits, decode_rgb_bytes, image_dimensions};
use tokio::sync::oneshot;

/// How the model thread batches.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// How long the thread waits for more requests after the first of a batch.
    pub window: Duration,
    /// Most images in one batch.
    pub max_batch: usize,
    /// Most pixels decoded for one batch (the first image of a batch is always taken).
    pub max_batch_pixels: u64,
    /// Most requests waiting for a batch; more are refused with [`JobError::Busy`].
    pub max_queue: usize,
    /// Limits on each decoded upload.
    pub limits: DecodeLimits,
}

/// Why a request got no caption.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// The upload is not an image this server can decode (the client's fault).
    BadImage(String),
    /// The model failed or panicked on this request's batch (the server's fault).
    Model(String),
    /// The queue is full (the server is overloaded; the client may retry).
    Busy,
    /// The model thread is gone.
    Stopped,
}

/// Counters the health endpoint reports.
#[derive(Debug, Default)]
pub struct Stats {
    /// Model calls made (one per search group of a batch).
    pub batches: AtomicU64,
    /// Images captioned.
    pub images: AtomicU64,
    /// Model calls that panicked (and were survived).
    pub panics: AtomicU64,
    /// Requests refused because the queue was full.
    pub refused: AtomicU64,
    /// Requests dropped unprocessed because their client had gone.
    pub abandoned: AtomicU64,
    /// Requests waiting for a batch now.
    pub waiting: AtomicUsize,
}

/// The decoded requests of one batch that asked for the same search.
struct SearchGroup {
    /// `search` printed, to compare settings that have no `PartialEq`.
    key: String,
    search: Search,
    members: Vec<(Job, RgbImage)>,
}

struct Job {
    bytes: Bytes,
    search: Search,
    reply: oneshot::Sender<Result<Vec<Caption>, JobError>>,
    /// Holds the request's place in the queue until its batch starts.
    ticket: Option<QueueTicket>,
}

/// A place in the queue: counted in [`Stats::waiting`] until dropped.
struct QueueTicket(Arc<Stats>);

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The handle requests use to reach the model thread; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
    stats: Arc<Stats>,
    max_queue: usize,
}

impl Batcher {
    /// Starts the model thread. `init` runs on that thread and builds the model (so the
    /// model never has to be `Send`) plus a value handed back to the caller.
    ///
    /// # Errors
    /// `init`'s error, or a panic in it.
    pub fn spawn<I, M, T>(init: I, settings: BatchSettings) -> anyhow::Result<(Self, T)>
    where
        I: FnOnce() -> anyhow::Result<(M, T)> + Send + 'static,
        M: FnMut(&[RgbImage], &Search) -> anyhow::Result<Vec<Vec<Caption>>> + 'static,
        T: Send + 'static,
    {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let worker_stats = Arc::clone(&stats);
        let max_queue = settings.max_queue.max(1);
        std::thread::Builder::new()
            .name("storyteller-model".into())
            .spawn(move || match init() {
                Ok((model, value)) => {
                    let _ = ready_tx.send(Ok(value));
                    run_worker(&rx, model, &settings, &worker_stats);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })?;
        let value = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the model thread panicked while loading the model"))??;
        Ok((
            Self {
                jobs,
                stats,
                max_queue,
            },
            value,
        ))
    }

    /// Captions one uploaded image; waits for its batch. Dropping the future (the client
    /// went away) withdraws the request: the model thread skips it.
    ///
    /// # Errors
    /// [`JobError::Busy`] at once when `max_queue` requests are already waiting.
    pub async fn caption(&self, bytes: Bytes, search: Search) -> Result<Vec<Caption>, JobError> {
        let waiting = self.stats.waiting.fetch_add(1, Ordering::AcqRel);
        let ticket = QueueTicket(Arc::clone(&self.stats));
        if waiting >= self.max_queue {
            drop(ticket);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(JobError::Busy);
        }
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                bytes,
                search,
                reply,
                ticket: Some(ticket),
            })
            .map_err(|_| JobError::Stopped)?;
        rx.await.unwrap_or(Err(JobError::Stopped))
    }

    /// The thread's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn run_worker<M>(rx: &mpsc::Receiver<Job>, mut model: M, settings: &BatchSettings, stats: &Stats)
where
    M: FnMut(&[RgbImage], &Search) -> anyhow::Result<Vec<Vec<Caption>>>,
{
    let max_batch = settings.max_batch.max(1);
    // Requests a full batch pushed to the next one, oldest first.
    let mut carried: VecDeque<Job> = VecDeque::new();
    loop {
        let mut jobs: Vec<Job> = carried.drain(..carried.len().min(max_batch)).collect();
        if jobs.is_empty() {
            match rx.recv() {
                Ok(job) => jobs.push(job),
                Err(_) => return,
            }
            // Wait for company only when nothing was already waiting.
            let deadline = Instant::now() + settings.window;
            while jobs.len() < max_batch {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match rx.recv_timeout(deadline - now) {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        } else {
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let (batch, deferred) = within_pixel_budget(jobs, settings, stats);
        for job in deferred.into_iter().rev() {
            carried.push_front(job);
        }
        run_batch(batch, &mut model, settings, stats);
    }
}

/// Splits `jobs` (in arrival order) into those whose images fit the batch's pixel budget
/// together and those deferred to the next batch. Requests whose client has gone are
/// dropped; uploads whose header cannot be read are answered at once.
fn within_pixel_budget(
    jobs: Vec<Job>,
    settings: &BatchSettings,
    stats: &Stats,
) -> (Vec<Job>, Vec<Job>) {
    let (mut batch, mut deferred) = (Vec::new(), Vec::new());
    let mut pixels = 0u64;
    for job in jobs {
        if job.reply.is_closed() {
            stats.abandoned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if !deferred.is_empty() {
            deferred.push(job);
            continue;
        }
        let (width, height) = match image_dimensions(&job.bytes, Path::new("upload")) {
            Ok(size) => size,
            Err(err) => {
                let _ = job.reply.send(Err(JobError::BadImage(err.to_string())));
                continue;
            }
        };
        // Oversized images are refused by the decoder; they cost nothing here.
        let weight = (u64::from(width) * u64::from(height)).min(settings.limits.max_pixels);
        if batch.is_empty() || pixels + weight <= settings.max_batch_pixels {
            pixels += weight;
            batch.push(job);
        } else {
            deferred.push(job);
        }
    }
    (batch, deferred)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn run_batch<M>(mut jobs: Vec<Job>, model: &mut M, settings: &BatchSettings, stats: &Stats)
where
    M: FnMut(&[RgbImage], &Search) -> anyhow::Result<Vec<Vec<Caption>>>,
{
    // The batch has started: its requests leave the queue.
    for job in &mut jobs {
        job.ticket = None;
    }
    let decoded: Vec<Result<RgbImage, String>> = jobs
        .par_iter()
        .map(|job| {
            catch_unwind(AssertUnwindSafe(|| {
                decode_rgb_bytes(&job.bytes, Path::new("upload"), &settings.limits)
            }))
            .map_err(|payload| format!("upload: the decoder failed: {}", panic_message(&*payload)))?
            .map_err(|err| err.to_string())
        })
        .collect();
    // Group by search settings, keeping arrival order within a group.
    let mut groups: Vec<SearchGroup> = Vec::new();
    for (job, image) in jobs.into_iter().zip(decoded) {
        let image = match image {
            Ok(image) => image,
            Err(message) => {
                let _ = job.reply.send(Err(JobError::BadImage(message)));
                continue;
            }
        };
        let key = format!("{:?}", job.search);
        match groups.iter_mut().find(|group| group.key == key) {
            Some(group) => group.members.push((job, image)),
            None => groups.push(SearchGroup {
                key,
                search: job.search.clone(),
                members: vec![(job, image)],
            }),
        }
    }
    for SearchGroup {
        search, members, ..
    } in groups
    {
        let (jobs, images): (Vec<Job>, Vec<RgbImage>) = members
            .into_iter()
            .filter(|(job, _)| {
                let gone = job.reply.is_closed();
                if gone {
                    stats.abandoned.fetch_add(1, Ordering::Relaxed);
                }
                !gone
            })
            .unzip();
        if jobs.is_empty() {
            continue;
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| model(&images, &search)));
        match outcome {
            Ok(Ok(ranked)) if ranked.len() == jobs.len() => {
                stats.images.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                for (job, captions) in jobs.into_iter().zip(ranked) {
                    let _ = job.reply.send(Ok(captions));
                }
            }
            Ok(Ok(ranked)) => reply_all(
                jobs,
                &format!(
                    "the model returned {} results for {} images",
                    ranked.len(),
                    images.len()
                ),
            ),
            Ok(Err(err)) => reply_all(jobs, &format!("{err:#}")),
            Err(payload) => {
                stats.panics.fetch_add(1, Ordering::Relaxed);
                reply_all(
                    jobs,
                    &format!("the model panicked: {}", panic_message(&*payload)),
                );
            }
        }
    }
}

fn reply_all(jobs: Vec<Job>, message: &str) {
    for job in jobs {
        let _ = job.reply.send(Err(JobError::Model(message.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyteller::GreedySearch;

    fn png(width: u32, height: u32) -> Bytes {
        let image = RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        Bytes::from(out.into_inner())
    }

    fn caption(text: &str) -> Caption {
        Caption {
            text: text.to_owned(),
            tokens: vec![text.to_owned()],
            log_prob: -1.0,
            score: -1.0,
            finished: true,
            attention: None,
        }
    }

    fn settings(window_ms: u64) -> BatchSettings {
        BatchSettings {
            window: Duration::from_millis(window_ms),
            max_batch: 32,
            max_batch_pixels: u64::MAX,
            max_queue: 1024,
            limits: DecodeLimits::default(),
        }
    }

    /// A fake model like [`spawn_fake`]'s with other settings; it records its batch sizes.
    fn spawn_recording(settings: BatchSettings) -> (Batcher, Arc<std::sync::Mutex<Vec<usize>>>) {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = Arc::clone(&sizes);
        let (batcher, ()) = Batcher::spawn(
            move || {
                let model = move |images: &[RgbImage], _: &Search| {
                    recorded.lock().unwrap().push(images.len());
                    Ok(images
                        .iter()
                        .map(|i| vec![caption(&format!("w{}", i.width()))])
                        .collect())
                };
                Ok((model, ()))
            },
            settings,
        )
        .unwrap();
        (batcher, sizes)
    }

    fn caption_all(batcher: &Batcher, widths: &[u32]) -> Vec<Result<Vec<Caption>, JobError>> {
        let search = Search::Greedy(GreedySearch::new());
        runtime().block_on(async {
            let tasks: Vec<_> = widths
                .iter()
                .map(|&w| {
                    let batcher = batcher.clone();
                    let search = search.clone();
                    tokio::spawn(async move { batcher.caption(png(w, 100), search).await })
                })
                .collect();
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.unwrap());
            }
            answers
        })
    }

    #[test]
    fn a_batch_decodes_at_most_its_pixel_budget() {
        let (batcher, sizes) = spawn_recording(BatchSettings {
            max_batch_pixels: 25_000,
            ..settings(300)
        });
        // Four 100x100 uploads: two fit one batch's 25,000 pixels, the others wait.
        let answers = caption_all(&batcher, &[100, 101, 102, 103]);
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(*sizes.lock().unwrap(), [2, 2]);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let (batcher, sizes) = spawn_recording(BatchSettings {
            max_queue: 2,
            ..settings(1500)
        });
        let started = Instant::now();
        let answers = caption_all(&batcher, &[1, 2, 3, 4]);
        let busy = answers
            .iter()
            .filter(|a| matches!(a, Err(JobError::Busy)))
            .count();
        assert_eq!(busy, 2, "{answers:?}");
        assert_eq!(*sizes.lock().unwrap(), [2]);
        assert_eq!(batcher.stats().refused.load(Ordering::Relaxed), 2);
        assert_eq!(batcher.stats().waiting.load(Ordering::Relaxed), 0);
        assert!(started.elapsed() < Duration::from_secs(10));
        // The queue has room again.
        assert!(caption_all(&batcher, &[5])[0].is_ok());
    }

    #[test]
    fn requests_whose_client_has_gone_are_skipped() {
        let (batcher, sizes) = spawn_recording(settings(400));
        let search = Search::Greedy(GreedySearch::new());
        let rt = runtime();
        rt.block_on(async {
            // Two clients give up while their requests wait for the batch window.
            for w in [7, 8] {
                let gone = batcher.caption(png(w, 4), search.clone());
                let _ = tokio::time::timeout(Duration::from_millis(50), gone).await;
            }
            let kept = batcher.caption(png(9, 4), search.clone()).await.unwrap();
            assert_eq!(kept[0].text, "w9");
        });
        assert_eq!(*sizes.lock().unwrap(), [1]);
        assert_eq!(batcher.stats().abandoned.load(Ordering::Relaxed), 2);
    }

    /// A fake model that names each image by its width and panics on width 13.
    fn spawn_fake() -> Batcher {
        let (batcher, ()) = Batcher::spawn(
            || {
                let model = |images: &[RgbImage], _: &Search| {
                    assert!(images.iter().all(|i| i.width() != 13), "width 13 is cursed");
                    Ok(images
                        .iter()
                        .map(|i| vec![caption(&format!("w{}", i.width()))])
                        .collect())
                };
                Ok((model, ()))
            },
            settings(200),
        )
        .unwrap();
        batcher
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn concurrent_requests_share_one_batch_and_get_their_own_answers() {
        let batcher = spawn_fake();
        let search = Search::Greedy(GreedySearch::new());
        let answers = runtime().block_on(async {
            let tasks: Vec<_> = (1..=8u32)
                .map(|w| {
                    let batcher = batcher.clone();
                    let search = search.clone();
                    tokio::spawn(async move { batcher.caption(png(w, 4), search).await })
                })
                .collect();
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.unwrap().unwrap()[0].text.clone());
            }
            answers
        });
        let expected: Vec<String> = (1..=8).map(|w| format!("w{w}")).collect();
        assert_eq!(answers, expected);
        assert_eq!(batcher.stats().batches.load(Ordering::Relaxed), 1);
        assert_eq!(batcher.stats().images.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_panicking_model_fails_its_batch_and_the_thread_keeps_serving() {
        let batcher = spawn_fake();
        let search = Search::Greedy(GreedySearch::new());
        let rt = runtime();
        let err = rt
            .block_on(batcher.caption(png(13, 4), search.clone()))
            .unwrap_err();
        assert!(
            matches!(&err, JobError::Model(m) if m.contains("panicked") && m.contains("cursed")),
            "{err:?}"
        );
        let bad = rt
            .block_on(batcher.caption(Bytes::from_static(b"not an image"), search.clone()))
            .unwrap_err();
        assert!(matches!(bad, JobError::BadImage(_)), "{bad:?}");
        let ok = rt.block_on(batcher.caption(png(5, 4), search)).unwrap();
        assert_eq!(ok[0].text, "w5");
        assert_eq!(batcher.stats().panics.load(Ordering::Relaxed), 1);
    }

    type ModelFn = fn(&[RgbImage], &Search) -> anyhow::Result<Vec<Vec<Caption>>>;

    #[test]
    fn a_failing_init_is_reported() {
        let result = Batcher::spawn(
            || -> anyhow::Result<(ModelFn, ())> { anyhow::bail!("no model here") },
            settings(1),
        );
        assert!(result.err().unwrap().to_string().contains("no model here"));
    }
}
