//! ResNet-50 feature extraction, images/s: the `encoder` rows of `torch_anchor.py`.

use anyhow::Result;
use burn::tensor::{Device, FloatDType};
use serde_json::json;
use storyteller_encoder::{Encoder, ResNetConfig};

use crate::record::Recorder;
use crate::timing::measure;
use crate::{data, precision};

/// Times the fused network (BatchNorm folded, random weights) from a device-resident batch
/// of `size` px images to the `[batch, 2048]` features read back to the host.
pub fn bench(
    device: &Device,
    batches: &[usize],
    size: usize,
    precisions: &[FloatDType],
    (warm, reps): (usize, usize),
    rec: &mut Recorder,
) -> Result<()> {
    let fused = Encoder::from_network(ResNetConfig::resnet50().init(device))?
        .network()
        .clone();
    for &dtype in precisions {
        let prec = precision::name(dtype);
        if !device.supports_dtype(dtype) {
            rec.emit(json!({"part": "encoder", "prec": prec, "skipped": "dtype not supported by the device"}))?;
            continue;
        }
        let net = precision::cast(fused.clone(), dtype);
        for &batch in batches {
            let x = data::normal([batch, 3, size, size], 7, device).cast(dtype);
            let t = measure(warm, reps, || {
                let _ = net.forward(x.clone()).into_data();
            });
            rec.emit(json!({
                "part": "encoder", "prec": prec, "batch": batch, "size": size,
                "s_per_batch": t.median_s, "img_per_s": batch as f64 / t.median_s,
                "first_s": t.first_s, "warm_s": t.warm_s,
            }))?;
        }
    }
    Ok(())
}
