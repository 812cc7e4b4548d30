//! The bench's result: its settings and rows, as `bench.json`, `bench.md` and `bench.png`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use storyteller_data::{Attribute, AttributeScore, GroundingReport};

use crate::bench::{BenchRow, MeasureOptions, SearchKind, plot};
use crate::error::{Result, StorytellerError};
use crate::model_dir::write_bytes;
use crate::train::TrainConfig;

/// What a bench ran with, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    /// The dataset directory.
    pub dataset: PathBuf,
    /// The feature cache given.
    pub features: PathBuf,
    /// Side of its grid (1: pooled).
    pub grid: usize,
    /// Width of one feature vector.
    pub d_feature: usize,
    /// The pooled cache the Show and Tell rows trained on, when derived from a spatial one.
    pub pooled: Option<PathBuf>,
    /// Test images scored.
    pub test_images: usize,
    /// The training settings every decoder shares (each sets its own family and, for Show
    /// and Tell, conditioning).
    pub train: TrainConfig,
    /// Training stops after the epoch that crosses this many seconds (per decoder).
    pub time_budget_seconds: Option<f64>,
    /// How the decoders were measured.
    pub measure: MeasureOptions,
    /// Logical CPU cores of the machine.
    pub cores: usize,
    /// The device, as Burn names it.
    pub backend: String,
}

/// The result of [`run_bench`](crate::bench::run_bench).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The settings.
    pub settings: BenchSettings,
    /// One row per decoder, in the order asked.
    pub rows: Vec<BenchRow>,
}

impl BenchReport {
    /// `bench.md`: the quality, grounding and speed tables and the settings.
    pub fn markdown(&self) -> String {
        let (settings, rows) = (&self.settings, &self.rows);
        let beam = format!("beam {}", settings.measure.beam_width);
        let mut out = String::from("# Decoder bench\n\n");
        let _ = writeln!(
            out,
            "Test split: {} images. Each score is greedy / {beam}.\n",
            settings.test_images
        );
        table(
            &mut out,
            &[
                "decoder",
                "kind",
                "parameters",
                "epochs",
                "BLEU-1",
                "BLEU-2",
                "BLEU-3",
                "BLEU-4",
                "ROUGE-L",
                "CIDEr-D",
            ],
            2,
            rows.iter().map(|row| {
                let both = |value: fn(&storyteller_metrics::Scores) -> f64| {
                    format!(
                        "{:.3} / {:.3}",
                        value(&row.greedy.scores),
                        value(&row.beam.scores)
                    )
                };
                vec![
                    row.name.clone(),
                    row.kind.clone(),
                    row.parameters.map_or("–".into(), |p| {
                        if p.fixed == 0 {
                            count(p.trained)
                        } else {
                            format!("{} (+{} fixed)", count(p.trained), count(p.fixed))
                        }
                    }),
                    row.epochs.map_or("–".into(), |e| e.to_string()),
                    both(|s| s.bleu1),
                    both(|s| s.bleu2),
                    both(|s| s.bleu3),
                    both(|s| s.bleu4),
                    both(|s| s.rouge_l),
                    both(|s| s.cider_d),
                ]
            }),
        );
        for (search, label) in [(SearchKind::Greedy, "greedy"), (SearchKind::Beam, &beam)] {
            if rows.iter().all(|r| r.quality(search).grounding.is_none()) {
                continue;
            }
            let _ = writeln!(
                out,
                "\n## Grounding, {label}\n\nPrecision of the captions' claims / chance (the same \
                 captions on shuffled scenes), and the lift over chance; – where no caption \
                 makes such a claim.\n"
            );
            let mut header = vec!["decoder"];
            header.extend(Attribute::ALL.map(Attribute::name));
            header.push("distinct captions");
            table(
                &mut out,
                &header,
                1,
                rows.iter().map(|row| grounding_cells(row, search)),
            );
        }
        let sizes = &settings.measure.batch_sizes;
        let _ = writeln!(
            out,
            "\n## Speed and memory\n\nCaptions per second: decoding {} cached test images per \
             run, median of {} runs after a warm-up, ± half their range. Training: captions \
             per second of teacher-forced batches. Peak: resident memory of the process \
             (`docs/decoders.md`).\n",
            settings.measure.timed_images, settings.measure.timing_runs
        );
        let mut header: Vec<String> = vec!["decoder".into(), "train captions/s".into()];
        for label in ["greedy", beam.as_str()] {
            header.extend(sizes.iter().map(|b| format!("{label}, batch {b}")));
        }
        header.extend(["peak MiB, decoding".into(), "peak MiB, training".into()]);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        table(
            &mut out,
            &header,
            1,
            rows.iter().map(|row| {
                let mut cells = vec![
                    row.name.clone(),
                    row.train_captions_per_second.map_or("–".into(), rate),
                ];
                for search in [SearchKind::Greedy, SearchKind::Beam] {
                    cells.extend(sizes.iter().map(|&b| {
                        row.speed(search, b).map_or("–".into(), |s| {
                            format!(
                                "{} ±{:.0}%",
                                rate(s.captions_per_second),
                                100.0 * s.spread()
                            )
                        })
                    }));
                }
                cells.extend(
                    [row.peak_memory_bytes, row.train_peak_memory_bytes].map(|b| {
                        b.map_or("–".into(), |b| format!("{:.0}", b as f64 / 1048576.0))
                    }),
                );
                cells
            }),
        );
        out.push_str(&settings_section(settings, rows));
        out
    }

