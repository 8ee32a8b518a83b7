//! Host names to addresses without NSS: `/etc/hosts`, then the nameservers of `/etc/resolv.conf`.
//!
//! The packaged `cache-preload` is one static binary for glibc and musl systems alike. A static
//! glibc `getaddrinfo` would `dlopen` the NSS modules of the glibc it was linked against, which
//! an Alpine host does not have, so the crawler reads the two files every resolver honours and
//! asks the configured nameservers itself: A and AAAA over UDP, TCP when an answer is truncated.
//! Names are looked up as the C library would with `hosts: files dns`, including the `search`
//! list and `ndots`; `localhost` always means loopback (RFC 6761 §6.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The record types the crawler asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qtype {
    A = 1,
    Aaaa = 28,
}

/// What a nameserver said about one name and type.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The addresses of the type asked for, in answer order.
    pub addrs: Vec<IpAddr>,
    /// The name does not exist (NXDOMAIN): try the next search candidate.
    pub nxdomain: bool,
    /// The answer did not fit in a UDP datagram; ask again over TCP.
    pub truncated: bool,
}

/// Where the resolver reads its configuration (the system files, or test fixtures).
#[derive(Clone, Debug)]
pub struct Resolver {
    hosts: PathBuf,
    resolv_conf: PathBuf,
    /// Port the nameservers listen on (53; tests use their own).
    port: u16,
}

/// The parts of `resolv.conf` the resolver honours.
#[derive(Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most three nameservers, in file order (127.0.0.1 when none is listed, as in glibc).
    pub nameservers: Vec<IpAddr>,
    /// The `search` list (or the `domain`), in order.
    pub search: Vec<String>,
    /// `options ndots:n` (default 1).
    pub ndots: usize,
    /// `options timeout:n`: seconds per try (default 5).
    pub timeout: Duration,
    /// `options attempts:n`: rounds over the nameservers (default 2).
    pub attempts: usize,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new("/etc/hosts", "/etc/resolv.conf", 53)
    }
}

impl Resolver {
    /// A resolver reading `hosts` and `resolv_conf`, asking nameservers on `port`.
    pub fn new(hosts: impl Into<PathBuf>, resolv_conf: impl Into<PathBuf>, port: u16) -> Self {
        Resolver {
            hosts: hosts.into(),
            resolv_conf: resolv_conf.into(),
            port,
        }
    }

