//! Free text people type (reasons, comments) and names: what is accepted.
//!
//! Text is shown to approvers and kept in the audit log, so nothing in it may
//! hide or reorder what they read: control characters (but newline and tab),
//! direction overrides and isolates (`U+202E` …), and invisible format
//! characters (zero-width spaces and joiners, word joiners, BOMs, tags) are
//! refused, each named by its code point.

/// The longest free-text field, in characters (as a JSON Schema `maxLength` counts).
pub const MAX_TEXT: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is too long (at most {MAX_TEXT} characters)")]
    TooLong { field: String },
    #[error("{field} contains a control character ({code})")]
    Control { field: String, code: String },
    #[error("{field} contains an invisible or direction-changing character ({code}); retype it without one")]
    Hidden { field: String, code: String },
}

/// Text for an HTML page or mail: the four characters that could open markup or an attribute, escaped.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Characters that change how text is displayed without being seen.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{061C}'                // Arabic letter mark
        | '\u{180E}'                // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}'   // embeddings and overrides
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}'   // isolates, deprecated format characters
        | '\u{FEFF}'                // zero-width no-break space (BOM)
        | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// Checks a free-text field: trimmed, empty is none, at most [`MAX_TEXT`]
/// characters, nothing that hides or reorders what a reader sees.
pub fn check(field: &str, value: Option<&str>) -> Result<Option<String>, TextError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.chars().count() > MAX_TEXT {
        return Err(TextError::TooLong { field: field.to_string() });
    }
    let code = |c: char| format!("U+{:04X}", c as u32);
    if let Some(c) = v.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t') {
        return Err(TextError::Control { field: field.to_string(), code: code(c) });
    }
    if let Some(c) = v.chars().find(|c| is_hidden(*c)) {
        return Err(TextError::Hidden { field: field.to_string(), code: code(c) });
    }
    Ok(Some(v.to_string()))
}

/// `url` with any password taken out (in its user-info, or a `password=`
/// query parameter, as PostgreSQL URLs allow), for messages and logs (as git
/// redacts the URLs it prints).
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            format!("{}:<redacted>@{host}", userinfo.split(':').next().unwrap_or_default())
        }
        _ => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| if p.split('=').next() == Some("password") { "password=<redacted>".to_string() } else { p.to_string() })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether `name` may name a user, a group or a provider: 1-64 letters,
/// digits, `-`, `_` or `.`, starting with a letter or digit (so never `.`,
/// `..`, a hidden-file name or something that reads as a flag).
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            url_without_password("postgres://jit:s3cret@db.example.com:5432/jit"),
            "postgres://jit:<redacted>@db.example.com:5432/jit"
        );
        assert_eq!(
            url_without_password("postgres://db.example.com/jit?user=jit&password=s3cret&sslmode=require"),
            "postgres://db.example.com/jit?user=jit&password=<redacted>&sslmode=require"
        );
        assert_eq!(url_without_password("postgres://jit@localhost/jit"), "postgres://jit@localhost/jit");
        assert_eq!(url_without_password("https://u:p@host?x=1"), "https://u:<redacted>@host?x=1");
        assert_eq!(url_without_password("not a url"), "not a url");
    }

    #[test]
    fn html_escape_leaves_no_markup() {
        assert_eq!(html_escape(r#"<a href="x">&amp;</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;amp;&lt;/a&gt;");
    }

    #[test]
    fn plain_text_passes_trimmed() {
        assert_eq!(
            check("reason", Some("  hotfix INC-42\nsee the ticket\t(urgent)  ")).unwrap().as_deref(),
            Some("hotfix INC-42\nsee the ticket\t(urgent)")
        );
        assert_eq!(check("reason", Some("   ")).unwrap(), None);
        assert_eq!(check("reason", None).unwrap(), None);
        assert!(check("reason", Some("Ünïcödé and 漢字 are fine")).unwrap().is_some());
    }

    #[test]
    fn what_hides_or_reorders_text_is_refused_by_code_point() {
        for (text, code) in [
            ("fix \u{202E}txt.exe", "U+202E"),
            ("a\u{2066}b", "U+2066"),
            ("zero\u{200B}width", "U+200B"),
            ("bom\u{FEFF}", "U+FEFF"),
            ("tag\u{E0041}", "U+E0041"),
            ("soft\u{00AD}hyphen", "U+00AD"),
        ] {
            let err = check("comment", Some(text)).unwrap_err().to_string();
            assert!(err.contains(code) && err.starts_with("comment"), "{text:?}: {err}");
        }
        let err = check("reason", Some("bell\u{7}")).unwrap_err();
        assert_eq!(err, TextError::Control { field: "reason".into(), code: "U+0007".into() });
        assert!(matches!(check("reason", Some(&"x".repeat(MAX_TEXT + 1))), Err(TextError::TooLong { .. })));
        assert!(check("reason", Some(&"x".repeat(MAX_TEXT))).is_ok());
        assert!(check("reason", Some(&"é".repeat(MAX_TEXT))).is_ok(), "characters, not bytes");
        assert!(matches!(check("reason", Some(&"é".repeat(MAX_TEXT + 1))), Err(TextError::TooLong { .. })));
    }

    #[test]
    fn names_start_with_a_letter_or_digit() {
        for good in ["alice", "a", "bob.smith", "svc-ci_2", &"n".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "-flag", "_x", "a b", "a\nb", "a/b", "ü", &"n".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
