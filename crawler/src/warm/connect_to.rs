//! `--connect-to HOST:PORT:ADDR:PORT`: warm each node behind a load balancer.
//!
//! The crawl itself goes to the public address (through the load balancer, as a visitor would);
//! every page it finds is then requested once more from each matching node, with the public
//! `Host` header so the node computes the site's cache key, as curl's option of the same name
//! does. `ADDR` must be an IP literal (`[...]` for IPv6): resolving it would reintroduce the DNS
//! that the option is meant to bypass. An empty `HOST` or `PORT` matches any host or port.
//! Repeating the option for the same `HOST:PORT` names several nodes. Node requests are plain
//! HTTP (nodes behind a TLS-terminating balancer usually are); an `https://` site gets a clear
//! per-node error instead of a certificate for the wrong name.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::cache_status::Counts;

/// One `--connect-to` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    /// Host it applies to (lower case), or any.
    pub host: Option<String>,
    /// Port it applies to, or any.
    pub port: Option<u16>,
    /// Where to connect instead.
    pub addr: SocketAddr,
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

fn port(s: &str, what: &str, arg: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("--connect-to {arg:?}: {what} port must be 1-65535"))
}

impl ConnectTo {
    /// Parses `HOST:PORT:ADDR:PORT`; `ADDR` is an IPv4 literal or a bracketed IPv6 literal.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let bad = || {
            format!("--connect-to {arg:?}: expected HOST:PORT:ADDR:PORT with ADDR an IP address")
        };
        let (host, rest) = if let Some(r) = arg.strip_prefix('[') {
            // A bracketed IPv6 literal as the public host.
            let end = r.find("]:").ok_or_else(bad)?;
            (r[..end].to_ascii_lowercase(), &r[end + 2..])
        } else {
            let (h, r) = arg.split_once(':').ok_or_else(bad)?;
            (h.to_ascii_lowercase(), r)
        };
        let (pub_port, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (addr, node_port) = if let Some(r) = rest.strip_prefix('[') {
            let (a, p) = r.split_once("]:").ok_or_else(bad)?;
            (a, p)
        } else {
            rest.rsplit_once(':').ok_or_else(bad)?
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!(
                "--connect-to {arg:?}: {addr:?} is not an IP address (names are not resolved here)"
            )
        })?;
        if rest.starts_with('[') != ip.is_ipv6() {
            return Err(bad());
        }
        Ok(ConnectTo {
            host: (!host.is_empty()).then_some(host),
            port: if pub_port.is_empty() {
                None
            } else {
                Some(port(pub_port, "public", arg)?)
            },
            addr: SocketAddr::new(ip, port(node_port, "node", arg)?),
        })
    }

    /// Whether this rule applies to a URL's host and port.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
            && self.port.is_none_or(|p| p == port)
    }
}

/// The nodes a URL must be warmed on: every matching rule's address, in the order given, or
/// none (connect normally) when no rule matches.
pub fn nodes_for(rules: &[ConnectTo], host: &str, port: u16) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for r in rules.iter().filter(|r| r.matches(host, port)) {
        if !out.contains(&r.addr) {
            out.push(r.addr);
        }
    }
    out
}

/// Per-node results for the final report.
#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    nodes: BTreeMap<SocketAddr, NodeStats>,
}

/// One node's results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Responses received.
    pub responses: u64,
    /// Transport errors.
    pub errors: u64,
    /// Cache statuses.
    pub cache: Counts,
}

impl NodeReport {
    /// The stats of `node`, created on first use.
    pub fn node(&mut self, node: SocketAddr) -> &mut NodeStats {
        self.nodes.entry(node).or_default()
    }