    /// Addresses for `host` from the literal, the hosts file or the `localhost` rule, without any
    /// network traffic; `None` when only DNS could tell.
    pub fn lookup_local(&self, host: &str) -> Option<Vec<IpAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(text) = std::fs::read_to_string(&self.hosts) {
            let found = hosts_lookup(&text, &name);
            if !found.is_empty() {
                return Some(found);
            }
        }
        (name == "localhost" || name.ends_with(".localhost")).then(|| {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        })
    }

    /// All addresses of `host` (IPv4 first), or a one-line reason.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(found) = self.lookup_local(host) {
            return Ok(found);
        }
        let conf = match std::fs::read_to_string(&self.resolv_conf) {
            Ok(text) => parse_resolv_conf(&text),
            // No resolv.conf means the local nameserver, as in every libc.
            Err(_) => parse_resolv_conf(""),
        };
        if host.is_empty() || encode_name(host).is_none() {
            return Err(format!("invalid host name '{host}'"));
        }
        let mut last = format!("{host}: no address found");
        for name in candidates(host, &conf) {
            match self.query_all(&name, &conf).await {
                Ok(addrs) if !addrs.is_empty() => return Ok(addrs),
                Ok(_) => last = format!("{host}: no address found"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A and AAAA for one fully qualified name: the first nameserver that answers decides.
    async fn query_all(&self, name: &str, conf: &ResolvConf) -> Result<Vec<IpAddr>, String> {
        let mut last = format!("{name}: no nameserver answered");
        for _ in 0..conf.attempts.max(1) {
            for &ns in &conf.nameservers {
                let server = SocketAddr::new(ns, self.port);
                let mut addrs = Vec::new();
                let mut answered = true;
                for qtype in [Qtype::A, Qtype::Aaaa] {
                    match ask(server, name, qtype, conf.timeout).await {
                        Ok(a) => addrs.extend(a.addrs),
                        Err(e) => {
                            answered = false;
                            last = format!("{name}: {e} (nameserver {ns})");
                            break;
                        }
                    }
                }
                if answered {
                    return Ok(addrs);
                }
            }
        }
        Err(last)
    }
}

/// One query in flight: what was asked, so the answer can be checked against it.
struct Question<'a> {
    id: u16,
    name: &'a str,
    qtype: Qtype,
    /// The query message, as sent.
    wire: Vec<u8>,
}

impl<'a> Question<'a> {
    fn new(name: &'a str, qtype: Qtype) -> Option<Self> {
        let id = query_id();
        let wire = build_query(id, name, qtype)?;
        Some(Question {
            id,
            name,
            qtype,
            wire,
        })
    }

    fn answer(&self, msg: &[u8]) -> Result<Answer, String> {
        parse_answer(msg, self.id, self.name, self.qtype)
    }
}

/// One question to one server: UDP, then TCP if the answer was truncated.
async fn ask(
    server: SocketAddr,
    name: &str,
    qtype: Qtype,
    timeout: Duration,
) -> Result<Answer, String> {
    let q = Question::new(name, qtype).ok_or("invalid host name")?;
    let answer = tokio::time::timeout(timeout, ask_udp(server, &q))
        .await
        .map_err(|_| "DNS query timed out".to_string())??;
    if !answer.truncated {
        return Ok(answer);
    }
    tokio::time::timeout(timeout, ask_tcp(server, &q))
        .await
        .map_err(|_| "DNS query over TCP timed out".to_string())?
}

async fn ask_udp(server: SocketAddr, q: &Question<'_>) -> Result<Answer, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    // A connected socket only receives datagrams from the server asked.
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(&q.wire).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        // A stray or forged datagram (wrong id, wrong question) is ignored, not believed.
        if let Ok(a) = q.answer(buf.get(..n).unwrap_or_default()) {
            return Ok(a);
        }
    }
}

async fn ask_tcp(server: SocketAddr, q: &Question<'_>) -> Result<Answer, String> {
    let mut s = TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(q.wire.len()).map_err(|_| "query too long")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&q.wire);
    s.write_all(&framed).await.map_err(|e| e.to_string())?;
    let n = usize::from(s.read_u16().await.map_err(|e| e.to_string())?);
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    q.answer(&buf)
}

/// An unpredictable query id: the transaction id is half of a stub resolver's defence against
/// forged answers (the kernel's random source port is the other half).
fn query_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() & 0xffff) as u16
}

/// The names to try for `host`, in order (resolv.conf(5) `search` and `ndots`).
fn candidates(host: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(abs) = host.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let searched = conf.search.iter().map(|d| format!("{host}.{d}"));
    if host.matches('.').count() >= conf.ndots {
        std::iter::once(host.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(host.to_string())).collect()
    }
}

/// The addresses the hosts file gives `name` (lower-case, no trailing dot), in file order.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_ascii_whitespace();
        let Some(Ok(ip)) = fields
            .next()
            .map(|a| a.split('%').next().unwrap_or(a).parse::<IpAddr>())
        else {
            continue;
        };
        if fields.any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(name)) && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// Reads the directives of resolv.conf(5) the resolver uses; unknown lines are ignored, as libc
