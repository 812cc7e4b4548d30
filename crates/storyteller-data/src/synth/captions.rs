//! The caption grammar of the synthetic dataset: five varied captions per
//! scene, each naming what is in the image (colours, shapes, sizes,
//! positions, background), so a model must look at the image to get them.

use super::scene::{BACKGROUNDS, Scene, Shape};
use crate::rng::Rng;

/// "a" or "an", by the next word.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn np(s: &Shape) -> String {
    format!(
        "{} {} {}",
        article(s.colour_word()),
        s.colour_word(),
        s.kind.word()
    )
}

fn np_sized(s: &Shape) -> String {
    format!("a {} {} {}", s.size_word(), s.colour_word(), s.kind.word())
}

fn background(scene: &Scene) -> String {
    let tone = BACKGROUNDS[scene.background].0;
    match scene.texture.word() {
        Some(t) => format!("on a {t} {tone} background"),
        None => format!("on a plain {tone} background"),
    }
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Every caption the grammar can make for the scene, in template order.
fn candidates(scene: &Scene, rng: &mut Rng) -> Vec<String> {
    let mut shapes = scene.shapes.clone();
    rng.shuffle(&mut shapes);
    let bg = background(scene);
    let nps: Vec<String> = shapes.iter().map(np).collect();
    let sized: Vec<String> = shapes.iter().map(np_sized).collect();
    let placed: Vec<String> = shapes
        .iter()
        .map(|s| format!("{} {}", np(s), s.position.phrase()))
        .collect();
    let kinds: Vec<String> = shapes
        .iter()
        .map(|s| format!("a {}", s.kind.word()))
        .collect();
    match shapes.as_slice() {
        [a] => vec![
            format!("{} {}", np_sized(a), a.position.phrase()),
            format!("{} {bg}", np(a)),
            format!("there is {} {} of the image", np(a), a.position.phrase()),
            format!("a single {} {}", a.colour_word(), a.kind.word()),
            format!(
                "one {} {} coloured {} {bg}",
                a.size_word(),
                a.kind.word(),
                a.colour_word()
            ),
            format!("a picture of {}", np_sized(a)),
            format!("{} {} {bg}", np(a), a.position.phrase()),
        ],
        [a, b] => vec![
            format!(
                "{} {} {}",
                np_sized(a),
                a.position.relation_to(b.position),
                np(b)
            ),
            format!("two shapes: {}", list(&nps)),
            format!("{} {bg}", list(&nps)),
            list(&placed),
            format!(
                "{} {} {}",
                np(b),
                b.position.relation_to(a.position),
                np_sized(a)
            ),
            format!("a picture with two shapes, {}", list(&sized)),
            format!("two shapes {bg}, {} and {}", kinds[0], kinds[1]),
        ],
        [a, b, c, ..] => vec![
            format!("three shapes: {}", list(&nps)),
            format!("{} {bg}", list(&nps)),
            format!(
                "{} {} {} and {} {}",
                np(a),
                a.position.relation_to(b.position),
                np(b),
                np(c),
                c.position.phrase()
            ),
            format!("three coloured shapes {bg}, one of them {}", np_sized(a)),
            list(&placed),
            format!("a picture of three shapes: {}", list(&kinds)),
            list(&sized),
        ],
        [] => vec![format!("an empty picture {bg}")],
    }
}

/// Five distinct captions for the scene, templates and shape order chosen by
/// `rng`; the first letter is capitalised and some end with a full stop, as
/// human captions do.
pub(crate) fn captions(scene: &Scene, rng: &mut Rng) -> Vec<String> {
    let mut all = candidates(scene, rng);
    rng.shuffle(&mut all);
    let mut seen = std::collections::HashSet::new();
    all.retain(|c| seen.insert(c.clone()));
    all.truncate(5);
    all.into_iter()
        .map(|c| {
            let mut chars = c.chars();
            let first = chars.next().map(|f| f.to_uppercase().collect::<String>());
            let mut out = first.unwrap_or_default() + chars.as_str();
            if rng.below(2) == 0 {
                out.push_str(" .");
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize;

    #[test]
    fn five_distinct_captions_that_name_every_colour() {
        let mut rng = Rng::new(11, 0);
        for _ in 0..300 {
            let scene = Scene::sample(&mut rng);
            let caps = captions(&scene, &mut rng);
            assert_eq!(caps.len(), 5);
            let mut sorted = caps.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 5, "{caps:?}");
            assert!(
                caps.iter().all(|c| !c.to_lowercase().contains("a orange")),
                "{caps:?}"
            );
            let all: Vec<String> = caps.iter().flat_map(|c| tokenize(c)).collect();
            for shape in &scene.shapes {
                assert!(all.iter().any(|w| w == shape.colour_word()), "{caps:?}");
                assert!(all.iter().any(|w| w == shape.kind.word()), "{caps:?}");
            }
        }
    }
}
