//! What to crawl, without any I/O: request-target normalization, the bounded frontier, link
//! extraction from HTML, sitemap and robots.txt parsing, and the host scope.

pub mod frontier;
pub mod links;
pub mod norm;
pub mod scope;
pub mod sitemap;
