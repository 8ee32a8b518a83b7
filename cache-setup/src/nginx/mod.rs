//! nginx's configuration: tokens, the directive tree with includes, and what it means for
//! caching.

pub mod conf;
pub mod lexer;
pub mod model;
