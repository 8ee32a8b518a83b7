//! `/etc/safexec.conf`: the format, parser and trust check live in the `safexec-conf` crate, which
//! the purge service and `cache-setup` share; safexec calls [`load`] once, as root, before any
//! privilege change.
pub use safexec_conf::*;
