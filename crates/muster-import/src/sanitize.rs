//! Names as the ssm-contacts model accepts them. Sources allow characters the model does not
//! ("O'Brien", "Ops (EU)", "Übergabe"): these functions make a valid name that stays close to
//! the original, and a source reports a loss (`renamed`) when the name changed.

use std::collections::HashSet;

/// Longest alias, display name or rotation name the model accepts.
pub const MAX_NAME: usize = 255;

/// A Latin letter with a diacritic (or a ligature) as plain ASCII; `None` for other
/// characters. Enough for the names teams type; anything else becomes a separator.
fn ascii_of(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'å' | 'ā' | 'ą' => "a",
        'ä' | 'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ō' | 'ø' => "o",
        'ö' | 'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' => "s",
        'ß' => "ss",
        'ť' => "t",
        'ù' | 'ú' | 'û' | 'ū' | 'ů' => "u",
        'ü' => "ue",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'À' | 'Á' | 'Â' | 'Ã' | 'Å' | 'Ā' | 'Ą' => "A",
        'Ä' | 'Æ' => "Ae",
        'Ç' | 'Ć' | 'Č' => "C",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'Ì' | 'Í' | 'Î' | 'Ï' => "I",
        'Ł' => "L",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ø' => "O",
        'Ö' | 'Œ' => "Oe",
        'Ś' | 'Š' => "S",
        'Ù' | 'Ú' | 'Û' | 'Ů' => "U",
        'Ü' => "Ue",
        'Ý' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// An alias (`^[a-z0-9_-]+$`, at most 255) from `s` (an e-mail address's local part, a name):
/// lower case, transliterated, every other run of characters one `-`, no `-` at either end.
/// `fallback` when nothing is left.
pub fn alias(s: &str, fallback: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    let mut push = |piece: &str, out: &mut String| {
        for c in piece.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                if dash && !out.is_empty() {
                    out.push('-');
                }
                dash = false;
                out.push(c);
            } else {
                dash = true;
            }
        }
    };
    for c in s.chars() {
        match ascii_of(c) {
            Some(a) => push(a, &mut out),
            None => push(c.encode_utf8(&mut [0; 4]), &mut out),
        }
    }
    let out = cut(out, MAX_NAME);
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// `alias(email's local part)` for a person.
pub fn alias_of_email(email: &str, fallback: &str) -> String {
    alias(email.split('@').next().unwrap_or(email), fallback)
}

/// A display name or channel name (`^[\p{L}\p{Z}\p{N}_.\-]*$`, at most 255): letters
/// (any script), digits, spaces, `_`, `.` and `-` are kept; `'` is dropped ("O'Brien" →
/// "OBrien"); anything else becomes a space, runs of spaces one, trimmed.
pub fn display_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        let keep = c.is_alphabetic() || c.is_numeric() || matches!(c, '_' | '.' | '-');
        let c = if keep { c } else { ' ' };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    cut(out.trim_end().to_owned(), MAX_NAME)
}

/// A rotation name (`^[a-zA-Z0-9_\-\s\.]*$`, ASCII only, at most 255): transliterated,
/// anything else a space, runs of spaces one, trimmed; `fallback` when nothing is left.
pub fn rotation_name(s: &str, fallback: &str) -> String {
    let mut out = String::new();
    let push = |c: char, out: &mut String| {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        let c = if keep { c } else { ' ' };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    };
    for c in s.chars() {
        match ascii_of(c) {
            Some(a) => a.chars().for_each(|c| push(c, &mut out)),
            None => push(c, &mut out),
        }
    }
    let out = cut(out.trim_end().to_owned(), MAX_NAME);
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// Hands out aliases unique among those given so far: the wanted one, else `wanted-2`,
/// `wanted-3`, … (cut so that the suffix fits).
#[derive(Debug, Default)]
pub struct Aliases {
    taken: HashSet<String>,
}

impl Aliases {
    /// Marks `alias` as taken (an alias an earlier import already gave).
    pub fn reserve(&mut self, alias: &str) {
        self.taken.insert(alias.to_owned());
    }

    /// A free alias for `wanted`, now taken.
    pub fn unique(&mut self, wanted: &str) -> String {
        if self.taken.insert(wanted.to_owned()) {
            return wanted.to_owned();
        }
        for n in 2.. {
            let suffix = format!("-{n}");
            let alias = format!(
                "{}{suffix}",
                cut(wanted.to_owned(), MAX_NAME - suffix.len())
            );
            if self.taken.insert(alias.clone()) {
                return alias;
            }
        }
        unreachable!("an unbounded counter always finds a free alias")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_keep_only_what_the_model_accepts() {
        assert_eq!(alias("Ann.O'Brien", "x"), "ann-o-brien");
        assert_eq!(
            alias_of_email("Jürgen.Groß@example.com", "x"),
            "juergen-gross"
        );
        assert_eq!(alias("__ops__", "x"), "__ops__");
        assert_eq!(alias("--", "user-1"), "user-1");
        assert_eq!(alias("李", "user-7"), "user-7");
        let long = "a".repeat(300);
        assert_eq!(alias(&long, "x").len(), 255);
    }

    #[test]
    fn display_names_drop_what_the_pattern_refuses() {
        assert_eq!(display_name("Ann O'Brien"), "Ann OBrien");
        assert_eq!(display_name("Ops (EU), night"), "Ops EU night");
        assert_eq!(display_name("Jürgen Groß"), "Jürgen Groß");
        assert_eq!(display_name("  a  b "), "a b");
    }

    #[test]
    fn rotation_names_are_ascii() {
        assert_eq!(rotation_name("Übergabe (Nacht)", "r"), "Uebergabe Nacht");
        assert_eq!(rotation_name("日本", "rotation-3"), "rotation-3");
        assert_eq!(
            rotation_name("primary_on-call.v2", "r"),
            "primary_on-call.v2"
        );
    }

    #[test]
    fn clashing_aliases_get_a_numeric_suffix() {
        let mut a = Aliases::default();
        a.reserve("ann");
        assert_eq!(a.unique("ann"), "ann-2");
        assert_eq!(a.unique("ann"), "ann-3");
        assert_eq!(a.unique("bob"), "bob");
        let long = "b".repeat(255);
        let second = a.unique(&long);
        assert_eq!(a.unique(&long).len(), 255);
        assert!(second == long);
    }
}
