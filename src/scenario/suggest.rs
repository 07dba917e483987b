//! "Did you mean `x`?": the closest known word to a misspelt one, when it is close enough.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
///
/// Case and `_`/`-` differences count as exact matches (`depends_on` → `depends-on`); otherwise the
/// edit distance (with transpositions) must be at most a third of the word's length, and at least 1.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let normal = normalise(word);
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance = if normalise(candidate) == normal {
            0
        } else {
            distance(&normal, &normalise(candidate))
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalise(word: &str) -> Vec<char> {
    word.chars().map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        rows[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        rows[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[at(i - 1, j)] + 1)
                .min(rows[at(i, j - 1)] + 1)
                .min(rows[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[at(i - 2, j - 2)] + 1);
            }
            rows[at(i, j)] = best;
        }
    }
    rows[at(a.len(), b.len())]
}

/// `` `a`, `b` or `c` `` (or `` `a` `` alone), for hints listing what is allowed.
pub(crate) fn list<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    join(words, "or")
}

/// `` `a`, `b` and `c` ``, for hints listing what exists.
pub(crate) fn list_all<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    join(words, "and")
}

fn join<'a>(words: impl IntoIterator<Item = &'a str>, conjunction: &str) -> String {
    let words: Vec<String> = words.into_iter().map(|w| format!("`{w}`")).collect();
    match words.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 8] =
        ["image", "build", "env", "command", "ports", "health", "startup-timeout", "depends-on"];

    #[test]
    fn suggests_close_keys() {
        assert_eq!(closest("prots", KEYS), Some("ports"));
        assert_eq!(closest("depends_on", KEYS), Some("depends-on"));
        assert_eq!(closest("Image", KEYS), Some("image"));
        assert_eq!(closest("startup_timout", KEYS), Some("startup-timeout"));
        assert_eq!(closest("biling", ["db", "billing"]), Some("billing"));
        assert_eq!(closest("evn", KEYS), Some("env"));
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(closest("volumes", KEYS), None);
        assert_eq!(closest("x", ["db"]), None);
        assert_eq!(closest("ports", ["ports"]), None);
        assert_eq!(closest("anything", []), None);
    }

    #[test]
    fn distance_counts_swaps_once() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(distance(&chars("ab"), &chars("ba")), 1);
        assert_eq!(distance(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(distance(&chars(""), &chars("abc")), 3);
    }

    #[test]
    fn lists_words() {
        assert_eq!(list(["a"]), "`a`");
        assert_eq!(list(["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(list_all(["a", "b"]), "`a` and `b`");
    }
}
