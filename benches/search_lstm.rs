//! The decoder of `benches/torch_reference.py` for the search benchmarks: the library's
//! Show-and-Tell [`CaptionDecoder`] at the anchor's sizes (image feature -> `tanh(Linear)`
//! initial hidden and cell state, embedding, one LSTM layer, output Linear), prepared for
//! search as the captioner prepares it ([`SearchDecoder`]: the embedding folded into the
//! input gates). Random weights (speed does not depend on them).

use burn::module::Param;
use burn::prelude::*;
use storyteller_decoder::{CaptionDecoderConfig, Conditioning, Decoder, SearchDecoder};

/// Vocabulary size of the anchor.
pub const VOCAB_SIZE: usize = 8000;
/// Embedding width of the anchor.
pub const D_EMBED: usize = 256;
/// LSTM hidden width of the anchor.
pub const D_HIDDEN: usize = 512;
/// Image feature width of the anchor (ResNet-50 without fc).
pub const D_FEATURE: usize = 2048;
/// Tokens per caption in the anchor.
pub const MAX_LEN: usize = 20;

/// The anchor's decoder with random weights. The `<end>` logit (token 2) is pushed down by
/// 1e4 so that, like the anchor's fixed 20-step loops, every caption runs all [`MAX_LEN`]
/// steps.
pub fn anchor_decoder(device: &Device) -> SearchDecoder {
    let mut decoder = CaptionDecoderConfig::new(VOCAB_SIZE)
        .with_d_feature(D_FEATURE)
        .with_d_embed(D_EMBED)
        .with_d_hidden(D_HIDDEN)
        .with_n_layers(1)
        .with_conditioning(Conditioning::Init)
        .with_d_whitened(None)
        .init(device)
        .expect("the anchor's sizes are a valid config")
        .materialized();
    let bias = decoder
        .out
        .bias
        .as_ref()
        .expect("the output layer has a bias");
    let mut push_down = vec![0.0f32; VOCAB_SIZE];
    push_down[2] = -1e4;
    let lowered = bias.val() + Tensor::<1>::from_data(push_down.as_slice(), device);
    decoder.out.bias = Some(Param::from_tensor(lowered));
    SearchDecoder::new(Decoder::ShowTell(decoder))
}
