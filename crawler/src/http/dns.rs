//! Host names to addresses without NSS, on `hickory-resolver`.
//!
//! The packaged `cache-preload` is one static binary for glibc and musl systems alike. A static
//! glibc `getaddrinfo` would `dlopen` the NSS modules of the glibc it was linked against, which an
//! Alpine host does not have, so names are resolved in-process: a literal address is itself, the
//! `localhost` names are loopback (RFC 6761 §6.3), then `/etc/hosts`, then the nameservers of
//! `/etc/resolv.conf` with its `search` list, `ndots`, `timeout` and `attempts` (as the C library
//! does with `hosts: files dns`). The DNS work (UDP, TCP on truncation, caching) is hickory's.
//!
//! A and AAAA are asked in parallel and each answer stands on its own: a nameserver that drops
//! or refuses AAAA queries must not make an IPv4-only site unresolvable. Once one family has
//! answered, the other gets [`FAMILY_GRACE`] more (RFC 8305's "resolution delay"), so a dropped
//! AAAA query costs that, not the nameserver timeout.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::config::ResolveHosts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, TokioResolver};

/// How long the second address family may lag behind the first answer.
pub const FAMILY_GRACE: Duration = Duration::from_millis(150);

/// Where the resolver reads its configuration (the system files, or test fixtures).
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// The hosts file.
    pub hosts: PathBuf,
    /// The resolver configuration.
    pub resolv_conf: PathBuf,
    /// Port the nameservers listen on (53; tests use their own).
    pub port: u16,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            hosts: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            port: 53,
        }
    }
}

/// A resolver; cheap to clone (clones share hickory's cache). Files are read on first use,
/// inside the async runtime.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    cfg: DnsConfig,
    inner: Arc<OnceLock<Result<Loaded, String>>>,
}

struct Loaded {
    hosts: Hosts,
    dns: TokioResolver,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaded")
    }
}

impl Resolver {
    /// A resolver reading `cfg`'s files (tests point it at their own).
    #[cfg(test)]
    pub fn new(cfg: DnsConfig) -> Self {
        Resolver {
            cfg,
            inner: Arc::default(),
        }
    }

    fn load(&self) -> Result<&Loaded, String> {
        self.inner
            .get_or_init(|| load(&self.cfg))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Addresses for `host` from the literal or the `localhost` rule, without reading a file.
    pub fn lookup_fixed(host: &str) -> Option<Vec<IpAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        (name == "localhost" || name.ends_with(".localhost")).then(|| {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        })
    }

    /// All addresses of `host` (IPv4 first), or a one-line reason.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(found) = Self::lookup_fixed(host) {
            return Ok(found);
        }
        let name = Name::from_utf8(host)
            .ok()
            .filter(|n| !host.is_empty() && n.num_labels() > 0 && !host.contains(".."))
            .ok_or_else(|| format!("invalid host name '{host}'"))?;
        let loaded = self.load()?;
        let from_file = from_hosts(&loaded.hosts, &name);
        if !from_file.is_empty() {
            return Ok(from_file);
        }
        let v4 = family(&loaded.dns, name.clone(), RecordType::A);
        let v6 = family(&loaded.dns, name, RecordType::AAAA);
        tokio::pin!(v4, v6);
        // Whichever family answers first waits at most FAMILY_GRACE for the other.
        let (a, aaaa) = tokio::select! {
            a = &mut v4 => {
                let aaaa = if a.as_ref().is_ok_and(|v| !v.is_empty()) {
                    tokio::time::timeout(FAMILY_GRACE, &mut v6).await.unwrap_or(Ok(Vec::new()))
                } else {
                    v6.await
                };
                (a, aaaa)
            }
            aaaa = &mut v6 => {
                let a = if aaaa.as_ref().is_ok_and(|v| !v.is_empty()) {
                    tokio::time::timeout(FAMILY_GRACE, &mut v4).await.unwrap_or(Ok(Vec::new()))
                } else {
                    v4.await
                };
                (a, aaaa)
            }
        };
        let mut out = Vec::new();
        let mut err = None;
        for r in [a, aaaa] {
            match r {
                Ok(ips) => out.extend(ips),
                Err(e) => err = err.or(Some(e)),
            }
        }
        if out.is_empty() {
            return Err(match err {
                Some(e) => format!("{host}: {e}"),
                None => format!("{host}: no address found"),
            });
        }
        Ok(out)
    }
}

