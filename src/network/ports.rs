//! `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`, with ranges
//! (`8000-8002:80-82`), as docker spells it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        write!(
            f,
            "{host}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

const FORMAT: &str = "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]";

/// A port or a range `A-B`, as (first, count).
fn parse_ports(text: &str, what: &str) -> Result<(u16, u16)> {
    let port = |t: &str| -> Result<u16> {
        t.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .with_context(|| format!("{what} {t:?} is not a port (1 to 65535)"))
    };
    match text.split_once('-') {
        None => Ok((port(text)?, 1)),
        Some((first, last)) => {
            let (first, last) = (port(first)?, port(last)?);
            if last < first {
                bail!("{what} range {text} runs backwards");
            }
            Ok((first, last - first + 1))
        }
    }
}

/// Parses one `-p` value into the mappings it stands for.
pub fn parse(text: &str) -> Result<Vec<PortMapping>> {
    parse_inner(text).with_context(|| format!("-p {text} (the form is {FORMAT})"))
}

fn parse_inner(text: &str) -> Result<Vec<PortMapping>> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((_, other)) => bail!("unknown protocol {other:?}: use tcp or udp"),
        None => (text, Protocol::Tcp),
    };
    // The host IP may be IPv6 in brackets: [::1]:8080:80.
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, rest) = bracketed
                .split_once("]:")
                .context("an IPv6 host address needs its closing bracket and a port")?;
            let ip: IpAddr = ip
                .parse()
                .with_context(|| format!("{ip:?} is not an IP address"))?;
            (Some(ip), rest)
        }
        None => match spec.matches(':').count() {
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or_default();
                let ip: IpAddr = ip
                    .parse()
                    .with_context(|| format!("{ip:?} is not an IP address"))?;
                (Some(ip), rest)
            }
            _ => (None, spec),
        },
    };
    // CONTAINER_PORT alone, or an empty host port: a free one is picked
    // (host port 0 until `assign_free_ports`).
    let (host, container) = match rest.split_once(':') {
        Some((host, container)) => (host, container),
        None if host_ip.is_none() => ("", rest),
        None => bail!("give the container port after the host address"),
    };
    let (container_first, container_count) = parse_ports(container, "container port")?;
    let host_first = match host {
        "" => None,
        host => {
            let (first, count) = parse_ports(host, "host port")?;
            if count != container_count {
                bail!("the host range has {count} ports and the container range {container_count}");
            }
            Some(first)
        }
    };
    Ok((0..container_count)
        .map(|i| PortMapping {
            host_ip: host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            host_port: host_first.map_or(0, |first| first + i),
            container_port: container_first + i,
            protocol,
        })
        .collect())
}

/// Gives each mapping without a host port (`-p 80`, `-P`) a free one, as
/// the kernel hands them out: each is bound until all are chosen, so two
/// never get the same. Another program may still take one before
/// slirp4netns binds it; the run then fails saying the port is in use.
pub fn assign_free_ports(ports: &mut [PortMapping]) -> Result<()> {
    let mut held = vec![];
    for port in ports.iter_mut().filter(|p| p.host_port == 0) {
        let any = (port.host_ip, 0);
        let (number, socket): (u16, Box<dyn std::any::Any>) = match port.protocol {
            Protocol::Tcp => {
                let listener = std::net::TcpListener::bind(any)
                    .with_context(|| format!("finding a free TCP port on {}", port.host_ip))?;
                (listener.local_addr()?.port(), Box::new(listener))
            }
            Protocol::Udp => {
                let socket = std::net::UdpSocket::bind(any)
                    .with_context(|| format!("finding a free UDP port on {}", port.host_ip))?;
                (socket.local_addr()?.port(), Box::new(socket))
            }
        };
        port.host_port = number;
        held.push(socket);
    }
    Ok(())
}

