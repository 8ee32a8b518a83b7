//! The root-owned /etc/safexec.conf: format, parser and trust check, shared by safexec, the purge service and cache-setup
#![forbid(unsafe_code)]
