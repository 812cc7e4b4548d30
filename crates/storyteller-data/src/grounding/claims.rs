//! The claims a caption makes about its image, read with one parser for the
//! synthetic dataset's caption grammar (`synth/captions.rs`).

use crate::synth::{Position, ShapeKind, Texture, colour_index, tone_index};
use crate::tokenize;

/// One object phrase: "a large red circle", "one small star coloured
/// blue", or what is left of one ("red", "a large"). Every attribute is
/// optional; a phrase has at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectClaim {
    /// Index into [`crate::COLOURS`].
    pub colour: Option<usize>,
    /// The shape kind.
    pub kind: Option<ShapeKind>,
    /// Large (`true`) or small.
    pub large: Option<bool>,
}

/// An absolute position given to an object phrase ("... on the left").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionClaim {
    /// Index into [`CaptionClaims::objects`].
    pub object: usize,
    /// Where the caption puts it.
    pub position: Position,
}

/// A spatial relation between two object phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// "to the left of": the subject's grid column is left of the object's.
    LeftOf,
    /// "to the right of": the subject's grid column is right of the object's.
    RightOf,
    /// "above": the subject's grid row is above the object's.
    Above,
    /// "below": the subject's grid row is below the object's.
    Below,
}

impl Relation {
    /// The caption phrase ("to the left of", "above", ...), as
    /// [`Position::relation_to`] writes it.
    pub fn phrase(self) -> &'static str {
        match self {
            Relation::LeftOf => "to the left of",
            Relation::RightOf => "to the right of",
            Relation::Above => "above",
            Relation::Below => "below",
        }
    }

    /// Whether a shape at `subject` lies in this relation to one at
    /// `object`, by grid cell: left of means a smaller column, above a
    /// smaller row. Every relation [`Position::relation_to`] names holds; so
    /// do the others that are true of the grid (the cell on the left is
    /// both left of and below the top cell).
    pub fn holds(self, subject: Position, object: Position) -> bool {
        let ((sx, sy), (ox, oy)) = (subject.cell(), object.cell());
        match self {
            Relation::LeftOf => sx < ox,
            Relation::RightOf => sx > ox,
            Relation::Above => sy < oy,
            Relation::Below => sy > oy,
        }
    }
}

/// A relation between two object phrases ("a red circle to the left of a
/// blue square").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelationClaim {
    /// Index into [`CaptionClaims::objects`] of the phrase before the relation.
    pub subject: usize,
    /// The relation.
    pub relation: Relation,
    /// Index into [`CaptionClaims::objects`] of the phrase after it.
    pub object: usize,
}

/// Everything a caption says about its image, as [`parse_claims`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptionClaims {
    /// Object phrases, in caption order.
    pub objects: Vec<ObjectClaim>,
    /// Absolute positions ("on the left", ...), each of the phrase before it.
    pub positions: Vec<PositionClaim>,
    /// Relations ("to the left of", "above", ...) between phrases.
    pub relations: Vec<RelationClaim>,
    /// Numbers of shapes ("two shapes", "a single", "one large circle").
    pub counts: Vec<usize>,
    /// Background tones, as indices into [`crate::BACKGROUNDS`].
    pub tones: Vec<usize>,
    /// Background textures ("plain", "striped", "checkered").
    pub textures: Vec<Texture>,
}

impl CaptionClaims {
    /// Whether the caption claims nothing at all.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
            && self.counts.is_empty()
            && self.tones.is_empty()
            && self.textures.is_empty()
    }
}

/// Number words of count claims (digits are read too).
const NUMBERS: [&str; 11] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

fn number(word: &str) -> Option<usize> {
    NUMBERS
        .iter()
        .position(|n| *n == word)
        .or_else(|| word.parse::<u32>().ok().map(|n| n as usize))
}

fn size_word(word: &str) -> Option<bool> {
    match word {
        "large" | "big" => Some(true),
        "small" => Some(false),
        _ => None,
    }
}

fn position_word(word: &str) -> Option<Position> {
    match word {
        "center" | "middle" => Some(Position::Centre),
        w => Position::from_word(w),
    }
}

fn tone_word(word: &str) -> Option<usize> {
    tone_index(if word == "gray" { "grey" } else { word })
}

fn texture_word(word: &str) -> Option<Texture> {
    match word {
        "checked" => Some(Texture::Checkered),
        w => Texture::from_name(w),
    }
}

/// Whether the word can be part of an object phrase.
fn is_attribute(word: &str) -> bool {
    size_word(word).is_some()
        || colour_index(word).is_some()
        || ShapeKind::from_word(word).is_some()
}