/// ignores them.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf {
        nameservers: Vec::new(),
        search: Vec::new(),
        ndots: 1,
        timeout: Duration::from_secs(5),
        attempts: 2,
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("nameserver") => {
                let ip = words
                    .next()
                    .and_then(|a| a.split('%').next())
                    .and_then(|a| a.parse::<IpAddr>().ok());
                if let (Some(ip), true) = (ip, conf.nameservers.len() < 3) {
                    conf.nameservers.push(ip);
                }
            }
            // The last of `search` and `domain` wins, as in glibc.
            Some("search") => {
                conf.search = words.map(|d| d.trim_end_matches('.').to_string()).collect()
            }
            Some("domain") => conf.search = words.take(1).map(str::to_string).collect(),
            Some("options") => {
                for opt in words {
                    let (key, val) = opt.split_once(':').unwrap_or((opt, ""));
                    let n = val.parse::<u64>().ok();
                    match (key, n) {
                        ("ndots", Some(n)) => conf.ndots = n.min(15) as usize,
                        ("timeout", Some(n)) => conf.timeout = Duration::from_secs(n.clamp(1, 30)),
                        ("attempts", Some(n)) => conf.attempts = n.clamp(1, 5) as usize,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if conf.nameservers.is_empty() {
        conf.nameservers.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    conf
}

/// `name` in DNS wire form, or `None` if it is not a valid host name (empty label, label over
/// 63 bytes, name over 255 bytes).
fn encode_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..=63).contains(&l))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

fn build_query(id: u16, name: &str, qtype: Qtype) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    // Standard query, recursion desired; one question, no other sections.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&encode_name(name)?);
    q.extend_from_slice(&(qtype as u16).to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

/// A bounds-checked reader over a DNS message.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("short answer")?;
        let s = self.msg.get(self.pos..end).ok_or("short answer")?;
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a possibly compressed name at the cursor, lower-cased and dotted.
    fn name(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut pos = self.pos;
        let mut jumped = false;
        // Every pointer must go strictly backwards, so a loop is impossible; the hop count
        // bounds the work anyway.
        for _ in 0..128 {
            let len = *self.msg.get(pos).ok_or("short answer")?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    return Ok(out);
                }
                0x00 => {
                    let label = self
                        .msg
                        .get(pos + 1..pos + 1 + usize::from(len))
                        .ok_or("short answer")?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.extend(label.iter().map(|&c| char::from(c.to_ascii_lowercase())));
                    if out.len() > 255 {
                        return Err("name too long".into());
                    }
                    pos += 1 + usize::from(len);
                }
                0xc0 => {
                    let lo = *self.msg.get(pos + 1).ok_or("short answer")?;
                    let target = usize::from(len & 0x3f) << 8 | usize::from(lo);
                    if target >= pos {
                        return Err("bad name pointer".into());
                    }
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    pos = target;
                }
                _ => return Err("bad label type".into()),
            }
        }
        Err("name too long".into())
    }
}