    /// Nodes in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &NodeStats)> {
        self.nodes.iter()
    }

    /// One line per node: `node 127.0.0.2:8080: 10 responses, 0 errors, cache: 10 HIT (…)`.
    pub fn lines(&self, header: Option<&str>) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(a, s)| {
                format!(
                    "node {a}: {} responses, {} errors, {}",
                    s.responses,
                    s.errors,
                    s.cache.summary_line(header)
                )
            })
            .collect()
    }

    /// The report as a JSON array of `{"node":…,"responses":…,"errors":…,"cache":{…}}`.
    pub fn to_json(&self) -> String {
        let items: Vec<String> = self
            .nodes
            .iter()
            .map(|(a, s)| {
                format!(
                    "{{\"node\":\"{a}\",\"responses\":{},\"errors\":{},\"cache\":{}}}",
                    s.responses,
                    s.errors,
                    s.cache.to_json()
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::super::cache_status::CacheStatus;
    use super::*;

    #[test]
    fn parses_forms() {
        let c = ConnectTo::parse("Example.com:443:127.0.0.2:8443").unwrap();
        assert_eq!(c.host.as_deref(), Some("example.com"));
        assert_eq!(c.port, Some(443));
        assert_eq!(c.addr, "127.0.0.2:8443".parse().unwrap());
        let c = ConnectTo::parse("::[::1]:80").unwrap();
        assert_eq!((c.host, c.port), (None, None));
        assert_eq!(c.addr, "[::1]:80".parse().unwrap());
        let c = ConnectTo::parse("[::1]:80:127.0.0.1:81").unwrap();
        assert_eq!(c.host.as_deref(), Some("::1"));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "example.com",
            "example.com:80:127.0.0.1",
            "example.com:80:node1.lan:80",
            "example.com:80:127.0.0.1:0",
            "example.com:80:127.0.0.1:70000",
            "example.com:x:127.0.0.1:80",
            "example.com:80:::1:80",
            "example.com:80:[127.0.0.1]:80",
            "example.com:80:[::1]80",
        ] {
            assert!(ConnectTo::parse(bad).is_err(), "{bad:?}");
        }
        let e = ConnectTo::parse("a:80:node1:80").unwrap_err();
        assert_eq!(e, "--connect-to \"a:80:node1:80\": \"node1\" is not an IP address (names are not resolved here)");
    }

    #[test]
    fn matching_and_nodes() {
        let rules: Vec<ConnectTo> = [
            "example.com:443:127.0.0.2:8443",
            "example.com:443:127.0.0.3:8443",
            ":80:127.0.0.4:8080",
            "example.com:443:127.0.0.2:8443",
        ]
        .iter()
        .map(|r| ConnectTo::parse(r).unwrap())
        .collect();
        assert_eq!(
            nodes_for(&rules, "EXAMPLE.com", 443),
            vec![
                "127.0.0.2:8443".parse().unwrap(),
                "127.0.0.3:8443".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(
            nodes_for(&rules, "other.org", 80),
            vec!["127.0.0.4:8080".parse::<SocketAddr>().unwrap()]
        );
        assert!(nodes_for(&rules, "other.org", 443).is_empty());
    }

    #[test]
    fn per_node_report() {
        let mut r = NodeReport::default();
        let a: SocketAddr = "127.0.0.3:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:80".parse().unwrap();
        r.node(a).responses += 2;
        r.node(a).cache.record(CacheStatus::Hit);
        r.node(a).cache.record(CacheStatus::Miss);
        r.node(b).errors += 1;
        assert_eq!(
            r.lines(Some("X-FastCGI-Cache")),
            [
                "node 127.0.0.2:80: 0 responses, 1 errors, cache: no responses (header X-FastCGI-Cache)",
                "node 127.0.0.3:80: 2 responses, 0 errors, cache: 1 HIT, 1 MISS (header X-FastCGI-Cache)",
            ]
        );
        assert!(r.to_json().starts_with(
            "[{\"node\":\"127.0.0.2:80\",\"responses\":0,\"errors\":1,\"cache\":{\"HIT\":0,"
        ));
    }
}