/// One family's addresses; "no records" (NXDOMAIN, NODATA) is an empty list, not an error.
async fn family(dns: &TokioResolver, name: Name, rt: RecordType) -> Result<Vec<IpAddr>, String> {
    match dns.lookup(name, rt).await {
        Ok(l) => Ok(l
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(one_line(&e.to_string())),
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// The hosts file's addresses for `name` (as typed, or with the trailing dot), IPv4 first.
fn from_hosts(hosts: &Hosts, name: &Name) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for rt in [RecordType::A, RecordType::AAAA] {
        if let Some(l) = hosts.lookup_static_host(&Query::query(name.clone(), rt)) {
            out.extend(l.answers().iter().filter_map(|r| r.data.ip_addr()));
        }
    }
    out
}

/// Reads the two files and builds hickory's resolver. A missing hosts file is empty; a missing
/// resolv.conf, or one without nameservers, means the local nameserver, as in every libc.
fn load(cfg: &DnsConfig) -> Result<Loaded, String> {
    let mut hosts = Hosts::default();
    if let Ok(f) = File::open(&cfg.hosts) {
        hosts
            .read_hosts_conf(f)
            .map_err(|e| format!("cannot read {}: {e}", cfg.hosts.display()))?;
    }
    let text = std::fs::read(&cfg.resolv_conf).unwrap_or_default();
    let parsed = hickory_resolver::system_conf::parse_resolv_conf(&text).or_else(|_| {
        let mut t = text.clone();
        t.extend_from_slice(b"\nnameserver 127.0.0.1\n");
        hickory_resolver::system_conf::parse_resolv_conf(&t)
    });
    let (config, mut opts) = parsed.map_err(|e| {
        format!(
            "cannot use {}: {}",
            cfg.resolv_conf.display(),
            one_line(&e.to_string())
        )
    })?;
    // The hosts file is consulted above, once, for the name as typed.
    opts.use_hosts_file = ResolveHosts::Never;
    let (domain, search, mut servers) = (
        config.domain().cloned(),
        config.search().to_vec(),
        config.name_servers().to_vec(),
    );
    for s in &mut servers {
        for c in &mut s.connections {
            c.port = cfg.port;
        }
    }
    let config = hickory_resolver::config::ResolverConfig::from_parts(domain, search, servers);
    let dns = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| format!("cannot set up DNS: {}", one_line(&e.to_string())))?;
    Ok(Loaded { hosts, dns })
}

/// The resolver reqwest calls for every new connection.
pub(crate) struct ReqwestResolver {
    /// Where names are looked up.
    pub resolver: Resolver,
    /// `--dns-timeout`.
    pub timeout: Duration,
    /// `--prefer-family=IPv4`: IPv4 first (it is first anyway unless the hosts file says else).
    pub prefer_ipv4: bool,
}

impl reqwest::dns::Resolve for ReqwestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let (resolver, timeout, prefer_ipv4) =
            (self.resolver.clone(), self.timeout, self.prefer_ipv4);
        Box::pin(async move {
            let mut ips = tokio::time::timeout(timeout, resolver.lookup(&host))
                .await
                .map_err(|_| format!("DNS lookup of {host} timed out"))??;
            if prefer_ipv4 {
                ips.sort_by_key(|a| !a.is_ipv4());
            }
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
    use hickory_resolver::proto::rr::{rdata, Record};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UdpSocket;

    #[test]
    fn local_names_never_touch_the_network() {
        assert_eq!(
            Resolver::lookup_fixed("[::1]"),
            Some(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])
        );
        assert_eq!(
            Resolver::lookup_fixed("192.0.2.1"),
            Some(vec![IpAddr::from([192, 0, 2, 1])])
        );
        assert_eq!(
            Resolver::lookup_fixed("LocalHost.").map(|v| v.len()),
            Some(2)
        );
        assert_eq!(
            Resolver::lookup_fixed("a.localhost").map(|v| v.len()),
            Some(2)
        );
        assert_eq!(Resolver::lookup_fixed("site.test"), None);
    }

    /// A loopback nameserver (UDP and TCP on one port):
    /// - `site.test` has an A record and a truncated AAAA answer over UDP, served whole over TCP;
    /// - `v4only.test` has an A record, and AAAA queries for it are silently dropped;
    /// - `short.lan.test` exists (reached through the search list), the rest is NXDOMAIN.
    async fn fake_nameserver() -> u16 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        fn reply(q: &[u8], tcp: bool) -> Option<Vec<u8>> {
            let req = Message::from_vec(q).ok()?;
            let query = req.queries.first()?.clone();
            let name = query.name().to_ascii().trim_end_matches('.').to_owned();
            let qt = query.query_type();
            let mut m = Message::response(req.metadata.id, req.metadata.op_code);
            m.metadata.message_type = MessageType::Response;
            m.metadata.recursion_desired = true;
            m.metadata.recursion_available = true;
            m.add_query(query.clone());
            let rec = |d: RData| Record::from_rdata(query.name().clone(), 60, d);
            match (name.as_str(), qt, tcp) {
                ("site.test", RecordType::A, _) => {
                    m.add_answer(rec(RData::A(rdata::A::new(192, 0, 2, 10))));
                }
                ("site.test", RecordType::AAAA, false) => m.metadata.truncation = true,
                ("site.test", RecordType::AAAA, true) => {
                    m.add_answer(rec(RData::AAAA(rdata::AAAA(
                        "2001:db8::1".parse().unwrap(),
                    ))));
                }
                ("v4only.test", RecordType::A, _) => {
                    m.add_answer(rec(RData::A(rdata::A::new(192, 0, 2, 20))));
                }
                ("v4only.test", RecordType::AAAA, _) => return None, // dropped
                ("short.lan.test", RecordType::A, _) => {
                    m.add_answer(rec(RData::A(rdata::A::new(192, 0, 2, 11))));
                }
                ("short.lan.test", _, _) => {}
                _ => m.metadata.response_code = ResponseCode::NXDomain,
            }
            m.to_vec().ok()
        }
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await.unwrap();
                if let Some(r) = reply(&buf[..n], false) {
                    // A forged answer first: a wrong id must be ignored, not believed.
                    let mut forged = r.clone();
                    forged[0] ^= 0xff;
                    udp.send_to(&forged, from).await.unwrap();
                    udp.send_to(&r, from).await.unwrap();
                }
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                tokio::spawn(async move {
                    while let Ok(n) = s.read_u16().await {
                        let mut q = vec![0u8; usize::from(n)];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        if let Some(r) = reply(&q, true) {
                            let _ = s.write_all(&(r.len() as u16).to_be_bytes()).await;
                            let _ = s.write_all(&r).await;
                        }
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn asks_the_configured_nameserver() {
        let port = fake_nameserver().await;
        let dir = std::env::temp_dir().join(format!("cp-dns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), "192.0.2.99 pinned.test\n").unwrap();
        std::fs::write(
            dir.join("resolv.conf"),
            "nameserver 127.0.0.1\nsearch lan.test\noptions timeout:2 attempts:1\n",
        )
        .unwrap();
        let r = Resolver::new(DnsConfig {
            hosts: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
            port,
        });
        assert_eq!(
            r.lookup("site.test").await.unwrap(),
            vec![
                IpAddr::from([192, 0, 2, 10]),
                "2001:db8::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(
            r.lookup("short").await.unwrap(),
            vec![IpAddr::from([192, 0, 2, 11])]
        );
        assert_eq!(
            r.lookup("pinned.test").await.unwrap(),
            vec![IpAddr::from([192, 0, 2, 99])]
        );
        let e = r.lookup("absent.test").await.unwrap_err();
        assert!(e.contains("absent.test"), "{e}");
        assert!(r
            .lookup("a..b")
            .await
            .unwrap_err()
            .contains("invalid host name"));
        // The nameserver drops every AAAA query for this name: the A answer still counts, and
        // promptly (the grace period, not the 2 s timeout).
        let t = Instant::now();
        assert_eq!(
            r.lookup("v4only.test").await.unwrap(),
            vec![IpAddr::from([192, 0, 2, 20])]
        );
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn missing_files_mean_the_local_nameserver() {
        let r = Resolver::new(DnsConfig {
            hosts: "/nonexistent/hosts".into(),
            resolv_conf: "/nonexistent/resolv.conf".into(),
            port: 1,
        });
        // No file is no error: the hosts table is empty and the nameserver is 127.0.0.1.
        assert!(r.load().is_ok());
        assert_eq!(r.lookup("localhost").await.unwrap().len(), 2);
    }
}
