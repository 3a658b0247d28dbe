//! Rust names for Smithy names, and doc comments from Smithy documentation.

/// Words that must be written as raw identifiers (`r#type`).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "try", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield",
];

/// Words that cannot even be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// `DurationInMinutes` → `duration_in_minutes`, `ResourceARN` → `resource_arn`,
/// `ARNValue` → `arn_value`, `Ipv4Address` → `ipv4_address`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary =
                prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A snake_case name usable as a field or method identifier (`type` → `r#type`).
pub fn field_ident(name: &str) -> String {
    let snake = snake_case(name);
    let snake = if snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{snake}")
    } else {
        snake
    };
    if NOT_RAW.contains(&snake.as_str()) {
        format!("{snake}_")
    } else if KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else {
        snake
    }
}

/// An enum variant for a Smithy enum member name: `NOT_ACTIVATED` → `NotActivated`,
/// `SMS` → `Sms`, `fooBar` → `FooBar`.
pub fn variant_ident(name: &str) -> String {
    let mut out = String::new();
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let all_upper = !part.chars().any(|c| c.is_ascii_lowercase());
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            if all_upper {
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            } else {
                out.extend(chars);
            }
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if out == "Self" {
        out.push('_');
    }
    out
}

/// A `SCREAMING_SNAKE` name for a static: `ContactAlias` → `CONTACT_ALIAS`.
pub fn screaming_snake(name: &str) -> String {
    snake_case(name).to_ascii_uppercase()
}

/// The first sentence of a Smithy documentation string (HTML), as plain Markdown-safe text.
pub fn doc_summary(html: &str) -> String {
    let text = collapse_whitespace(&decode_entities(&strip_tags(html)));
    let sentence = first_sentence(&text);
    escape_markdown(sentence.trim())
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                // A tag separates words (`<p>a</p><p>b</p>`).
                out.push(' ');
            }
            (true, '>') => in_tag = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    // "word ." and "word ," come from tags that closed right before punctuation.
    out.replace(" .", ".").replace(" ,", ",")
}

fn first_sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(rel) = text[search..].find(". ") {
        let end = search + rel;
        let before = &text[..end];
        let last_word = before.rsplit(' ').next().unwrap_or("");
        let abbreviation = matches!(
            last_word.to_ascii_lowercase().as_str(),
            "e.g" | "i.e" | "etc" | "vs" | "approx" | "incl"
        );
        let next_upper = bytes.get(end + 2).is_some_and(|b| b.is_ascii_uppercase());
        if !abbreviation && next_upper {
            return &text[..=end];
        }
        search = end + 2;
    }
    text
}

/// Keeps rustdoc from reading brackets as links and angle brackets as HTML; wraps bare URLs.
fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.starts_with("http://") || word.starts_with("https://") {
            let url = word.trim_end_matches(['.', ',', ';', ')']);
            out.push('<');
            out.push_str(url);
            out.push('>');
            out.push_str(&word[url.len()..]);
            continue;
        }
        for c in word.chars() {
            if matches!(c, '[' | ']' | '<' | '>' | '*' | '_' | '`' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases() {
        assert_eq!(snake_case("DurationInMinutes"), "duration_in_minutes");
        assert_eq!(snake_case("ResourceARN"), "resource_arn");
        assert_eq!(snake_case("ContactArn"), "contact_arn");
        assert_eq!(snake_case("ARNValue"), "arn_value");
        assert_eq!(snake_case("Ipv4Address"), "ipv4_address");
        assert_eq!(snake_case("Type"), "type");
        assert_eq!(snake_case("ListTagsForResource"), "list_tags_for_resource");
        assert_eq!(field_ident("Type"), "r#type");
        assert_eq!(field_ident("Self"), "self_");
        assert_eq!(field_ident("TimeZoneId"), "time_zone_id");
    }

    #[test]
    fn variants() {
        assert_eq!(variant_ident("PERSONAL"), "Personal");
        assert_eq!(variant_ident("ONCALL_SCHEDULE"), "OncallSchedule");
        assert_eq!(variant_ident("NOT_ACTIVATED"), "NotActivated");
        assert_eq!(variant_ident("MON"), "Mon");
        assert_eq!(variant_ident("fooBar"), "FooBar");
        assert_eq!(variant_ident("1X"), "V1x");
    }

    #[test]
    fn docs() {
        assert_eq!(
            doc_summary(
                "<p>The stage that's <i>active</i>. See <a href=\"x\">docs</a>, e.g. this.</p>"
            ),
            "The stage that's active."
        );
        assert_eq!(
            doc_summary("<p>Use e.g. <code>a_b</code> [1] &lt;x&gt; https://x.y/z.</p>"),
            "Use e.g. a\\_b \\[1\\] \\<x\\> <https://x.y/z>."
        );
        assert_eq!(doc_summary("<p>A. b. C</p>"), "A. b.");
        assert_eq!(doc_summary(""), "");
    }
}