/// Checks that `msg` answers query `id` for `name`/`qtype` and extracts its addresses.
fn parse_answer(msg: &[u8], id: u16, name: &str, qtype: Qtype) -> Result<Answer, String> {
    let mut r = Reader { msg, pos: 0 };
    if r.u16()? != id {
        return Err("answer to another query".into());
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 || flags & 0x7800 != 0 {
        return Err("not an answer to a standard query".into());
    }
    let (qd, an) = (r.u16()?, r.u16()?);
    r.take(4)?;
    if qd != 1 {
        return Err("answer with a different question".into());
    }
    let qname = r.name()?;
    let (qt, qc) = (r.u16()?, r.u16()?);
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    if qname != want || qt != qtype as u16 || qc != 1 {
        return Err("answer with a different question".into());
    }
    let rcode = flags & 0x000f;
    let truncated = flags & 0x0200 != 0;
    match rcode {
        0 => {}
        3 => {
            return Ok(Answer {
                addrs: Vec::new(),
                nxdomain: true,
                truncated,
            })
        }
        2 => return Err("nameserver failure (SERVFAIL)".into()),
        5 => return Err("query refused (REFUSED)".into()),
        n => return Err(format!("nameserver error (rcode {n})")),
    }
    let mut addrs = Vec::new();
    for _ in 0..an {
        if truncated && r.pos >= msg.len() {
            break;
        }
        r.name()?;
        let (t, c) = (r.u16()?, r.u16()?);
        r.take(4)?;
        let len = usize::from(r.u16()?);
        let data = r.take(len)?;
        if c != 1 || t != qtype as u16 {
            continue;
        }
        let ip = match (qtype, <[u8; 4]>::try_from(data), <[u8; 16]>::try_from(data)) {
            (Qtype::A, Ok(v4), _) => IpAddr::from(v4),
            (Qtype::Aaaa, _, Ok(v6)) => IpAddr::from(v6),
            _ => return Err("malformed address record".into()),
        };
        addrs.push(ip);
    }
    Ok(Answer {
        addrs,
        nxdomain: false,
        truncated,
    })
}

/// Fuzzing entry point: parses `msg` as the answer to an A query for `example.com` with id 0.
#[doc(hidden)]
pub fn fuzz_parse_answer(msg: &[u8]) {
    let _ = parse_answer(msg, 0, "example.com", Qtype::A);
    let _ = parse_answer(msg, 0, "example.com", Qtype::Aaaa);
}

/// The reqwest adapter: a [`Resolver`] bounded by the run's DNS timeout.
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

    fn answer(id: u16, flags: u16, name: &str, qtype: Qtype, records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&(records.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&encode_name(name).unwrap());
        m.extend_from_slice(&(qtype as u16).to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        for (t, data) in records {
            m.extend_from_slice(&[0xc0, 12]); // pointer to the question name
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
        m
    }

    #[test]
    fn query_wire_form() {
        let q = build_query(0x1234, "a.example", Qtype::Aaaa).unwrap();
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x00\x00\x1c\x00\x01"
        );
        assert!(build_query(1, "a..b", Qtype::A).is_none());
        assert!(build_query(1, &"x".repeat(64), Qtype::A).is_none());
        assert!(build_query(1, &["abc"; 70].join("."), Qtype::A).is_none());
    }

    #[test]
    fn answers_are_checked_and_read() {
        let cname: &[u8] = b"\x03www\xc0\x0c";
        let m = answer(
            7,
            0x8180,
            "example.com",
            Qtype::A,
            &[(5, cname), (1, &[192, 0, 2, 1]), (1, &[192, 0, 2, 2])],
        );
        let a = parse_answer(&m, 7, "Example.COM.", Qtype::A).unwrap();
        assert_eq!(
            a.addrs,
            vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])]
        );
        assert!(!a.truncated && !a.nxdomain);
        assert!(
            parse_answer(&m, 8, "example.com", Qtype::A).is_err(),
            "wrong id"
        );
        assert!(
            parse_answer(&m, 7, "example.org", Qtype::A).is_err(),
            "wrong name"
        );
        assert!(
            parse_answer(&m, 7, "example.com", Qtype::Aaaa).is_err(),
            "wrong type"
        );
        for cut in 0..m.len() {
            let _ = parse_answer(&m[..cut], 7, "example.com", Qtype::A);
        }
        let nx = answer(7, 0x8183, "example.com", Qtype::A, &[]);
        assert!(
            parse_answer(&nx, 7, "example.com", Qtype::A)
                .unwrap()
                .nxdomain
        );
        let fail = answer(7, 0x8182, "example.com", Qtype::A, &[]);
        assert!(parse_answer(&fail, 7, "example.com", Qtype::A)
            .unwrap_err()
            .contains("SERVFAIL"));
        let bad = answer(7, 0x8180, "example.com", Qtype::A, &[(1, &[1, 2, 3])]);
        assert!(parse_answer(&bad, 7, "example.com", Qtype::A).is_err());
        let query = build_query(7, "example.com", Qtype::A).unwrap();
        assert!(
            parse_answer(&query, 7, "example.com", Qtype::A).is_err(),
            "a query is no answer"
        );
    }

    #[test]
    fn name_pointers_must_point_back() {
        let mut m = answer(1, 0x8180, "a.b", Qtype::A, &[]);
        m[5] = 1; // keep the question count
        m[12] = 0xc0;
        m[13] = 12; // points at itself
        assert!(parse_answer(&m, 1, "a.b", Qtype::A).is_err());
    }

    #[test]
    fn hosts_file() {
        let text = "127.0.0.1 localhost\n::1 localhost ip6-localhost # v6\n# 10.0.0.1 site.test\n\
                    192.0.2.7  Site.Test  www.site.test.\nbogus line\n192.0.2.8 site.test\n";
        assert_eq!(
            hosts_lookup(text, "site.test"),
            vec![IpAddr::from([192, 0, 2, 7]), IpAddr::from([192, 0, 2, 8])]
        );
        assert_eq!(
            hosts_lookup(text, "www.site.test"),
            vec![IpAddr::from([192, 0, 2, 7])]
        );
        assert_eq!(hosts_lookup(text, "localhost").len(), 2);
        assert!(hosts_lookup(text, "10.0.0.1").is_empty());
        assert!(hosts_lookup(text, "absent.test").is_empty());
    }

    #[test]
    fn resolv_conf_directives() {
        let c = parse_resolv_conf(
            "# c\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nnameserver nonsense\n\
             domain old.test\nsearch a.test b.test.\noptions ndots:2 timeout:1 attempts:9 rotate\n\
             nameserver 192.0.2.54\nnameserver 192.0.2.55\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                IpAddr::from([192, 0, 2, 53]),
                "fe80::1".parse::<IpAddr>().unwrap(),
                IpAddr::from([192, 0, 2, 54])
            ]
        );
        assert_eq!(c.search, vec!["a.test", "b.test"]);
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (2, Duration::from_secs(1), 5)
        );
        assert_eq!(
            parse_resolv_conf("").nameservers,
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        assert_eq!(
            candidates("www.site", &c),
            vec!["www.site.a.test", "www.site.b.test", "www.site"]
        );
        assert_eq!(candidates("a.b.c", &c)[0], "a.b.c");
        assert_eq!(candidates("abs.", &c), vec!["abs"]);
    }

    #[test]
    fn local_names_never_touch_the_network() {
        let r = Resolver::new("/nonexistent/hosts", "/nonexistent/resolv.conf", 1);
        assert_eq!(
            r.lookup_local("[::1]"),
            Some(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])
        );
        assert_eq!(
            r.lookup_local("192.0.2.1"),
            Some(vec![IpAddr::from([192, 0, 2, 1])])
        );
        assert_eq!(r.lookup_local("LocalHost.").map(|v| v.len()), Some(2));
        assert_eq!(r.lookup_local("a.localhost").map(|v| v.len()), Some(2));
        assert_eq!(r.lookup_local("site.test"), None);
    }

    /// A loopback nameserver: `site.test` has an A record and a truncated AAAA answer (served
    /// whole over TCP), `short` exists only outside the search domain, the rest is NXDOMAIN.
    async fn fake_nameserver() -> u16 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        fn reply(q: &[u8], tcp: bool) -> Vec<u8> {
            let id = u16::from_be_bytes([q[0], q[1]]);
            let mut r = Reader { msg: q, pos: 12 };
            let name = r.name().unwrap();
            let qtype = if r.u16().unwrap() == 1 {
                Qtype::A
            } else {
                Qtype::Aaaa
            };
            match (name.as_str(), qtype, tcp) {
                ("site.test", Qtype::A, _) => {
                    answer(id, 0x8180, &name, qtype, &[(1, &[192, 0, 2, 10])])
                }
                ("site.test", Qtype::Aaaa, false) => answer(id, 0x8380, &name, qtype, &[]),
                ("site.test", Qtype::Aaaa, true) => {
                    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
                    answer(id, 0x8180, &name, qtype, &[(28, &v6.octets())])
                }
                ("short", Qtype::A, _) => {
                    answer(id, 0x8180, &name, qtype, &[(1, &[192, 0, 2, 11])])
                }
                ("short", Qtype::Aaaa, _) => answer(id, 0x8180, &name, qtype, &[]),
                _ => answer(id, 0x8183, &name, qtype, &[]),
            }
        }
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await.unwrap();
                // A forged answer first: a wrong id must be ignored, not believed.
                let mut forged = reply(&buf[..n], false);
                forged[0] ^= 0xff;
                udp.send_to(&forged, from).await.unwrap();
                udp.send_to(&reply(&buf[..n], false), from).await.unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                let n = usize::from(s.read_u16().await.unwrap());
                let mut q = vec![0u8; n];
                s.read_exact(&mut q).await.unwrap();
                let r = reply(&q, true);
                s.write_all(&(r.len() as u16).to_be_bytes()).await.unwrap();
                s.write_all(&r).await.unwrap();
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
            "nameserver 127.0.0.1\nsearch lan.test\noptions timeout:2\n",
        )
        .unwrap();
        let r = Resolver::new(dir.join("hosts"), dir.join("resolv.conf"), port);
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
        assert!(e.contains("no address"), "{e}");
        assert!(r
            .lookup("a..b")
            .await
            .unwrap_err()
            .contains("invalid host name"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