/// Why `port` cannot be bound on the host (helpers such as slirp4netns and
/// pasta do not say): binding it here tells. None when it can be.
pub fn why_unbindable(port: &PortMapping) -> Option<String> {
    let address = (port.host_ip, port.host_port);
    let result = match port.protocol {
        Protocol::Tcp => std::net::TcpListener::bind(address).map(drop),
        Protocol::Udp => std::net::UdpSocket::bind(address).map(drop),
    };
    let (ip, number, protocol) = (port.host_ip, port.host_port, port.protocol);
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Some(format!(
            "host port {number}/{protocol} on {ip} is already in use"
        )),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => Some(format!(
            "host port {number} is privileged here; use a port from \
             net.ipv4.ip_unprivileged_port_start (cat /proc/sys/net/ipv4/ip_unprivileged_port_start) up"
        )),
        Err(err) if err.kind() == std::io::ErrorKind::AddrNotAvailable => {
            Some(format!("{ip} is not an address of this host"))
        }
        Err(err) => Some(format!("binding {ip}:{number}/{protocol} fails: {err}")),
        Ok(()) => None,
    }
}

/// One `--expose PORT[-PORT][/tcp|/udp]`: docker's `80/tcp` keys.
pub fn parse_exposed(text: &str) -> Result<Vec<String>> {
    let (ports, protocol) = match text.rsplit_once('/') {
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some((_, other)) => bail!("--expose {text}: unknown protocol {other:?}: use tcp or udp"),
        None => (text, Protocol::Tcp),
    };
    let (first, count) = parse_ports(ports, "port").with_context(|| format!("--expose {text}"))?;
    Ok((0..count)
        .map(|i| format!("{}/{protocol}", first + i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_as_docker_keys_them() {
        assert_eq!(parse_exposed("80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_exposed("53/udp").unwrap(), ["53/udp"]);
        assert_eq!(
            parse_exposed("8000-8001").unwrap(),
            ["8000/tcp", "8001/tcp"]
        );
        assert!(parse_exposed("80/sctp").is_err());
        assert!(parse_exposed("http").is_err());
    }

    fn one(text: &str) -> String {
        let all = parse(text).unwrap();
        assert_eq!(all.len(), 1, "{text}");
        all[0].to_string()
    }

    #[test]
    fn the_forms_docker_takes() {
        assert_eq!(one("8080:80"), "0.0.0.0:8080->80/tcp");
        assert_eq!(one("127.0.0.1:5353:53/udp"), "127.0.0.1:5353->53/udp");
        assert_eq!(one("[::1]:8080:80/tcp"), "[::1]:8080->80/tcp");
        let range: Vec<String> = parse("8000-8002:80-82")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            range,
            [
                "0.0.0.0:8000->80/tcp",
                "0.0.0.0:8001->81/tcp",
                "0.0.0.0:8002->82/tcp"
            ]
        );
    }

    #[test]
    fn a_container_port_alone_gets_a_free_host_port() {
        let mut ports = parse("80").unwrap();
        ports.extend(parse("127.0.0.1::53/udp").unwrap());
        ports.extend(parse("9000-9001").unwrap());
        assert!(ports.iter().all(|p| p.host_port == 0));
        assert_eq!(ports[1].host_ip.to_string(), "127.0.0.1");
        assert_eq!(ports[3].container_port, 9001);
        assert_eq!(ports.len(), 4);
        assign_free_ports(&mut ports).unwrap();
        let mut chosen: Vec<u16> = ports.iter().map(|p| p.host_port).collect();
        assert!(chosen.iter().all(|p| *p != 0), "{chosen:?}");
        chosen.sort();
        chosen.dedup();
        assert_eq!(chosen.len(), 4, "each its own");
        // A chosen port is free again once assigned.
        std::net::TcpListener::bind(("0.0.0.0", ports[0].host_port)).unwrap();
    }

    #[test]
    fn bad_forms_are_named() {
        for (text, expect) in [
            ("8080:80/sctp", "unknown protocol"),
            ("8080:0", "not a port"),
            ("8080:70000", "not a port"),
            ("8000-8001:80", "2 ports and the container range 1"),
            ("8002-8000:80-82", "runs backwards"),
            ("300.1.1.1:80:80", "not an IP address"),
            ("[::1:80:80", "closing bracket"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expect), "{text}: {err}");
            assert!(err.contains("HOST_PORT:CONTAINER_PORT"), "{text}: {err}");
        }
    }
}