/// Reads the claims of a caption. The caption is tokenized with
/// [`crate::tokenize`] and scanned left to right:
///
/// - **object phrases**: a run of a size word (`large`/`small`), a colour
///   word and a kind word (`circle` ... `diamond`), each at most once and the
///   kind last, optionally followed by `coloured <colour>` when the run has
///   no colour yet ("one large circle coloured red"). Any other word ends the
///   phrase (determiners `a`/`an`/`one`/`single` included), as does a
///   repeated slot ("red blue circle" is "red" and "blue circle"). A size or
///   colour with no kind is still a phrase. `shapes` is not an object.
/// - **positions** `on the left`, `on the right`, `at the top`, `at the
///   bottom`, `in the centre` (optionally followed by `of the image`): a
///   position of the last phrase before it (dropped when there is none).
/// - **relations** `to the left of`, `to the right of`, `above`, `below`:
///   between the last phrase before it and the next phrase after it
///   (dropped when either is missing).
/// - **counts**: `<number> shapes` / `<number> coloured shapes` (number words
///   zero to ten or digits), `single` (1), `one` directly before a size,
///   colour or kind word (1; "one of them" is not a count), `empty` (0).
/// - **background**: every tone word (`white`, `grey`, `black`) and every
///   texture word (`plain`, `striped`, `checkered`), each one claim
///   ("on a striped grey background" claims a tone and a texture).
///
/// Any word sequence parses (unknown words are skipped), so truncated,
/// repeated or garbled model output yields whatever claims it contains.
pub fn parse_claims(caption: &str) -> CaptionClaims {
    let tokens = tokenize(caption);
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let at = |i: usize| t.get(i).copied().unwrap_or("");
    let mut out = CaptionClaims::default();
    // The relation waiting for its object phrase: (subject, relation).
    let mut pending: Option<(usize, Relation)> = None;
    let mut i = 0;
    while i < t.len() {
        let w = t[i];
        // Relations.
        let relation = match (w, at(i + 1), at(i + 2), at(i + 3)) {
            ("to", "the", "left", "of") => Some((Relation::LeftOf, 4)),
            ("to", "the", "right", "of") => Some((Relation::RightOf, 4)),
            ("above", ..) => Some((Relation::Above, 1)),
            ("below", ..) => Some((Relation::Below, 1)),
            _ => None,
        };
        if let Some((relation, len)) = relation {
            pending = out.objects.len().checked_sub(1).map(|s| (s, relation));
            i += len;
            continue;
        }
        // Absolute positions.
        let position = match (w, at(i + 1), position_word(at(i + 2))) {
            ("on", "the", Some(p @ (Position::Left | Position::Right)))
            | ("at", "the", Some(p @ (Position::Top | Position::Bottom)))
            | ("in", "the", Some(p @ Position::Centre)) => Some(p),
            _ => None,
        };
        if let Some(position) = position {
            if let Some(object) = out.objects.len().checked_sub(1) {
                out.positions.push(PositionClaim { object, position });
            }
            i += 3;
            if (at(i), at(i + 1), at(i + 2)) == ("of", "the", "image") {
                i += 3;
            }
            continue;
        }
        // Counts.
        if let Some(n) = number(w) {
            let next = if at(i + 1) == "coloured" {
                i + 2
            } else {
                i + 1
            };
            if matches!(at(next), "shapes" | "shape") {
                out.counts.push(n);
                i = next + 1;
                continue;
            }
            if n == 1 && is_attribute(at(i + 1)) {
                out.counts.push(1);
            }
            i += 1;
            continue;
        }
        match w {
            "single" => {
                out.counts.push(1);
                i += 1;
                continue;
            }
            "empty" => {
                out.counts.push(0);
                i += 1;
                continue;
            }
            _ => {}
        }
        // Background.
        if let Some(tone) = tone_word(w) {
            out.tones.push(tone);
            i += 1;
            continue;
        }
        if let Some(texture) = texture_word(w) {
            out.textures.push(texture);
            i += 1;
            continue;
        }
        // Object phrases.
        if is_attribute(w) {
            let mut phrase = ObjectClaim::default();
            while i < t.len() {
                let w = t[i];
                if let Some(large) = size_word(w) {
                    if phrase.large.is_some() || phrase.kind.is_some() {
                        break;
                    }
                    phrase.large = Some(large);
                } else if let Some(colour) = colour_index(w) {
                    if phrase.colour.is_some() || phrase.kind.is_some() {
                        break;
                    }
                    phrase.colour = Some(colour);
                } else if let Some(kind) = ShapeKind::from_word(w) {
                    if phrase.kind.is_some() {
                        break;
                    }
                    phrase.kind = Some(kind);
                } else if w == "coloured"
                    && phrase.kind.is_some()
                    && phrase.colour.is_none()
                    && colour_index(at(i + 1)).is_some()
                {
                    phrase.colour = colour_index(at(i + 1));
                    i += 1;
                } else {
                    break;
                }
                i += 1;
            }
            let index = out.objects.len();
            out.objects.push(phrase);
            if let Some((subject, relation)) = pending.take() {
                out.relations.push(RelationClaim {
                    subject,
                    relation,
                    object: index,
                });
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(colour: Option<&str>, kind: Option<&str>, large: Option<bool>) -> ObjectClaim {
        ObjectClaim {
            colour: colour.map(|c| colour_index(c).unwrap()),
            kind: kind.map(|k| ShapeKind::from_word(k).unwrap()),
            large,
        }
    }

    #[test]
    fn reads_every_kind_of_claim() {
        let c = parse_claims("A large red diamond to the left of a blue circle .");
        assert_eq!(
            c.objects,
            [
                obj(Some("red"), Some("diamond"), Some(true)),
                obj(Some("blue"), Some("circle"), None)
            ]
        );
        assert_eq!(
            c.relations,
            [RelationClaim {
                subject: 0,
                relation: Relation::LeftOf,
                object: 1
            }]
        );
        let c = parse_claims("One large circle coloured red on a striped grey background");
        assert_eq!(c.objects, [obj(Some("red"), Some("circle"), Some(true))]);
        assert_eq!(c.counts, [1]);
        assert_eq!(c.tones, [1]);
        assert_eq!(c.textures, [Texture::Striped]);
        let c = parse_claims("There is an orange star on the left of the image");
        assert_eq!(c.objects, [obj(Some("orange"), Some("star"), None)]);
        assert_eq!(
            c.positions,
            [PositionClaim {
                object: 0,
                position: Position::Left
            }]
        );
        let c = parse_claims(
            "three coloured shapes on a plain black background, one of them a small green square",
        );
        assert_eq!(c.counts, [3]);
        assert_eq!(c.objects, [obj(Some("green"), Some("square"), Some(false))]);
        assert_eq!(
            (c.tones.as_slice(), c.textures.as_slice()),
            (&[2][..], &[Texture::Plain][..])
        );
        let c = parse_claims("a picture of three shapes: a circle, a star and a square");
        assert_eq!(c.counts, [3]);
        assert_eq!(c.objects.len(), 3);
        assert!(
            c.objects
                .iter()
                .all(|o| o.colour.is_none() && o.large.is_none())
        );
        let c = parse_claims("a single yellow triangle");
        assert_eq!(c.counts, [1]);
        let c = parse_claims("a red circle at the top and a blue star in the centre");
        assert_eq!(
            c.positions,
            [
                PositionClaim {
                    object: 0,
                    position: Position::Top
                },
                PositionClaim {
                    object: 1,
                    position: Position::Centre
                }
            ]
        );
    }

    #[test]
    fn garbage_never_panics_and_keeps_what_it_can() {
        assert!(parse_claims("").is_empty());
        assert!(parse_claims(" . , ").is_empty());
        let c = parse_claims("red red red");
        assert_eq!(c.objects, [obj(Some("red"), None, None); 3]);
        let c = parse_claims("circle to the left of");
        assert_eq!(c.objects, [obj(None, Some("circle"), None)]);
        assert!(c.relations.is_empty());
        let c = parse_claims("to the left of a circle on the right above");
        assert!(c.relations.is_empty());
        assert_eq!(c.positions.len(), 1);
        let c = parse_claims("red blue circle large small");
        assert_eq!(
            c.objects,
            [
                obj(Some("red"), None, None),
                obj(Some("blue"), Some("circle"), None),
                obj(None, None, Some(true)),
                obj(None, None, Some(false))
            ]
        );
        let c = parse_claims("on the left at the top two shapes shapes one of");
        assert!(c.objects.is_empty() && c.positions.is_empty());
        assert_eq!(c.counts, [2]);
        let c = parse_claims("a circle coloured");
        assert_eq!(c.objects, [obj(None, Some("circle"), None)]);
        let c = parse_claims("a red circle coloured blue");
        assert_eq!(
            c.objects,
            [
                obj(Some("red"), Some("circle"), None),
                obj(Some("blue"), None, None)
            ]
        );
        for words in [
            "the the of of to the",
            "to the",
            "to the left",
            "on the",
            "one",
            "three coloured",
            "99999999999999999999 shapes",
            "ünïcode ☃ circle",
        ] {
            let _ = parse_claims(words);
        }
    }

    #[test]
    fn relations_are_true_of_the_grid() {
        use Position::*;
        for a in Position::ALL {
            for b in Position::ALL {
                if a == b {
                    continue;
                }
                let named = [
                    Relation::LeftOf,
                    Relation::RightOf,
                    Relation::Above,
                    Relation::Below,
                ]
                .into_iter()
                .find(|r| r.phrase() == a.relation_to(b))
                .unwrap();
                assert!(named.holds(a, b), "{a:?} {b:?}");
            }
        }
        assert!(Relation::Below.holds(Left, Top));
        assert!(!Relation::Above.holds(Left, Top));
        assert!(!Relation::LeftOf.holds(Top, Bottom));
    }
}
