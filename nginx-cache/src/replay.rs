//! A key found on disk turned back into a request (`cache-preload --replay-keys`).

use crate::{Error, KeyParts, KeyTemplate};

/// A request to re-send, recovered from one cache file's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayTarget {
    /// The full key, as found.
    pub key: String,
    /// Its parts.
    pub parts: KeyParts,
    /// The request target to send, byte for byte.
    pub target: String,
}

impl ReplayTarget {
    /// The absolute URL, with `scheme`/`host` from the key or else the given defaults.
    pub fn url(&self, default_scheme: &str, default_host: &str) -> String {
        let scheme = self.parts.scheme.as_deref().unwrap_or(default_scheme);
        let host = self.parts.host.as_deref().unwrap_or(default_host);
        format!("{scheme}://{host}{}", self.target)
    }
}

/// The request to re-send for one key: only `GET` entries, only targets that are plain ASCII
/// starting with `/` (anything else cannot be resent byte for byte).
pub fn replay_target(key: &str, template: &KeyTemplate) -> Result<ReplayTarget, Error> {
    let parts = template.split(key)?;
    if let Some(m) = parts.method.as_deref().filter(|m| *m != "GET") {
        return Err(Error::Split(format!(
            "{m} entry (only GET entries are warmed)"
        )));
    }
    let target = parts
        .target()
        .ok_or_else(|| Error::Split("the template has neither $request_uri nor $uri".into()))?;
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Split(
            "request target is not plain ASCII starting with /; it cannot be resent byte for byte"
                .into(),
        ));
    }
    Ok(ReplayTarget {
        key: key.to_owned(),
        parts,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_KEY;

    #[test]
    fn replay_rejects_raw_bytes_and_head() {
        let t = KeyTemplate::parse(DEFAULT_KEY).unwrap();
        assert!(replay_target("httpsGETexample.com/p/\u{6c34}/", &t).is_err());
        assert!(replay_target("httpsGETexample.com/a b", &t).is_err());
        assert_eq!(
            replay_target("httpsHEADexample.com/h/", &t)
                .unwrap_err()
                .to_string(),
            "HEAD entry (only GET entries are warmed)"
        );
        let r = replay_target("httpsGETexample.com/ok", &t).unwrap();
        assert_eq!(r.url("http", "x"), "https://example.com/ok");
    }
}
