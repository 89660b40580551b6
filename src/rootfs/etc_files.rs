//! The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf. They
//! are generated outside the rootfs and bind-mounted over it, so the rootfs
//! directory (which may be shared) is never modified.

use crate::network::keeper::protocol::Endpoint;
use crate::spec::{NameSettings, NetworkMode};

pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// With its own network the container gets a fresh hosts file; on the host
/// network it sees the host's entries (on another container's, that one's,
/// passed as `host_hosts`), plus its own name (at its slirp4netns address
/// when it has one, or at its `endpoint` on a user-defined network).
pub fn hosts_file(
    hostname: &str,
    network: &NetworkMode,
    endpoint: Option<&Endpoint>,
    host_hosts: Option<&str>,
    names: &NameSettings,
) -> String {
    let base = match (network, host_hosts) {
        (NetworkMode::Host | NetworkMode::Container { .. }, Some(text)) => text.to_string(),
        _ => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_string(),
    };
    let mut text = base;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let own_address = match (network, endpoint) {
        (NetworkMode::Slirp4netns(options), _) => options.container_address().to_string(),
        (NetworkMode::Bridge { .. }, Some(endpoint)) => endpoint.address.to_string(),
        _ => "127.0.1.1".to_string(),
    };
    text.push_str(&format!("{own_address}\t{hostname}\n"));
    // podman's and docker's names for the host, where the gateway reaches
    // it: slirp4netns or pasta with allow_host_loopback.
    let host = match network {
        NetworkMode::Slirp4netns(options) if options.allow_host_loopback => Some(options.gateway()),
        NetworkMode::Pasta {
            allow_host_loopback: true,
            ..
        } => crate::network::pasta::host_gateway(),
        _ => None,
    };
    if let Some(host) = host {
        text.push_str(&format!(
            "{host}\thost.containers.internal host.docker.internal\n"
        ));
    }
    // --add-host lines, after the container's own, as docker writes them.
    for (name, address) in &names.extra_hosts {
        text.push_str(&format!("{address}\t{name}\n"));
    }
    text
}

/// `--dns`, `--dns-search` and `--dns-option` replace the nameserver,
/// search (and domain) and options lines they name, as docker does.
fn with_user_settings(text: String, names: &NameSettings) -> String {
    let keyword = |line: &str| line.split_whitespace().next().unwrap_or("").to_string();
    let replaced = |word: &str| match word {
        "nameserver" => !names.dns.is_empty(),
        "search" | "domain" => !names.dns_search.is_empty(),
        "options" => !names.dns_options.is_empty(),
        _ => false,
    };
    let mut out: String = text
        .lines()
        .filter(|line| !replaced(&keyword(line)))
        .map(|line| format!("{line}\n"))
        .collect();
    for server in &names.dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !names.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", names.dns_search.join(" ")));
    }
    if !names.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", names.dns_options.join(" ")));
    }
    out
}

/// On the host network the host's resolver works as it is. In a network
/// namespace of its own a loopback nameserver (systemd-resolved's
/// 127.0.0.53, a local dnsmasq) would be the container's own loopback, where
/// nothing listens, so those lines are dropped. Behind slirp4netns the one
/// nameserver is its DNS forwarder (which asks the host's resolver); the
/// host's search domains and options stay.
/// On a user-defined network it is the network's forwarder (slirp4netns's
/// too), and none on an internal one.
pub fn resolv_conf(
    network: &NetworkMode,
    endpoint: Option<&Endpoint>,
    host_resolv: Option<&str>,
    names: &NameSettings,
) -> String {
    with_user_settings(usual_resolv_conf(network, endpoint, host_resolv), names)
}

fn usual_resolv_conf(
    network: &NetworkMode,
    endpoint: Option<&Endpoint>,
    host_resolv: Option<&str>,
) -> String {
    let host = host_resolv.unwrap_or("");
    let kept = |keep: &dyn Fn(&str) -> bool| -> String {
        host.lines()
            .filter(|line| keep(line))
            .map(|line| format!("{line}\n"))
            .collect()
    };
    match network {
        // On another container's network, that one's (passed as the host's).
        NetworkMode::Host | NetworkMode::Container { .. } => host.to_string(),
        // pasta gives no forwarder: the host's servers are reached as the
        // host reaches them, but its loopback ones are the container's own.
        NetworkMode::None | NetworkMode::Pasta { .. } => {
            kept(&|line| !is_loopback_nameserver(line))
        }
        NetworkMode::Slirp4netns(options) => {
            let mut text = kept(&|line| nameserver_of(line).is_none());
            text.push_str(&format!("nameserver {}\n", options.nameserver()));
            text
        }
        NetworkMode::Bridge { .. } => {
            let mut text = kept(&|line| nameserver_of(line).is_none());
            if let Some(server) = endpoint.and_then(|e| e.nameserver) {
                text.push_str(&format!("nameserver {server}\n"));
            }
            text
        }
    }
}

