//! Grounding: whether captions of the synthetic dataset are true of the
//! images they describe, compared with chance.
//!
//! A captioning model can reach fair BLEU on the shapes dataset while
//! ignoring the image (writing the same likely sentence every time). The
//! grounding metric reads the claims of each caption ([`parse_claims`]:
//! colours, kinds, sizes, positions, relations, counts, background), checks
//! them against the image's [`Scene`](crate::Scene) (from
//! [`SceneTruth`](crate::SceneTruth)), and compares with the same captions
//! checked against other images' scenes ([`grounding`]). `lift` near 1 means
//! the captions are no truer of their own image than of a random one.
//!
//! ```
//! use storyteller_data::{Attribute, grounding, synth_image};
//!
//! let images: Vec<_> = (0..50).map(|i| synth_image(0, i)).collect();
//! let pairs: Vec<(&str, _)> = images.iter().map(|im| (im.captions[0].as_str(), &im.scene)).collect();
//! let report = grounding(&pairs, 0);
//! assert_eq!(report.attributes.get(Attribute::Colour).precision, Some(1.0));
//! assert!(report.attributes.colour.lift.unwrap() > 1.5);
//! println!("{report}");
//! ```

mod claims;
mod score;

pub use claims::{
    CaptionClaims, ObjectClaim, PositionClaim, Relation, RelationClaim, parse_claims,
};
pub use score::{
    Attribute, AttributeScore, AttributeScores, CHANCE_PERMUTATIONS, GroundingReport, grounding,
    grounding_with_permutations,
};
