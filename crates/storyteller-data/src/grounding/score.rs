//! The grounding metric: how many of a caption's claims are true of its own
//! image, compared with the same captions moved to other images.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::claims::{CaptionClaims, ObjectClaim, parse_claims};
use crate::rng::Rng;
use crate::synth::{COLOURS, Scene, ShapeKind};
use crate::tokenize;

/// The number of shuffled assignments [`grounding`] averages chance over.
pub const CHANCE_PERMUTATIONS: usize = 8;

/// What a claim is about; the names are the JSON keys of [`AttributeScores`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// Shape colours.
    Colour,
    /// Shape kinds (circle, square, ...).
    Shape,
    /// Large or small.
    Size,
    /// Absolute positions and relations between shapes.
    Position,
    /// The number of shapes.
    Count,
    /// Background tone and texture.
    Background,
}

impl Attribute {
    /// Every attribute, in report order.
    pub const ALL: [Attribute; 6] = [
        Attribute::Colour,
        Attribute::Shape,
        Attribute::Size,
        Attribute::Position,
        Attribute::Count,
        Attribute::Background,
    ];

    /// Its name: `colour`, `shape`, `size`, `position`, `count`, `background`.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Colour => "colour",
            Attribute::Shape => "shape",
            Attribute::Size => "size",
            Attribute::Position => "position",
            Attribute::Count => "count",
            Attribute::Background => "background",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The scores of one attribute. Ratios are `None` (JSON `null`) where their
/// denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeScore {
    /// Claims the captions make about this attribute.
    pub claims: usize,
    /// Of those, the claims true of the caption's own image.
    pub true_claims: usize,
    /// `true_claims / claims`.
    pub precision: Option<f64>,
    /// The share of the facts of the images (objects; images for `count`;
    /// tone and texture of each image for `background`) that the captions
    /// state correctly. `None` for captions of no object.
    pub recall: Option<f64>,
    /// `precision` with every caption scored against another image's scene,
    /// averaged over the shuffles.
    pub chance_precision: Option<f64>,
    /// `recall` against the shuffled scenes.
    pub chance_recall: Option<f64>,
    /// `precision / chance_precision`: 1 for captions no better than chance.
    pub lift: Option<f64>,
}

/// The scores of every [`Attribute`], one field (JSON key) each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeScores {
    /// Colour claims.
    pub colour: AttributeScore,
    /// Shape-kind claims.
    pub shape: AttributeScore,
    /// Size claims.
    pub size: AttributeScore,
    /// Position and relation claims.
    pub position: AttributeScore,
    /// Count claims.
    pub count: AttributeScore,
    /// Background tone and texture claims.
    pub background: AttributeScore,
}

impl AttributeScores {
    /// The scores of one attribute.
    pub fn get(&self, attribute: Attribute) -> &AttributeScore {
        match attribute {
            Attribute::Colour => &self.colour,
            Attribute::Shape => &self.shape,
            Attribute::Size => &self.size,
            Attribute::Position => &self.position,
            Attribute::Count => &self.count,
            Attribute::Background => &self.background,
        }
    }

    /// Every attribute with its scores, in [`Attribute::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Attribute, &AttributeScore)> {
        Attribute::ALL.into_iter().map(|a| (a, self.get(a)))
    }
}

/// How well captions are grounded in their images, from [`grounding`].
/// `docs/evaluation.md` defines every number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundingReport {
    /// Captions scored (one per image).
    pub images: usize,
    /// Shuffles chance was averaged over (0 with fewer than two images).
    pub permutations: usize,
    /// The seed of the shuffles.
    pub seed: u64,
    /// Per-attribute scores.
    pub attributes: AttributeScores,
    /// Distinct captions (compared as tokenized text).
    pub distinct_captions: usize,
    /// `distinct_captions / images` (0 without images).
    pub distinct_share: f64,
    /// Distinct words across all captions.
    pub vocabulary: usize,
    /// The most frequent caption, tokenized and joined by spaces (the first
    /// one written on ties; empty without images).
    pub top_caption: String,
    /// The share of images with [`GroundingReport::top_caption`] (0 without images).
    pub top_caption_share: f64,
}