    /// Writes `bench.json`, `bench.md` and `bench.png` into `dir`, each atomically.
    ///
    /// # Errors
    /// A write failure, or the chart cannot be drawn.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a bench report serialises");
        write_bytes(&dir.join(JSON), json.as_bytes())?;
        write_bytes(&dir.join(MARKDOWN), self.markdown().as_bytes())?;
        plot::plot(&dir.join(PLOT), self).map_err(|message| {
            StorytellerError::Bench(format!("{} not drawn: {message}", dir.join(PLOT).display()))
        })
    }
}

/// The report's file names in the output directory.
pub(crate) const JSON: &str = "bench.json";
/// See [`JSON`].
pub(crate) const MARKDOWN: &str = "bench.md";
/// See [`JSON`].
pub(crate) const PLOT: &str = "bench.png";

/// Appends a markdown table: the first `text_columns` left-aligned, the numbers right.
fn table(
    out: &mut String,
    header: &[&str],
    text_columns: usize,
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i < text_columns { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    for cells in rows {
        let cells: Vec<String> = cells.into_iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// A row's grounding cells for one search.
fn grounding_cells(row: &BenchRow, search: SearchKind) -> Vec<String> {
    let mut cells = vec![row.name.clone()];
    match &row.quality(search).grounding {
        None => cells.extend(std::iter::repeat_n(
            "–".to_owned(),
            Attribute::ALL.len() + 1,
        )),
        Some(report) => {
            cells.extend(Attribute::ALL.map(|a| claim_cell(report.attributes.get(a))));
            cells.push(distinct_cell(report));
        }
    }
    cells
}

fn claim_cell(score: &AttributeScore) -> String {
    match (score.precision, score.chance_precision) {
        (Some(p), Some(c)) => match score.lift {
            Some(lift) => format!("{p:.2} / {c:.2} ({lift:.2}x)"),
            None => format!("{p:.2} / {c:.2}"),
        },
        (Some(p), None) => format!("{p:.2}"),
        _ => "–".into(),
    }
}

fn distinct_cell(report: &GroundingReport) -> String {
    format!("{:.0}%", 100.0 * report.distinct_share)
}

/// The settings, as a list under the tables.
fn settings_section(settings: &BenchSettings, rows: &[BenchRow]) -> String {
    let train = &settings.train;
    let mut out = String::from("\n## Settings\n\n");
    let _ = writeln!(
        out,
        "- data: `{}`, test split of {} images",
        settings.dataset.display(),
        settings.test_images
    );
    let pooled = settings.pooled.as_ref().map_or(String::new(), |p| {
        format!(
            "; Show and Tell on `{}`, the mean of each image's regions",
            p.display()
        )
    });
    let _ = writeln!(
        out,
        "- features: `{}`, grid {g}x{g} of {}-d vectors{pooled}",
        settings.features.display(),
        settings.d_feature,
        g = settings.grid,
    );
    let budget = settings.time_budget_seconds.map_or(String::new(), |s| {
        format!(", or the epoch that crosses {s:.0} s")
    });
    let _ = writeln!(
        out,
        "- training, every decoder: seed {}, up to {} epochs{budget} (patience {}, selection {}), \
         batch {}, learning rate {} (decay {} every {} epochs, warm-up {} steps), min count {}, \
         d_embed {}, d_hidden {}, {} layers, {} heads, d_ff {}, d_attention {}, dropout {}, \
         whitening {}, label smoothing {}",
        train.seed,
        train.epochs,
        train.patience,
        train.selection,
        train.batch_size,
        train.learning_rate,
        train.lr_decay,
        train.lr_decay_every,
        train.warmup_steps,
        train.min_count,
        train.d_embed,
        train.d_hidden,
        train.n_layers,
        train.n_heads,
        train.d_ff.unwrap_or(4 * train.d_hidden),
        train.d_attention,
        train.dropout,
        train
            .d_whitened
            .map_or("off".to_owned(), |d| format!("to {d} (Show and Tell)")),
        train.label_smoothing,
    );
    let measure = &settings.measure;
    let _ = writeln!(
        out,
        "- decoding: greedy and beam {} (length penalty 0), captions of up to {} tokens",
        measure.beam_width, measure.max_len
    );
    let _ = writeln!(
        out,
        "- machine: {} cores, backend `{}`",
        settings.cores, settings.backend
    );
    let reused: Vec<&str> = rows
        .iter()
        .filter(|r| r.reused)
        .map(|r| r.name.as_str())
        .collect();
    if !reused.is_empty() {
        let _ = writeln!(
            out,
            "- reused from an earlier run (`models/<name>/bench-row.json`): {}",
            reused.join(", ")
        );
    }
    out
}

/// A weight count, short: `812`, `45.3k`, `1.25M`.
fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// A rate with three significant figures or more: `1234`, `56.7`, `0.89`.
fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::{ParameterCount, Quality, Speed};
    use storyteller_metrics::bleu::BleuFlavour;
    use storyteller_metrics::{Corpus, evaluate};

    /// A row with made-up numbers, decoding at `speed` captions per second per image of a batch.
    pub(crate) fn sample_row(name: &str, speed: f64) -> BenchRow {
        let corpus = Corpus::from_captions([
            ("a red circle", vec!["a red circle", "red circle"]),
            ("a blue square", vec!["a green square"]),
        ])
        .unwrap();
        let scores = evaluate(&corpus, BleuFlavour::Coco).unwrap();
        let speeds = [SearchKind::Greedy, SearchKind::Beam]
            .into_iter()
            .flat_map(|search| {
                [1, 128].map(|batch_size| Speed {
                    search,
                    batch_size,
                    captions_per_second: speed * batch_size as f64,
                    min: 0.75 * speed * batch_size as f64,
                    max: 1.25 * speed * batch_size as f64,
                    runs: 3,
                })
            })
            .collect();
        BenchRow {
            name: name.into(),
            kind: "show-tell".into(),
            parameters: Some(ParameterCount {
                trained: 1_234_567,
                fixed: 4096,
            }),
            epochs: Some(2),
            train_captions_per_second: Some(280.4),
            train_peak_memory_bytes: Some(300 << 20),
            images: 2,
            greedy: Quality {
                scores: scores.clone(),
                grounding: None,
            },
            beam: Quality {
                scores,
                grounding: None,
            },
            beam_width: 3,
            speeds,
            peak_memory_bytes: Some(200 << 20),
            reused: false,
        }
    }

    pub(crate) fn sample_report() -> BenchReport {
        let mut custom = sample_row("blind | custom", 900.0);
        custom.kind = "custom".into();
        custom.parameters = None;
        custom.epochs = None;
        custom.train_captions_per_second = None;
        custom.train_peak_memory_bytes = None;
        custom.reused = true;
        BenchReport {
            settings: BenchSettings {
                dataset: "shapes".into(),
                features: "grid.safetensors".into(),
                grid: 2,
                d_feature: 2048,
                pooled: Some("bench/pooled.safetensors".into()),
                test_images: 2,
                train: TrainConfig::new().with_epochs(2),
                time_budget_seconds: None,
                measure: MeasureOptions::default(),
                cores: 2,
                backend: "Flex".into(),
            },
            rows: vec![sample_row("show-tell", 40.0), custom],
        }
    }

    #[test]
    fn the_markdown_has_one_line_per_decoder_in_every_table() {
        let report = sample_report();
        let markdown = report.markdown();
        let lines: Vec<&str> = markdown.lines().collect();
        // Quality and speed tables (no grounding without scenes): header, rule, two rows.
        let tables: Vec<&[&str]> = lines
            .split(|l| !l.starts_with('|'))
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(tables.len(), 2, "{markdown}");
        for table in &tables {
            assert_eq!(table.len(), 4, "{markdown}");
            let columns = table[0].matches(" | ").count();
            assert!(
                table.iter().all(|l| l.matches(" | ").count() == columns),
                "every line has the header's columns: {markdown}"
            );
            assert!(table[2].starts_with("| show-tell |"), "{markdown}");
            assert!(table[3].starts_with("| blind \\| custom |"), "{markdown}");
        }
        let quality = tables[0];
        assert!(quality[0].contains("BLEU-4") && quality[0].contains("CIDEr-D"));
        assert!(quality[2].contains("1.23M (+4.1k fixed)"), "{}", quality[2]);
        assert!(quality[3].contains("| custom | – | – |"), "{}", quality[3]);
        let speed = tables[1];
        assert!(
            speed[0].contains("greedy, batch 128") && speed[0].contains("beam 3, batch 1"),
            "{}",
            speed[0]
        );
        // 40 captions/s ± 25 %, and 128 × 40 = 5120 at batch 128; 200 MiB decoding.
        assert!(
            speed[2].contains("| 40.0 ±25% | 5120 ±25% |"),
            "{}",
            speed[2]
        );
        assert!(speed[2].contains("| 280 |") && speed[2].ends_with("| 200 | 300 |"));
        assert!(
            markdown.contains("- machine: 2 cores, backend `Flex`"),
            "{markdown}"
        );
        assert!(
            markdown.contains("reused from an earlier run"),
            "{markdown}"
        );
    }

    #[test]
    fn grounding_tables_appear_with_scenes() {
        let mut report = sample_report();
        let scenes: Vec<_> = (0..20)
            .map(|i| storyteller_data::synth_image(1, i))
            .collect();
        let pairs: Vec<(&str, _)> = scenes
            .iter()
            .map(|s| (s.captions[0].as_str(), &s.scene))
            .collect();
        let grounding = storyteller_data::grounding(&pairs, 0);
        for row in &mut report.rows {
            row.greedy.grounding = Some(grounding.clone());
        }
        let markdown = report.markdown();
        assert!(markdown.contains("## Grounding, greedy"), "{markdown}");
        assert!(!markdown.contains("## Grounding, beam"), "{markdown}");
        let line = markdown
            .lines()
            .find(|l| l.starts_with("| show-tell | 1.00 / "))
            .unwrap_or_else(|| panic!("{markdown}"));
        assert!(line.ends_with("| 100% |") || line.contains('%'), "{line}");
    }

    #[test]
    fn the_report_round_trips_through_json_and_writes_three_files() {
        let report = sample_report();
        let json = serde_json::to_string(&report).unwrap();
        let back: BenchReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.settings, report.settings);
        assert_eq!(back.rows.len(), 2);
        assert_eq!(back.rows[1].name, "blind | custom");
        assert!(back.rows[1].reused && back.rows[1].parameters.is_none());
        let dir = tempfile::tempdir().unwrap();
        report.write(dir.path()).unwrap();
        for name in [JSON, MARKDOWN, PLOT] {
            assert!(dir.path().join(name).is_file(), "{name}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
