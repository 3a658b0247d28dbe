//! Smithy `@pattern` values are ECMA-262 regular expressions; Muster checks them with the
//! `regex` crate. The syntaxes agree for everything the SSM Contacts model uses except the
//! Perl classes: in ECMA-262 (without the `u` flag) `\w` and `\d` are ASCII-only, while the
//! `regex` crate makes them Unicode-aware. They are rewritten to explicit ASCII ranges here.
//! `\s`/`\S` are Unicode-aware in both, and `\p{..}` classes mean the same.

/// Rewrites an ECMA-262 pattern into `regex` crate syntax with the same meaning.
pub fn ecma_to_rust(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err(format!("pattern {pattern:?} ends with a lone backslash"));
                };
                match (e, in_class) {
                    ('w', false) => out.push_str("[0-9A-Za-z_]"),
                    ('w', true) => out.push_str("0-9A-Za-z_"),
                    ('W', false) => out.push_str("[^0-9A-Za-z_]"),
                    ('d', false) => out.push_str("[0-9]"),
                    ('d', true) => out.push_str("0-9"),
                    ('D', false) => out.push_str("[^0-9]"),
                    ('W' | 'D', true) => {
                        return Err(format!(
                            "pattern {pattern:?}: \\{e} inside a character class is not supported"
                        ));
                    }
                    ('p' | 'P', _) => {
                        out.push('\\');
                        out.push(e);
                        // Copy `{Name}` verbatim.
                        if chars.peek() == Some(&'{') {
                            for n in chars.by_ref() {
                                out.push(n);
                                if n == '}' {
                                    break;
                                }
                            }
                        }
                    }
                    // `\/` is a plain slash; the regex crate accepts the escape too, but the
                    // plain form is unambiguous.
                    ('/', _) => out.push('/'),
                    (e, _) => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '(' if !in_class && chars.peek() == Some(&'?') => {
                let mut ahead = chars.clone();
                ahead.next();
                match ahead.next() {
                    Some('=' | '!') => {
                        return Err(format!(
                            "pattern {pattern:?}: lookahead is only supported as a leading `^(?!...)`"
                        ));
                    }
                    Some('<') if matches!(ahead.next(), Some('=' | '!')) => {
                        return Err(format!("pattern {pattern:?}: lookbehind is not supported"));
                    }
                    _ => out.push('('),
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // `[^` and a leading `]` are part of the class opening.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            // A literal `[` inside a class must be escaped for the regex crate (nested classes).
            '[' if in_class => out.push_str("\\["),
            c => out.push(c),
        }
    }
    if in_class {
        return Err(format!(
            "pattern {pattern:?} has an unclosed character class"
        ));
    }
    Ok(out)
}

/// A pattern `^(?!X)Y` (a negative lookahead right after the start anchor, which the regex
/// crate cannot express) as `(X, ^Y)`: a value matches it exactly when `^(?:X)` does not
/// match and `^Y` does. `None` when the pattern does not start that way.
pub fn split_leading_negative_lookahead(pattern: &str) -> Option<(String, String)> {
    let inner = pattern.strip_prefix("^(?!")?;
    let mut depth = 0usize;
    let mut in_class = false;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class && depth > 0 => depth -= 1,
            ')' if !in_class => {
                return Some((inner[..i].to_owned(), format!("^{}", &inner[i + 1..])));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{ecma_to_rust, split_leading_negative_lookahead};

    #[test]
    fn leading_negative_lookahead_is_split_off() {
        assert_eq!(
            split_leading_negative_lookahead(r"^(?!aws:)[A-Za-z0-9 _=@:.+-/]+$"),
            Some(("aws:".to_owned(), r"^[A-Za-z0-9 _=@:.+-/]+$".to_owned()))
        );
        assert_eq!(
            split_leading_negative_lookahead(r"^(?!a(b)[)]\))x$"),
            Some((r"a(b)[)]\)".to_owned(), "^x$".to_owned()))
        );
        assert_eq!(split_leading_negative_lookahead(r"^(?:a)b"), None);
        assert_eq!(split_leading_negative_lookahead(r"^(?!unclosed"), None);
        assert!(ecma_to_rust(r"^(?!aws:)x").is_err());
        assert!(ecma_to_rust(r"a(?=b)").is_err());
        assert!(ecma_to_rust(r"(?<!a)b").is_err());
        assert!(ecma_to_rust(r"(?<=a)b").is_err());
        assert_eq!(ecma_to_rust(r"(?:a)[(?=]").unwrap(), r"(?:a)[(?=]");
    }

    #[test]
    fn rewrites_perl_classes_to_ascii() {
        assert_eq!(
            ecma_to_rust(r"^arn:(aws|aws-cn):ssm-contacts:[-\w+=\/,.@]*:[0-9]+:([\w+=\/,.@:-]+)*$")
                .unwrap(),
            r"^arn:(aws|aws-cn):ssm-contacts:[-0-9A-Za-z_+=/,.@]*:[0-9]+:([0-9A-Za-z_+=/,.@:-]+)*$"
        );
        assert_eq!(ecma_to_rust(r"\w+\d").unwrap(), r"[0-9A-Za-z_]+[0-9]");
        assert_eq!(
            ecma_to_rust(r"^[\p{L}\p{Z}\p{N}_.\-]*$").unwrap(),
            r"^[\p{L}\p{Z}\p{N}_.\-]*$"
        );
        assert_eq!(ecma_to_rust(r"^[.\s\S]*$").unwrap(), r"^[.\s\S]*$");
        assert_eq!(ecma_to_rust(r"^[\\\/a-z]*$").unwrap(), r"^[\\/a-z]*$");
        assert_eq!(ecma_to_rust(r"[a[b]").unwrap(), r"[a\[b]");
        assert!(ecma_to_rust(r"[\W]").is_err());
        assert!(ecma_to_rust(r"[abc").is_err());
    }
}