/// Claim and fact counts per attribute.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    claims: [usize; 6],
    true_claims: [usize; 6],
    /// Facts stated correctly (recall numerator).
    recalled: [usize; 6],
    /// Facts (recall denominator).
    facts: [usize; 6],
}

impl Tally {
    fn add(&mut self, attribute: Attribute, claims: usize, true_claims: usize) {
        self.claims[attribute.index()] += claims;
        self.true_claims[attribute.index()] += true_claims;
    }

    fn recall(&mut self, attribute: Attribute, recalled: usize, facts: usize) {
        self.recalled[attribute.index()] += recalled;
        self.facts[attribute.index()] += facts;
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The scene objects a phrase refers to: the object of its colour, else the
/// objects of its kind, else (a bare size) every object.
fn referents(phrase: &ObjectClaim, scene: &Scene) -> Vec<usize> {
    let shapes = scene.shapes.iter().enumerate();
    match (phrase.colour, phrase.kind) {
        (Some(c), _) => shapes
            .filter(|(_, s)| s.colour == c)
            .map(|(i, _)| i)
            .collect(),
        (None, Some(k)) => shapes
            .filter(|(_, s)| s.kind == k)
            .map(|(i, _)| i)
            .collect(),
        (None, None) => shapes.map(|(i, _)| i).collect(),
    }
}

/// Scores attribute claims made of phrases (size, absolute position): each
/// claim is true if one of its referents has the value; recall counts the
/// objects given their value by a true claim, one object per claim.
/// Referent sets are nested or disjoint (one object ⊂ one kind ⊂ all), so
/// assigning the narrowest claims first finds the largest such matching.
fn score_referenced<T: Copy + PartialEq>(
    claims: &[(&ObjectClaim, T)],
    scene: &Scene,
    value: impl Fn(usize) -> T,
) -> (usize, usize) {
    let mut order: Vec<(u8, Vec<usize>, T)> = claims
        .iter()
        .map(|(phrase, v)| {
            let rank = match (phrase.colour, phrase.kind) {
                (Some(_), _) => 0,
                (None, Some(_)) => 1,
                (None, None) => 2,
            };
            (rank, referents(phrase, scene), *v)
        })
        .collect();
    let true_claims = order
        .iter()
        .filter(|(_, refs, v)| refs.iter().any(|&r| value(r) == *v))
        .count();
    order.sort_by_key(|(rank, ..)| *rank);
    let mut covered = vec![false; scene.shapes.len()];
    for (_, refs, v) in &order {
        if let Some(&r) = refs.iter().find(|&&r| !covered[r] && value(r) == *v) {
            covered[r] = true;
        }
    }
    (true_claims, covered.iter().filter(|&&c| c).count())
}

/// Adds one caption's claims scored against one scene.
fn score_caption(claims: &CaptionClaims, scene: &Scene, tally: &mut Tally) {
    let n = scene.shapes.len();
    // Colour and shape: multiset matching against the scene's objects.
    let mut colour_claims = [0usize; COLOURS.len()];
    let mut colour_scene = [0usize; COLOURS.len()];
    let mut kind_claims = [0usize; ShapeKind::ALL.len()];
    let mut kind_scene = [0usize; ShapeKind::ALL.len()];
    for o in &claims.objects {
        if let Some(c) = o.colour.filter(|&c| c < COLOURS.len()) {
            colour_claims[c] += 1;
        }
        if let Some(k) = o.kind {
            kind_claims[k as usize] += 1;
        }
    }
    for s in &scene.shapes {
        if s.colour < COLOURS.len() {
            colour_scene[s.colour] += 1;
        }
        kind_scene[s.kind as usize] += 1;
    }
    let matched = |a: &[usize], b: &[usize]| a.iter().zip(b).map(|(x, y)| x.min(y)).sum::<usize>();
    let colours = matched(&colour_claims, &colour_scene);
    tally.add(Attribute::Colour, colour_claims.iter().sum(), colours);
    tally.recall(Attribute::Colour, colours, n);
    let kinds = matched(&kind_claims, &kind_scene);
    tally.add(Attribute::Shape, kind_claims.iter().sum(), kinds);
    tally.recall(Attribute::Shape, kinds, n);

    // Size.
    let sizes: Vec<(&ObjectClaim, bool)> = claims
        .objects
        .iter()
        .filter_map(|o| o.large.map(|l| (o, l)))
        .collect();
    let (true_sizes, recalled) = score_referenced(&sizes, scene, |i| scene.shapes[i].large);
    tally.add(Attribute::Size, sizes.len(), true_sizes);
    tally.recall(Attribute::Size, recalled, n);

    // Position: absolute positions, then relations (precision only).
    let positions: Vec<_> = claims
        .positions
        .iter()
        .filter_map(|p| claims.objects.get(p.object).map(|o| (o, p.position)))
        .collect();
    let (true_positions, recalled) =
        score_referenced(&positions, scene, |i| scene.shapes[i].position);
    tally.add(Attribute::Position, positions.len(), true_positions);
    tally.recall(Attribute::Position, recalled, n);
    for r in &claims.relations {
        let (Some(subject), Some(object)) =
            (claims.objects.get(r.subject), claims.objects.get(r.object))
        else {
            continue;
        };
        let objects = referents(object, scene);
        let holds = referents(subject, scene).into_iter().any(|a| {
            objects.iter().any(|&b| {
                a != b
                    && r.relation
                        .holds(scene.shapes[a].position, scene.shapes[b].position)
            })
        });
        tally.add(Attribute::Position, 1, usize::from(holds));
    }

    // Count.
    let true_counts = claims.counts.iter().filter(|&&c| c == n).count();
    tally.add(Attribute::Count, claims.counts.len(), true_counts);
    tally.recall(Attribute::Count, usize::from(true_counts > 0), 1);

    // Background: tone and texture claims.
    let true_tones = claims
        .tones
        .iter()
        .filter(|&&t| t == scene.background)
        .count();
    let true_textures = claims
        .textures
        .iter()
        .filter(|&&t| t == scene.texture)
        .count();
    tally.add(
        Attribute::Background,
        claims.tones.len() + claims.textures.len(),
        true_tones + true_textures,
    );
    tally.recall(
        Attribute::Background,
        usize::from(true_tones > 0) + usize::from(true_textures > 0),
        2,
    );
}

/// A permutation of `0..n` with no fixed point (`n >= 2`): a shuffle whose
/// fixed points are each swapped with another random position.
fn derangement(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut perm);
    for i in 0..n {
        if perm[i] == i {
            // perm[j] != i for every j != i, so the swap leaves no fixed point.
            let mut j = rng.below(n - 1);
            if j >= i {
                j += 1;
            }
            perm.swap(i, j);
        }
    }
    perm
}

/// Scores captions against the scenes of their images with
/// [`CHANCE_PERMUTATIONS`] shuffles for chance; see
/// [`grounding_with_permutations`].
pub fn grounding<S: AsRef<str>>(pairs: &[(S, &Scene)], seed: u64) -> GroundingReport {
    grounding_with_permutations(pairs, seed, CHANCE_PERMUTATIONS)
}

/// Scores `(caption, scene of its image)` pairs, one pair per image.
///
/// Each caption is read with [`parse_claims`]. Per attribute:
///
/// - **colour, shape**: the caption's colour words (kind words) are matched
///   one to one against the scene's objects' colours (kinds), as multisets:
///   a claim is true while the scene has an unmatched object of that colour
///   (kind). "a red circle and a blue circle" over a scene with one circle
///   makes one true and one false shape claim.
/// - **size, position**: a phrase's size or absolute position is true if an
///   object the phrase refers to has it. The referent is the scene's object
///   of the phrase's colour (colours are distinct within a scene); without
///   a colour, the objects of the phrase's kind; without either, every
///   object. No referent: false.
/// - **position** also counts relation claims: true if some referent of the
///   subject phrase and a different referent of the object phrase are in
///   that relation on the grid ([`super::Relation::holds`]).
/// - **count**: true if the scene has that many shapes.
/// - **background**: each tone and each texture claim, true if the
///   background has it.
///
/// Recall is the share of facts stated correctly: objects whose colour,
/// kind, size or absolute position a true claim gives (each claim covering
/// one object); images whose count is stated; the tone and the texture of
/// each image (two facts per image). Relations count for precision only.
///
/// Chance: the same captions scored against shuffled scenes, `permutations`
/// derangements of the pairs (every caption moves to another pair's scene;
/// deterministic given `seed`), pooled. `lift = precision /
/// chance_precision`. With fewer than two pairs there is no chance.
pub fn grounding_with_permutations<S: AsRef<str>>(
    pairs: &[(S, &Scene)],
    seed: u64,
    permutations: usize,
) -> GroundingReport {
    let n = pairs.len();
    let tokens: Vec<Vec<String>> = pairs.iter().map(|(c, _)| tokenize(c.as_ref())).collect();
    let claims: Vec<CaptionClaims> = pairs
        .iter()
        .map(|(c, _)| parse_claims(c.as_ref()))
        .collect();
    let mut own = Tally::default();
    for (c, (_, scene)) in claims.iter().zip(pairs) {
        score_caption(c, scene, &mut own);
    }
    let permutations = if n >= 2 { permutations } else { 0 };
    let mut chance = Tally::default();
    let mut rng = Rng::new(seed, 0x6772_6f75_6e64);
    for _ in 0..permutations {
        let perm = derangement(n, &mut rng);
        for (c, &j) in claims.iter().zip(&perm) {
            score_caption(c, pairs[j].1, &mut chance);
        }
    }
    let score = |a: Attribute| {
        let i = a.index();
        let precision = ratio(own.true_claims[i], own.claims[i]);
        let chance_precision = ratio(chance.true_claims[i], chance.claims[i]);
        AttributeScore {
            claims: own.claims[i],
            true_claims: own.true_claims[i],
            precision,
            recall: ratio(own.recalled[i], own.facts[i]),
            chance_precision,
            chance_recall: ratio(chance.recalled[i], chance.facts[i]),
            lift: match (precision, chance_precision) {
                (Some(p), Some(c)) if c > 0.0 => Some(p / c),
                _ => None,
            },
        }
    };
    // Distinct captions, the most frequent one, vocabulary.
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        counts.entry(t.join(" ")).or_insert((0, i)).0 += 1;
    }
    let (top_caption, top_count) = counts
        .iter()
        .max_by_key(|(_, (count, first))| (*count, std::cmp::Reverse(*first)))
        .map(|(text, (count, _))| (text.clone(), *count))
        .unwrap_or_default();
    let vocabulary = tokens.iter().flatten().collect::<HashSet<_>>().len();
    let share = |k: usize| ratio(k, n).unwrap_or(0.0);
    GroundingReport {
        images: n,
        permutations,
        seed,
        attributes: AttributeScores {
            colour: score(Attribute::Colour),
            shape: score(Attribute::Shape),
            size: score(Attribute::Size),
            position: score(Attribute::Position),
            count: score(Attribute::Count),
            background: score(Attribute::Background),
        },
        distinct_captions: counts.len(),
        distinct_share: share(counts.len()),
        vocabulary,
        top_caption,
        top_caption_share: share(top_count),
    }
}

