//! nginx's configuration syntax, token by token, as `ngx_conf_read_token` reads it: words
//! (bare, "double" or 'single' quoted, with backslash escapes), `;`, `{`, `}` and `#` comments.
//!
//! Rules kept from nginx because they change what a file means:
//! - `#` starts a comment only where a token could start (`a#b` is one word);
//! - inside a bare word `${` does not open a block (`${var}` is one word), and `}` is part of it;
//! - a quoted string must be followed by a space, `;`, `{` or `)`;
//! - escapes `\"`, `\'`, `\\`, `\t`, `\r`, `\n` are decoded; any other `\x` stays as written.

/// One token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A word (directive name or argument), unescaped, with whether it was quoted.
    Word {
        /// The word's text (invalid UTF-8 is replaced).
        text: String,
        /// Whether the word was written in quotes (an empty quoted word is still a word).
        quoted: bool,
        /// 1-based line.
        line: usize,
    },
    /// `;`
    Semicolon {
        /// 1-based line.
        line: usize,
    },
    /// `{`
    Open {
        /// 1-based line.
        line: usize,
    },
    /// `}`
    Close {
        /// 1-based line.
        line: usize,
    },
}

impl Token {
    /// The line the token starts on.
    pub fn line(&self) -> usize {
        match self {
            Token::Word { line, .. }
            | Token::Semicolon { line }
            | Token::Open { line }
            | Token::Close { line } => *line,
        }
    }
}

/// A syntax error: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits a configuration file into tokens.
pub fn tokenize(src: &[u8]) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    while i < src.len() {
        let c = src[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
            }
            b';' => {
                out.push(Token::Semicolon { line });
                i += 1;
            }
            b'{' => {
                out.push(Token::Open { line });
                i += 1;
            }
            b'}' => {
                out.push(Token::Close { line });
                i += 1;
            }
            b'"' | b'\'' => {
                let start_line = line;
                i += 1;
                let mut raw = Vec::new();
                loop {
                    let Some(&b) = src.get(i) else {
                        return Err(LexError {
                            line: start_line,
                            message: format!(
                                "unterminated quoted string (the {} opened here is never closed)",
                                if c == b'"' { "\"" } else { "'" }
                            ),
                        });
                    };
                    if b == b'\\' && i + 1 < src.len() {
                        raw.push(b);
                        raw.push(src[i + 1]);
                        if src[i + 1] == b'\n' {
                            line += 1;
                        }
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if b == c {
                        break;
                    }
                    if b == b'\n' {
                        line += 1;
                    }
                    raw.push(b);
                }
                // nginx wants a separator after a closing quote.
                if let Some(&n) = src.get(i) {
                    if !matches!(n, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b')') {
                        return Err(LexError {
                            line,
                            message: format!(
                                "unexpected {:?} after a quoted string",
                                char::from(n)
                            ),
                        });
                    }
                }
                out.push(Token::Word {
                    text: unescape(&raw),
                    quoted: true,
                    line: start_line,
                });
            }
            _ => {
                let start_line = line;
                let mut raw = Vec::new();
                let mut after_dollar = false;
                while let Some(&b) = src.get(i) {
                    if b == b'{' && after_dollar {
                        raw.push(b);
                        after_dollar = false;
                        i += 1;
                        continue;
                    }
                    after_dollar = false;
                    match b {
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' => break,
                        b'\\' if i + 1 < src.len() => {
                            raw.push(b);
                            raw.push(src[i + 1]);
                            if src[i + 1] == b'\n' {
                                line += 1;
                            }
                            i += 2;
                        }
                        b'$' => {
                            after_dollar = true;
                            raw.push(b);
                            i += 1;
                        }
                        _ => {
                            raw.push(b);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Word {
                    text: unescape(&raw),
                    quoted: false,
                    line: start_line,
                });
            }
        }
    }
    Ok(out)
}

/// Decodes nginx's escapes; an unknown escape keeps its backslash.
fn unescape(raw: &[u8]) -> String {
    let mut v = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            let d = match raw[i + 1] {
                b'"' => Some(b'"'),
                b'\'' => Some(b'\''),
                b'\\' => Some(b'\\'),
                b't' => Some(b'\t'),
                b'r' => Some(b'\r'),
                b'n' => Some(b'\n'),
                _ => None,
            };
            if let Some(d) = d {
                v.push(d);
                i += 2;
                continue;
            }
        }
        v.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        tokenize(src.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Token::Word { text, .. } => text,
                Token::Semicolon { .. } => ";".into(),
                Token::Open { .. } => "{".into(),
                Token::Close { .. } => "}".into(),
            })
            .collect()
    }

    #[test]
    fn words_quotes_comments_blocks() {
        assert_eq!(
            words("a b;# c d;\nhttp { k \"x y\" 'z;'; }"),
            ["a", "b", ";", "http", "{", "k", "x y", "z;", ";", "}"]
        );
    }

    #[test]
    fn hash_inside_a_word_is_not_a_comment() {
        assert_eq!(words("a b#c;"), ["a", "b#c", ";"]);
    }

    #[test]
    fn dollar_brace_stays_in_the_word() {
        assert_eq!(
            words("fastcgi_cache_key ${scheme}x$host;"),
            ["fastcgi_cache_key", "${scheme}x$host", ";"]
        );
        assert_eq!(words("location /a{ }"), ["location", "/a", "{", "}"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            words(r#"a "q\"x\\y\d" b\ c;"#),
            ["a", "q\"x\\y\\d", "b\\ c", ";"]
        );
    }

    #[test]
    fn unterminated_quote_names_the_opening_line() {
        let e = tokenize(b"a;\nb \"open;\n\n c;").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"), "{e:?}");
    }

    #[test]
    fn quote_must_be_followed_by_a_separator() {
        let e = tokenize(b"a \"b\"c;").unwrap_err();
        assert!(e.message.contains("after a quoted string"), "{e:?}");
    }

    #[test]
    fn lines_are_counted_inside_quotes() {
        let t = tokenize(b"a \"x\ny\";\nb;").unwrap();
        assert_eq!(t.last().unwrap().line(), 3);
    }
}