fn nameserver_of(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("nameserver") => words.next(),
        _ => None,
    }
}

fn is_loopback_nameserver(line: &str) -> bool {
    nameserver_of(line)
        .and_then(|addr| addr.parse::<std::net::IpAddr>().ok())
        .is_some_and(|addr| addr.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_settings_add_hosts_and_replace_resolver_lines() {
        let names = NameSettings {
            extra_hosts: vec![("db".into(), "10.0.2.2".into())],
            dns: vec!["9.9.9.9".into()],
            dns_search: vec!["corp.example".into()],
            dns_options: vec!["ndots:2".into()],
        };
        let hosts = hosts_file("box", &NetworkMode::None, None, None, &names);
        assert!(hosts.ends_with("127.0.1.1\tbox\n10.0.2.2\tdb\n"), "{hosts}");
        let host = "nameserver 1.1.1.1\nsearch home\noptions edns0\n# note\n";
        assert_eq!(
            resolv_conf(&NetworkMode::None, None, Some(host), &names),
            "# note\nnameserver 9.9.9.9\nsearch corp.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts() {
        let own = hosts_file(
            "box",
            &NetworkMode::None,
            None,
            Some("10.0.0.1 other\n"),
            &NameSettings::default(),
        );
        assert!(own.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(own.ends_with("127.0.1.1\tbox\n"));
        assert!(!own.contains("other"));
        let shared = hosts_file(
            "box",
            &NetworkMode::Host,
            None,
            Some("10.0.0.1 other"),
            &NameSettings::default(),
        );
        assert_eq!(shared, "10.0.0.1 other\n127.0.1.1\tbox\n");
        // The host's names only where the gateway reaches the host.
        let mut options = crate::network::SlirpOptions::default();
        let closed = hosts_file(
            "box",
            &NetworkMode::Slirp4netns(options),
            None,
            None,
            &Default::default(),
        );
        assert!(!closed.contains("host.containers.internal"), "{closed}");
        options.allow_host_loopback = true;
        let open = hosts_file(
            "box",
            &NetworkMode::Slirp4netns(options),
            None,
            None,
            &Default::default(),
        );
        assert!(
            open.ends_with(
                "10.0.2.100\tbox\n10.0.2.2\thost.containers.internal host.docker.internal\n"
            ),
            "{open}"
        );
    }

    #[test]
    fn resolv_drops_loopback_servers_only_in_own_namespace() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.1\n";
        assert_eq!(
            resolv_conf(
                &NetworkMode::None,
                None,
                Some(host),
                &NameSettings::default()
            ),
            "search lan\nnameserver 192.0.2.1\n"
        );
        assert_eq!(
            resolv_conf(
                &NetworkMode::Host,
                None,
                Some(host),
                &NameSettings::default()
            ),
            host
        );
        assert_eq!(
            resolv_conf(&NetworkMode::None, None, None, &NameSettings::default()),
            ""
        );
    }

    #[test]
    fn slirp_gets_its_own_nameserver_and_address() {
        let slirp = NetworkMode::parse("slirp4netns:cidr=10.0.3.0/24").unwrap();
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n";
        assert_eq!(
            resolv_conf(&slirp, None, Some(host), &NameSettings::default()),
            "search lan\noptions edns0\nnameserver 10.0.3.3\n"
        );
        assert!(
            hosts_file("box", &slirp, None, None, &NameSettings::default())
                .ends_with("10.0.3.100\tbox\n")
        );
    }

    #[test]
    fn a_user_network_gives_the_endpoints_address_and_forwarder() {
        let network = NetworkMode::Bridge {
            network: "app".into(),
            aliases: vec![],
        };
        let mut endpoint = Endpoint {
            network: "app".into(),
            network_id: "0".repeat(64),
            container_id: "1".repeat(64),
            names: vec!["web".into()],
            interface: "eth0".into(),
            address: "10.89.0.10".parse().unwrap(),
            prefix: 24,
            gateway: Some("10.89.0.2".parse().unwrap()),
            nameserver: Some("10.89.0.3".parse().unwrap()),
            mac: "02:42:0a:59:00:0a".into(),
        };
        let names = NameSettings::default();
        let hosts = hosts_file("web", &network, Some(&endpoint), None, &names);
        assert!(hosts.ends_with("10.89.0.10\tweb\n"), "{hosts}");
        let host = "search lan\nnameserver 192.0.2.1\n";
        assert_eq!(
            resolv_conf(&network, Some(&endpoint), Some(host), &names),
            "search lan\nnameserver 10.89.0.3\n"
        );
        endpoint.nameserver = None;
        assert_eq!(
            resolv_conf(&network, Some(&endpoint), Some(host), &names),
            "search lan\n"
        );
    }
}
