//! Which hosts a crawl may visit.

use std::collections::HashSet;

use url::Url;

use crate::config::Dialect;

/// Which hosts the crawl may visit.
#[derive(Debug, Default)]
pub struct HostFilter {
    /// The dialect decides the rule (wget: start hosts and `--domains` as a filter).
    pub dialect: Option<Dialect>,
    /// Start hosts (and hosts a start URL redirected to).
    pub start_hosts: HashSet<String>,
    /// `--domains` entries.
    pub domains: Vec<String>,
}

fn twin(host: &str) -> String {
    match host.strip_prefix("www.") {
        Some(bare) => bare.to_string(),
        None => format!("www.{host}"),
    }
}

impl HostFilter {
    /// True if links to `url` may be followed.
    pub fn allows(&self, url: &Url) -> bool {
        if url.scheme() != "http" && url.scheme() != "https" {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        match self.dialect {
            Some(Dialect::Wget) => {
                // wget without --span-hosts: the start hosts only, and
                // --domains as a second filter (suffix match).
                self.start_hosts.contains(&host)
                    && (self.domains.is_empty()
                        || self
                            .domains
                            .iter()
                            .any(|d| host == *d || host.ends_with(&format!(".{d}"))))
            }
            _ => {
                self.start_hosts.contains(&host)
                    || self.domains.iter().any(|d| host == *d || host == twin(d))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_filter_native_and_wget() {
        let mut f = HostFilter {
            dialect: Some(Dialect::Native),
            domains: vec!["b.com".into()],
            ..HostFilter::default()
        };
        f.start_hosts.insert("a.com".into());
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(f.allows(&u("https://a.com/x")));
        assert!(f.allows(&u("http://A.com/x")));
        assert!(!f.allows(&u("https://www.a.com/x")));
        assert!(f.allows(&u("https://www.b.com/")));
        assert!(f.allows(&u("https://b.com/")));
        assert!(!f.allows(&u("https://c.com/")));
        assert!(!f.allows(&u("ftp://a.com/")));
        f.dialect = Some(Dialect::Wget);
        f.domains = vec!["a.com".into()];
        assert!(f.allows(&u("https://a.com/x")));
        assert!(!f.allows(&u("https://b.com/")));
        f.domains = vec!["z.com".into()];
        assert!(!f.allows(&u("https://a.com/x")));
    }
}
