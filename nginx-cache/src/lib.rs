//! nginx cache knowledge: key templates, MD5 paths, levels, the on-disk header and KEY line, Vary variants and the key index
#![forbid(unsafe_code)]