fn fixed(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

impl GroundingReport {
    /// The report as a plain-text table: one row per attribute (claims,
    /// precision, chance precision, lift | recall, chance recall), then the
    /// caption diversity line. The same text as the `Display` impl.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>7} {:>9} {:>6} {:>6} | {:>6} {:>6}\n",
            "attribute", "claims", "precision", "chance", "lift", "recall", "chance"
        );
        for (a, s) in self.attributes.iter() {
            out.push_str(&format!(
                "{:<10} {:>7} {:>9} {:>6} {:>6} | {:>6} {:>6}\n",
                a.name(),
                s.claims,
                fixed(s.precision, 3),
                fixed(s.chance_precision, 3),
                fixed(s.lift, 2),
                fixed(s.recall, 3),
                fixed(s.chance_recall, 3),
            ));
        }
        out.push_str(&format!(
            "{} images, {} distinct captions ({:.1}%), vocabulary {} words; \
             top caption {:.1}%: \"{}\"\n",
            self.images,
            self.distinct_captions,
            100.0 * self.distinct_share,
            self.vocabulary,
            100.0 * self.top_caption_share,
            self.top_caption,
        ));
        out
    }

    /// Two reports side by side (say a model and a "blind" one trained on
    /// shuffled features): per attribute, each one's precision, its chance
    /// level, the lift and the recall; then distinct captions and vocabulary.
    pub fn compare_table(&self, label: &str, other: &GroundingReport, other_label: &str) -> String {
        let mut out = format!(
            "{:<10} | {:^29} | {:^29}\n{:<10} | {:>9} {:>6} {:>5} {:>6} | {:>9} {:>6} {:>5} {:>6}\n",
            "",
            label,
            other_label,
            "attribute",
            "precision",
            "chance",
            "lift",
            "recall",
            "precision",
            "chance",
            "lift",
            "recall",
        );
        for ((a, s), (_, t)) in self.attributes.iter().zip(other.attributes.iter()) {
            out.push_str(&format!(
                "{:<10} | {:>9} {:>6} {:>5} {:>6} | {:>9} {:>6} {:>5} {:>6}\n",
                a.name(),
                fixed(s.precision, 3),
                fixed(s.chance_precision, 3),
                fixed(s.lift, 2),
                fixed(s.recall, 3),
                fixed(t.precision, 3),
                fixed(t.chance_precision, 3),
                fixed(t.lift, 2),
                fixed(t.recall, 3),
            ));
        }
        for (name, a, b) in [
            (
                "distinct",
                format!(
                    "{}/{} ({:.1}%)",
                    self.distinct_captions,
                    self.images,
                    100.0 * self.distinct_share
                ),
                format!(
                    "{}/{} ({:.1}%)",
                    other.distinct_captions,
                    other.images,
                    100.0 * other.distinct_share
                ),
            ),
            (
                "vocabulary",
                format!("{} words", self.vocabulary),
                format!("{} words", other.vocabulary),
            ),
        ] {
            out.push_str(&format!("{name:<10} | {a:>29} | {b:>29}\n"));
        }
        out
    }
}

