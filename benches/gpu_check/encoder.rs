//! ResNet-50 feature extraction, images/s: the `encoder` rows of `benches/torch_reference.py`, each
//! precision checked once against the CPU in f32, so a fast row that computes garbage (an
//! f16 overflow, a wrong kernel) shows.

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, FloatDType};
use serde_json::json;
use storyteller_encoder::{Encoder, ResNetConfig};

use crate::parity::{errors, values};
use crate::record::Recorder;
use crate::timing::measure;
use crate::{data, precision};

/// Loose bounds on `max |ours - cpu f32| / max |cpu f32|` per precision: sanity checks that
/// catch garbage, not accuracy claims (Burn's f32 on CUDA rounds like TF32; f16 keeps 11
/// significant bits, bf16 8, through 50 layers).
fn tolerance(dtype: FloatDType) -> f32 {
    match dtype {
        FloatDType::F16 => 2e-2,
        FloatDType::BF16 => 1e-1,
        _ => 2e-3,
    }
}

/// Times the fused network (BatchNorm folded, random weights) from a device-resident batch
/// of `size` px images to the `[batch, 2048]` features read back to the host. Returns whether
/// every precision's check against the CPU passed.
pub fn bench(
    device: &Device,
    batches: &[usize],
    size: usize,
    precisions: &[FloatDType],
    (warm, reps): (usize, usize),
    rec: &mut Recorder,
) -> Result<bool> {
    let fused = Encoder::from_network(ResNetConfig::resnet50().init(device))?
        .network()
        .clone();
    let cpu = Device::flex();
    let reference = fused.clone().to_device(&cpu);
    let mut pass = true;
    for &dtype in precisions {
        let prec = precision::name(dtype);
        if !device.supports_dtype(dtype) {
            rec.emit(json!({"part": "encoder", "prec": prec, "skipped": "dtype not supported by the device"}))?;
            continue;
        }
        let net = precision::cast(fused.clone(), dtype);
        for (i, &batch) in batches.iter().enumerate() {
            let x = data::normal([batch, 3, size, size], 7, device).cast(dtype);
            let t = measure(warm, reps, || {
                let _ = net.forward(x.clone()).into_data();
            });
            rec.emit(json!({
                "part": "encoder", "prec": prec, "batch": batch, "size": size,
                "s_per_batch": t.median_s, "img_per_s": batch as f64 / t.median_s,
                "first_s": t.first_s, "warm_s": t.warm_s,
            }))?;
            if i == 0 {
                // The first two images of the timed batch (no new shape to compile), against
                // the CPU in f32 on the same rounded inputs.
                let rows = batch.min(2);
                let ours = net.forward(x.clone()).narrow(0, 0, rows);
                let input = x.clone().narrow(0, 0, rows).cast(FloatDType::F32);
                let expected = reference.forward(input.to_device(&cpu));
                let (max_abs, max_rel) = errors(&values(ours), &values(expected));
                let ok = max_rel <= tolerance(dtype);
                pass &= ok;
                rec.emit(json!({
                    "part": "parity", "check": "encoder_precision", "prec": prec,
                    "batch": rows, "size": size, "against": "cpu f32",
                    "max_abs": max_abs, "max_rel": max_rel,
                    "tolerance_rel": tolerance(dtype), "pass": ok,
                }))?;
            }
        }
    }
    Ok(pass)
}
