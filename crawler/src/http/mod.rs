//! Everything that touches the network: the resolver, the HTTP client, fetching with redirects,
//! retries and the `Retry-After` pause, body decoding, and single probe requests. The only layer
//! that uses `reqwest`.

pub mod body;
pub mod client;
pub mod dns;
pub mod fetch;
pub mod probe;
pub mod rewarm;
