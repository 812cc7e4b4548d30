//! Caption image files with a trained model, printing the three best beam-search captions.
//!
//! cargo run --release -p storyteller-examples --example caption_image -- MODEL_DIR IMAGE...
//! (make a model with `storyteller demo`, then use storyteller-demo/model)

use burn::tensor::Device;
use storyteller::{BeamSearch, Captioner, Search, decode_image};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: caption_image MODEL_DIR IMAGE..."))?;
    let device = Device::default();
    let captioner = Captioner::load(&model, &device)?
        .with_search(Search::Beam(BeamSearch::new().with_width(5)))?;
    for path in args {
        let image = decode_image(&path)?;
        println!("{path}");
        for caption in captioner.n_best(&image, 3)? {
            println!("  {:8.3}  {}", caption.score, caption.text);
        }
    }
    Ok(())
}
