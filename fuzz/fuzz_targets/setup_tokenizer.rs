//! cache-setup's readers of untrusted configuration text: the nginx tokenizer and block
//! parser, the caching analysis of the tree, the `nginx -T` dump splitter with include
//! resolution inside the dump (globs, loops), and the PHP-FPM ini parser. None may panic;
//! token lines never go backwards.
#![no_main]

use std::path::Path;

use cache_setup::nginx::{conf, lexer, model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tokens) = lexer::tokenize(data) {
        let lines: Vec<usize> = tokens.iter().map(lexer::Token::line).collect();
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "lines go backwards");
    }
    if let Ok(tree) = conf::parse_text(Path::new("/fuzz/nginx.conf"), data) {
        let _ = model::analyze(&tree);
    }
    if let Ok(dump) = conf::Dump::parse(data) {
        if let Some(main) = dump.main.clone() {
            if let Ok(c) = conf::load(&main, &dump) {
                let _ = model::analyze(&c.directives);
            }
        }
    }
    let _ = cache_setup::fpm::parse(Path::new("/fuzz/pool.conf"), data);
});
