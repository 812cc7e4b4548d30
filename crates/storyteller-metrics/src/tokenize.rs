//! The project tokenizer, shared by vocabulary building, training and evaluation.

/// Splits a caption into tokens the way every part of Neural Storyteller does:
/// lowercase (Unicode-aware), delete every character that is neither
/// alphanumeric nor whitespace, then split on whitespace.
///
/// Punctuation is deleted, not replaced by a space, so `t-shirt` becomes
/// `tshirt` and `dog's` becomes `dogs`, as in the Karpathy Flickr30k tokens.
///
/// ```
/// use storyteller_metrics::tokenize;
/// assert_eq!(tokenize("A dog's T-shirt, on  the GRASS!"), ["a", "dogs", "tshirt", "on", "the", "grass"]);
/// assert_eq!(tokenize("Un café à Paris"), ["un", "café", "à", "paris"]);
/// assert!(tokenize(" ... ").is_empty());
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() {
            cleaned.push(' ');
        } else if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        }
    }
    cleaned.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn strips_punctuation_and_lowercases() {
        assert_eq!(
            tokenize("Two men, playing.\tFootball?"),
            ["two", "men", "playing", "football"]
        );
    }

    #[test]
    fn keeps_digits_and_unicode_letters() {
        assert_eq!(
            tokenize("3 Kinder spielen Fußball"),
            ["3", "kinder", "spielen", "fußball"]
        );
    }

    #[test]
    fn empty_and_punctuation_only_give_no_tokens() {
        assert!(tokenize("").is_empty());
        assert!(tokenize("?!.,").is_empty());
    }
}