impl fmt::Display for GroundingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Position, Shape, Texture, colour_index, synth_image};

    fn shape(kind: &str, colour: &str, large: bool, position: Position) -> Shape {
        Shape {
            kind: ShapeKind::from_word(kind).unwrap(),
            colour: colour_index(colour).unwrap(),
            large,
            position,
            jitter: (0.0, 0.0),
            scale: 1.0,
        }
    }

    /// A large red circle on the left, a small blue square on the right, on
    /// a plain grey background.
    fn two() -> Scene {
        Scene {
            background: 1,
            texture: Texture::Plain,
            shapes: vec![
                shape("circle", "red", true, Position::Left),
                shape("square", "blue", false, Position::Right),
            ],
        }
    }

    fn one(caption: &str, scene: &Scene) -> GroundingReport {
        grounding(&[(caption, scene)], 0)
    }

    fn pr(report: &GroundingReport, a: Attribute) -> (usize, usize) {
        let s = report.attributes.get(a);
        (s.claims, s.true_claims)
    }

    #[test]
    fn reference_captions_are_all_true_of_their_scene() {
        for i in 0..400 {
            let im = synth_image(21, i);
            for caption in &im.captions {
                let claims = parse_claims(caption);
                let mut tally = Tally::default();
                score_caption(&claims, &im.scene, &mut tally);
                assert_eq!(
                    tally.claims, tally.true_claims,
                    "{caption:?} {:?}",
                    im.scene
                );
                assert!(tally.claims.iter().sum::<usize>() > 0, "{caption:?}");
                let n = im.scene.shapes.len();
                let named =
                    |f: fn(&ObjectClaim) -> bool| claims.objects.iter().filter(|o| f(o)).count();
                if named(|o| o.colour.is_some()) == n {
                    assert_eq!(tally.recalled[0], n, "{caption:?}");
                }
                if named(|o| o.kind.is_some()) == n {
                    assert_eq!(tally.recalled[1], n, "{caption:?}");
                }
            }
        }
    }

    #[test]
    fn reference_captions_beat_chance_and_one_caption_for_all_does_not() {
        let images: Vec<_> = (0..300).map(|i| synth_image(8, i)).collect();
        let refs: Vec<(&str, &Scene)> = images
            .iter()
            .map(|im| (im.captions[0].as_str(), &im.scene))
            .collect();
        let report = grounding(&refs, 1);
        assert_eq!(report.permutations, CHANCE_PERMUTATIONS);
        for (a, s) in report.attributes.iter() {
            assert_eq!(s.precision, Some(1.0), "{a}");
            let lift = s.lift.unwrap();
            assert!(lift > 1.8, "{a}: {lift}\n{report}");
            assert!(s.chance_recall < s.recall, "{a}");
        }
        assert_eq!(report, grounding(&refs, 1));
        assert_ne!(report, grounding(&refs, 2));

        let same: Vec<(&str, &Scene)> = images
            .iter()
            .map(|im| {
                (
                    "A large red circle on the left on a plain grey background",
                    &im.scene,
                )
            })
            .collect();
        let blind = grounding(&same, 1);
        for (a, s) in blind.attributes.iter().filter(|(_, s)| s.claims > 0) {
            let lift = s.lift.unwrap();
            assert!((lift - 1.0).abs() < 1e-9, "{a}: {lift}");
        }
        assert_eq!(blind.distinct_captions, 1);
        assert!((blind.distinct_share - 1.0 / 300.0).abs() < 1e-12);
        assert_eq!(blind.top_caption_share, 1.0);
        assert_eq!(
            blind.top_caption,
            "a large red circle on the left on a plain grey background"
        );
        assert_eq!(blind.vocabulary, 10);
        let side = report.compare_table("model", &blind, "blind");
        assert!(
            side.lines().count() == 10 && side.contains("blind") && side.contains("chance"),
            "{side}"
        );
    }

    #[test]
    fn colour_and_shape_claims_are_matched_as_multisets() {
        let scene = two();
        // No colour named: colour has no claim, shapes one true one false.
        let r = one("a circle and a star", &scene);
        assert_eq!(pr(&r, Attribute::Colour), (0, 0));
        assert_eq!(r.attributes.colour.precision, None);
        assert_eq!(r.attributes.colour.recall, Some(0.0));
        assert_eq!(pr(&r, Attribute::Shape), (2, 1));
        assert_eq!(r.attributes.shape.recall, Some(0.5));
        // Repeated shapes: one match each.
        let r = one("a red circle and a red circle and a red circle", &scene);
        assert_eq!(pr(&r, Attribute::Colour), (3, 1));
        assert_eq!(pr(&r, Attribute::Shape), (3, 1));
        let r = one("red red red", &scene);
        assert_eq!(pr(&r, Attribute::Colour), (3, 1));
        assert_eq!(pr(&r, Attribute::Shape), (0, 0));
        // Both named, other way round: colours and kinds are each true.
        let r = one("a blue circle and a red square", &scene);
        assert_eq!(pr(&r, Attribute::Colour), (2, 2));
        assert_eq!(pr(&r, Attribute::Shape), (2, 2));
        assert_eq!(r.attributes.colour.recall, Some(1.0));
    }

    #[test]
    fn sizes_and_positions_follow_the_referent() {
        let scene = two();
        // By colour: the blue object is small and on the right.
        let r = one("a large blue star on the right", &scene);
        assert_eq!(pr(&r, Attribute::Size), (1, 0));
        assert_eq!(pr(&r, Attribute::Position), (1, 1));
        assert_eq!(r.attributes.position.recall, Some(0.5));
        // By kind, no colour: the circle is large, on the left.
        let r = one("a large circle on the left", &scene);
        assert_eq!(pr(&r, Attribute::Size), (1, 1));
        assert_eq!(pr(&r, Attribute::Position), (1, 1));
        // No referent: false.
        let r = one("a large green circle at the top and a small star", &scene);
        assert_eq!(pr(&r, Attribute::Size), (2, 0));
        assert_eq!(pr(&r, Attribute::Position), (1, 0));
        // A bare size refers to any object.
        let r = one("small", &scene);
        assert_eq!(pr(&r, Attribute::Size), (1, 1));
        assert_eq!(r.attributes.size.recall, Some(0.5));
    }

    #[test]
    fn relations_counts_and_background() {
        let scene = two();
        let r = one("a red circle to the left of a blue square", &scene);
        assert_eq!(pr(&r, Attribute::Position), (1, 1));
        let r = one("a red circle to the right of a blue square", &scene);
        assert_eq!(pr(&r, Attribute::Position), (1, 0));
        let r = one("a red circle above a blue square", &scene);
        assert_eq!(pr(&r, Attribute::Position), (1, 0));
        let r = one("a circle to the left of a circle", &scene);
        assert_eq!(pr(&r, Attribute::Position), (1, 0));
        let r = one("circle to the left of", &scene);
        assert_eq!(pr(&r, Attribute::Position), (0, 0));
        assert_eq!(pr(&r, Attribute::Shape), (1, 1));

        let r = one("three shapes on a striped grey background", &scene);
        assert_eq!(pr(&r, Attribute::Count), (1, 0));
        assert_eq!(r.attributes.count.recall, Some(0.0));
        assert_eq!(pr(&r, Attribute::Background), (2, 1));
        assert_eq!(r.attributes.background.recall, Some(0.5));
        let r = one("two shapes on a plain grey background", &scene);
        assert_eq!(pr(&r, Attribute::Count), (1, 1));
        assert_eq!(pr(&r, Attribute::Background), (2, 2));
        assert_eq!(r.attributes.background.recall, Some(1.0));
        let r = one("a single red circle", &scene);
        assert_eq!(pr(&r, Attribute::Count), (1, 0));
    }

    #[test]
    fn empty_input_and_tiny_corpora() {
        let scene = two();
        let r = one("", &scene);
        assert!(
            r.attributes
                .iter()
                .all(|(_, s)| s.claims == 0 && s.precision.is_none())
        );
        assert_eq!(
            (r.permutations, r.distinct_captions, r.vocabulary),
            (0, 1, 0)
        );
        assert!(
            r.attributes
                .iter()
                .all(|(_, s)| s.chance_precision.is_none())
        );
        let none: [(&str, &Scene); 0] = [];
        let r = grounding(&none, 0);
        assert_eq!(
            (r.images, r.distinct_share, r.top_caption.as_str()),
            (0, 0.0, "")
        );
        assert!(r.table().contains("0 images"));
        let other = synth_image(0, 0).scene;
        let r = grounding(&[("a red circle", &scene), ("a red circle", &other)], 5);
        assert_eq!(r.permutations, CHANCE_PERMUTATIONS);
        assert!(r.attributes.colour.chance_precision.is_some());
    }

    #[test]
    fn derangements_move_everything() {
        let mut rng = Rng::new(3, 0);
        for n in 2..40 {
            for _ in 0..20 {
                let p = derangement(n, &mut rng);
                assert!(p.iter().enumerate().all(|(i, &j)| i != j));
                let mut sorted = p.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn report_is_json_and_a_table() {
        let images: Vec<_> = (0..20).map(|i| synth_image(2, i)).collect();
        let pairs: Vec<(String, &Scene)> = images
            .iter()
            .map(|im| (im.captions[1].clone(), &im.scene))
            .collect();
        let report = grounding(&pairs, 0);
        let json = serde_json::to_value(&report).unwrap();
        for a in Attribute::ALL {
            assert!(json["attributes"][a.name()]["lift"].is_number(), "{json}");
        }
        let back: GroundingReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        let table = report.to_string();
        assert_eq!(table.lines().count(), 8, "{table}");
        assert!(table.starts_with("attribute"));
        assert!(table.contains("background"));
    }
}
