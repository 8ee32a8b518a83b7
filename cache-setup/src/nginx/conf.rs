//! The directive tree of an nginx configuration, with every `include` spliced in where it
//! stands, read either from files on disk or from the dump `nginx -T` prints.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::lexer::{tokenize, Token};
use crate::error::{Error, Result};

/// Largest configuration file read (nginx's own are a few KiB).
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Most files one configuration may pull in, and the deepest block nesting.
const MAX_FILES: usize = 4096;
const MAX_DEPTH: usize = 64;

/// One directive: its name, arguments, where it was written and its block, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name (`server`, `fastcgi_cache_key`, ...).
    pub name: String,
    /// Its arguments, unescaped.
    pub args: Vec<String>,
    /// The file it was written in.
    pub file: Rc<Path>,
    /// 1-based line of its name.
    pub line: usize,
    /// The directives of its `{ }` block, if it has one (includes spliced in).
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// `file:line`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// The first argument, or "".
    pub fn arg0(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }
}

/// Where configuration files come from.
pub trait Source {
    /// The bytes of one file.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// The files a glob pattern names, sorted (nginx uses glob(3), which sorts).
    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>>;
}

/// Files on the local disk.
#[derive(Debug, Default)]
pub struct Disk;

impl Source for Disk {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        use std::io::Read;
        let f = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let md = f.metadata().map_err(|e| Error::io("read", path, e))?;
        if md.is_dir() {
            return Err(Error::Msg(format!(
                "cannot read {}: is a directory",
                path.display()
            )));
        }
        let mut buf = Vec::new();
        f.take(MAX_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if buf.len() as u64 > MAX_FILE {
            return Err(Error::Msg(format!(
                "{}: larger than {MAX_FILE} bytes",
                path.display()
            )));
        }
        Ok(buf)
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>> {
        let text = pattern.to_string_lossy();
        let paths = glob::glob(&text)
            .map_err(|e| Error::Msg(format!("bad include pattern {text:?}: {e}")))?;
        let mut out = Vec::new();
        for p in paths {
            let p =
                p.map_err(|e| Error::io("read", e.path(), std::io::Error::other(e.to_string())))?;
            if !p.is_dir() {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The files of an `nginx -T` dump: each follows a `# configuration file PATH:` line.
#[derive(Debug, Default)]
pub struct Dump {
    /// The first file of the dump: nginx's main configuration file.
    pub main: Option<PathBuf>,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Dump {
    /// Splits the dump into its files.
    pub fn parse(text: &[u8]) -> Result<Dump> {
        const MARK: &[u8] = b"# configuration file ";
        let mut dump = Dump::default();
        let mut current: Option<(PathBuf, Vec<u8>)> = None;
        for line in text.split_inclusive(|&b| b == b'\n') {
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            if let Some(rest) = bare.strip_prefix(MARK) {
                if let Some(name) = rest.strip_suffix(b":") {
                    if let Some((p, body)) = current.take() {
                        dump.files.insert(p, trim_dump_body(body));
                    }
                    let p = PathBuf::from(String::from_utf8_lossy(name).into_owned());
                    dump.main.get_or_insert_with(|| p.clone());
                    current = Some((p, Vec::new()));
                    continue;
                }
            }
            if let Some((_, body)) = current.as_mut() {
                body.extend_from_slice(line);
            }
        }
        if let Some((p, body)) = current.take() {
            dump.files.insert(p, trim_dump_body(body));
        }
        if dump.main.is_none() {
            return Err(Error::Msg(
                "the nginx -T output holds no \"# configuration file\" section".into(),
            ));
        }
        Ok(dump)
    }
}

/// nginx -T adds one empty line after each file.
fn trim_dump_body(mut body: Vec<u8>) -> Vec<u8> {
    if body.ends_with(b"\n\n") {
        body.pop();
    }
    body
}

impl Source for Dump {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| Error::Msg(format!("{} is not in the nginx -T output", path.display())))
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>> {
        let text = pattern.to_string_lossy();
        let pat = glob::Pattern::new(&text)
            .map_err(|e| Error::Msg(format!("bad include pattern {text:?}: {e}")))?;
        let opts = glob::MatchOptions {
            require_literal_separator: true,
            require_literal_leading_dot: true,
            ..Default::default()
        };
        Ok(self
            .files
            .keys()
            .filter(|p| pat.matches_path_with(p, opts))
            .cloned()
            .collect())
    }
}

/// A parsed configuration: the main file's directives with includes spliced in.
#[derive(Debug)]
pub struct Conf {
    /// The main configuration file.
    pub main: PathBuf,
    /// Top-level directives.
    pub directives: Vec<Directive>,
    /// Every file read, in the order first read.
    pub files: Vec<PathBuf>,
}

/// Reads `main` and everything it includes from `src`.
pub fn load(main: &Path, src: &dyn Source) -> Result<Conf> {
    let main = lexical_normal(main);
    // nginx resolves relative include paths against the directory of the main file.
    let prefix = main.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ld = Loader {
        src,
        prefix,
        stack: Vec::new(),
        files: Vec::new(),
        reads: 0,
    };
    let directives = ld.file(&main, None)?;
    Ok(Conf {
        main,
        directives,
        files: ld.files,
    })
}

/// Parses one file's text alone (no includes followed): the tokenizer and block structure.
pub fn parse_text(file: &Path, text: &[u8]) -> Result<Vec<Directive>> {
    let file: Rc<Path> = Rc::from(file);
    let tokens = tokenize(text).map_err(|e| Error::at(&file, e.line, e.message))?;
    let mut pos = 0;
    let d = block(&file, &tokens, &mut pos, 0, None)?;
    Ok(d)
}

struct Loader<'a> {
    src: &'a dyn Source,
    prefix: PathBuf,
    /// Files being read, outermost first (an include loop is a file already on it).
    stack: Vec<PathBuf>,
    files: Vec<PathBuf>,
    /// Files read so far, counting repeats (bounds a configuration that includes a file many
    /// times over).
    reads: usize,
}

impl Loader<'_> {
    fn file(&mut self, path: &Path, from: Option<(&Path, usize)>) -> Result<Vec<Directive>> {
        if let Some(i) = self.stack.iter().position(|p| p == path) {
            let (f, l) = from.unwrap_or((path, 0));
            let chain: Vec<String> = self.stack[i..]
                .iter()
                .chain(std::iter::once(&path.to_path_buf()))
                .map(|p| p.display().to_string())
                .collect();
            return Err(Error::at(
                f,
                l,
                format!("include loop: {}", chain.join(" -> ")),
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            let (f, l) = from.unwrap_or((path, 0));
            return Err(Error::at(f, l, "includes nested more than 64 deep"));
        }
        self.reads += 1;
        if self.reads > MAX_FILES {
            let (f, l) = from.unwrap_or((path, 0));
            return Err(Error::at(f, l, "more than 4096 included files"));
        }
        let text = match (self.src.read(path), from) {
            (Ok(t), _) => t,
            (Err(e), Some((f, l))) => return Err(Error::at(f, l, format!("include: {e}"))),
            (Err(e), None) => return Err(e),
        };
        if !self.files.iter().any(|p| p == path) {
            self.files.push(path.to_path_buf());
        }
        self.stack.push(path.to_path_buf());
        let parsed = parse_text(path, &text)?;
        let out = self.splice(parsed);
        self.stack.pop();
        out
    }

    /// Replaces each `include` by the directives of the files it names, at any depth.
    fn splice(&mut self, list: Vec<Directive>) -> Result<Vec<Directive>> {
        let mut out = Vec::with_capacity(list.len());
        for mut d in list {
            if d.name == "include" && d.block.is_none() {
                if d.args.len() != 1 {
                    return Err(Error::at(
                        &d.file,
                        d.line,
                        "include takes exactly one argument",
                    ));
                }
                let target = self.prefix.join(&d.args[0]);
                let target = lexical_normal(&target);
                let names = if d.args[0].contains(['*', '?', '[']) {
                    self.src
                        .glob(&target)
                        .map_err(|e| Error::at(&d.file, d.line, format!("include: {e}")))?
                } else {
                    vec![target]
                };
                for n in names {
                    out.extend(self.file(&n, Some((&d.file, d.line)))?);
                }
                continue;
            }
            if let Some(b) = d.block.take() {
                d.block = Some(self.splice(b)?);
            }
            out.push(d);
        }
        Ok(out)
    }
}

/// Reads directives until `}` (inside a block) or the end of the tokens (top level).
fn block(
    file: &Rc<Path>,
    t: &[Token],
    pos: &mut usize,
    depth: usize,
    opened_at: Option<usize>,
) -> Result<Vec<Directive>> {
    if depth > MAX_DEPTH {
        return Err(Error::at(
            file,
            t.get(*pos).map(Token::line).unwrap_or(0),
            "blocks nested more than 64 deep",
        ));
    }
    let mut out = Vec::new();
    loop {
        let Some(tok) = t.get(*pos) else {
            return match opened_at {
                Some(line) => Err(Error::at(
                    file,
                    line,
                    "unexpected end of file: the { opened here is never closed",
                )),
                None => Ok(out),
            };
        };
        match tok {
            Token::Close { line } => {
                *pos += 1;
                return match opened_at {
                    Some(_) => Ok(out),
                    None => Err(Error::at(file, *line, "unexpected \"}\"")),
                };
            }
            Token::Semicolon { line } => {
                return Err(Error::at(file, *line, "unexpected \";\""));
            }
            Token::Open { line } => {
                return Err(Error::at(file, *line, "unexpected \"{\""));
            }
            Token::Word { text, line, .. } => {
                let (name, line) = (text.clone(), *line);
                *pos += 1;
                let mut args = Vec::new();
                loop {
                    match t.get(*pos) {
                        Some(Token::Word { text, .. }) => {
                            args.push(text.clone());
                            *pos += 1;
                        }
                        Some(Token::Semicolon { .. }) => {
                            *pos += 1;
                            out.push(Directive {
                                name,
                                args,
                                file: file.clone(),
                                line,
                                block: None,
                            });
                            break;
                        }
                        Some(Token::Open { line: l }) => {
                            let l = *l;
                            *pos += 1;
                            let inner = block(file, t, pos, depth + 1, Some(l))?;
                            out.push(Directive {
                                name,
                                args,
                                file: file.clone(),
                                line,
                                block: Some(inner),
                            });
                            break;
                        }
                        Some(Token::Close { line: l }) => {
                            return Err(Error::at(
                                file,
                                *l,
                                format!("unexpected \"}}\": directive \"{name}\" is not terminated by \";\""),
                            ));
                        }
                        None => {
                            return Err(Error::at(
                                file,
                                line,
                                format!("unexpected end of file: directive \"{name}\" is not terminated by \";\""),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// Removes `.` and `..` components and doubled slashes without touching the file system (a
/// symlink is read as nginx reads it: by name).
pub fn lexical_normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An in-memory file set.
    struct Mem(HashMap<PathBuf, Vec<u8>>);

    impl Mem {
        fn new(files: &[(&str, &str)]) -> Mem {
            Mem(files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
                .collect())
        }
    }

    impl Source for Mem {
        fn read(&self, path: &Path) -> Result<Vec<u8>> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| Error::io("read", path, std::io::ErrorKind::NotFound.into()))
        }
        fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>> {
            let pat = glob::Pattern::new(&pattern.to_string_lossy()).unwrap();
            let mut v: Vec<PathBuf> = self
                .0
                .keys()
                .filter(|p| pat.matches_path(p))
                .cloned()
                .collect();
            v.sort();
            Ok(v)
        }
    }

    #[test]
    fn include_is_spliced_in_place_relative_to_the_main_dir() {
        let m = Mem::new(&[
            (
                "/e/nginx.conf",
                "user www-data;\nhttp {\n include conf.d/*.conf;\n server { listen 80; }\n}\n",
            ),
            ("/e/conf.d/b.conf", "b 2;"),
            ("/e/conf.d/a.conf", "a 1;"),
        ]);
        let c = load(Path::new("/e/nginx.conf"), &m).unwrap();
        let http = c.directives[1].block.as_ref().unwrap();
        let names: Vec<&str> = http.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "server"]);
        assert_eq!(&*http[0].file, Path::new("/e/conf.d/a.conf"));
        assert_eq!(c.files.len(), 3);
    }

    #[test]
    fn include_loop_is_an_error_naming_file_and_line() {
        let m = Mem::new(&[
            ("/e/nginx.conf", "http {\n include a.conf;\n}\n"),
            ("/e/a.conf", "# a\ninclude b.conf;\n"),
            ("/e/b.conf", "\n\ninclude a.conf;\n"),
        ]);
        let e = load(Path::new("/e/nginx.conf"), &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/e/b.conf:3: include loop: /e/a.conf -> /e/b.conf -> /e/a.conf"),
            "{e}"
        );
    }

    #[test]
    fn self_include_by_glob_is_a_loop() {
        let m = Mem::new(&[("/e/nginx.conf", "include /e/*.conf;\n")]);
        let e = load(Path::new("/e/nginx.conf"), &m)
            .unwrap_err()
            .to_string();
        assert!(e.contains("include loop"), "{e}");
    }

    #[test]
    fn missing_include_names_the_include_line() {
        let m = Mem::new(&[("/e/nginx.conf", "\ninclude nope.conf;\n")]);
        let e = load(Path::new("/e/nginx.conf"), &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/e/nginx.conf:2: include: cannot read /e/nope.conf"),
            "{e}"
        );
    }

    #[test]
    fn unterminated_quote_in_an_included_file() {
        let m = Mem::new(&[
            ("/e/nginx.conf", "include x.conf;\n"),
            ("/e/x.conf", "a b;\nfastcgi_cache_key \"$scheme$host;\n}\n"),
        ]);
        let e = load(Path::new("/e/nginx.conf"), &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/e/x.conf:2: unterminated quoted string"),
            "{e}"
        );
    }

    #[test]
    fn block_errors() {
        for (src, want) in [
            (
                "http {\n a;\n",
                "1: unexpected end of file: the { opened here",
            ),
            ("a;\n}\n", "2: unexpected \"}\""),
            ("a b\n", "1: unexpected end of file: directive \"a\""),
            ("http { a }", "unexpected \"}\": directive \"a\""),
            (";", "1: unexpected \";\""),
        ] {
            let e = parse_text(Path::new("f"), src.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn nginx_t_dump_is_split_into_files() {
        let dump = b"nginx: the configuration file /e/n.conf syntax is ok\n# configuration file /e/n.conf:\nhttp { include /e/x/*.conf; }\n\n# configuration file /e/x/a.conf:\nserver { listen 81; }\n\n";
        let d = Dump::parse(dump).unwrap();
        assert_eq!(d.main.as_deref(), Some(Path::new("/e/n.conf")));
        let c = load(Path::new("/e/n.conf"), &d).unwrap();
        let http = c.directives[0].block.as_ref().unwrap();
        assert_eq!(http[0].name, "server");
        assert_eq!(http[0].line, 1);
    }
}
