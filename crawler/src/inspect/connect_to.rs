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
use std::net::SocketAddr;

use super::cache_status::Counts;
use crate::config::ConnectTo;

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
}

/// A JSON array of `{"node":…,"responses":…,"errors":…,"cache":{…}}`, in address order.
impl serde::Serialize for NodeReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Node<'a> {
            node: String,
            responses: u64,
            errors: u64,
            cache: &'a Counts,
        }
        s.collect_seq(self.nodes.iter().map(|(a, n)| Node {
            node: a.to_string(),
            responses: n.responses,
            errors: n.errors,
            cache: &n.cache,
        }))
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
        assert!(serde_json::to_string(&r).unwrap().starts_with(
            "[{\"node\":\"127.0.0.2:80\",\"responses\":0,\"errors\":1,\"cache\":{\"HIT\":0,"
        ));
    }
}
