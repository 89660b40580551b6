//! Container networking: which network a container gets (`--network`), the
//! ports it publishes (`-p`), the slirp4netns process that connects a
//! network namespace to the host's without privileges, and user-defined
//! networks (`networks`), built by a `keeper` over `netlink`, and rocker's
//! own port `forwarder` for what slirp4netns cannot publish.

pub mod forwarder;
pub mod keeper;
pub mod netlink;
pub mod networks;
pub mod pasta;
pub mod ports;
pub mod slirp;

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// What `--network` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum NetworkMode {
    /// A network namespace of its own with only loopback.
    None,
    /// The caller's network namespace.
    Host,
    /// A network namespace of its own, connected by slirp4netns.
    Slirp4netns(SlirpOptions),
    /// A network namespace of its own, on the bridge of a user-defined
    /// network (`network create`), known there by its name and `aliases`
    /// (`--network-alias`).
    Bridge {
        network: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        aliases: Vec<String>,
    },
    /// The network namespace of another container (`container:NAME`; its
    /// id once the container is made), shared.
    Container { container: String },
    /// A network namespace of its own, connected by pasta, with pasta's own
    /// `options` after rocker's.
    Pasta {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
        #[serde(default)]
        allow_host_loopback: bool,
    },
}

/// Without `--network`: slirp4netns with its defaults, as podman gives
/// rootless containers.
impl Default for NetworkMode {
    fn default() -> Self {
        NetworkMode::Slirp4netns(SlirpOptions::default())
    }
}

/// As `--network` names the mode (without its options).
impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Slirp4netns(_) => "slirp4netns",
            NetworkMode::Bridge { network, .. } => network,
            NetworkMode::Container { container } => return write!(f, "container:{container}"),
            NetworkMode::Pasta { .. } => "pasta",
        })
    }
}

impl std::str::FromStr for NetworkMode {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<NetworkMode> {
        NetworkMode::parse(text)
    }
}

impl NetworkMode {
    /// The mode `--network` names.
    pub fn parse(text: &str) -> Result<NetworkMode> {
        match text.split_once(':') {
            None if text == "none" => Ok(NetworkMode::None),
            None if text == "host" => Ok(NetworkMode::Host),
            None if text == "slirp4netns" => Ok(NetworkMode::Slirp4netns(SlirpOptions::default())),
            None if text == "pasta" => Ok(NetworkMode::Pasta {
                options: vec![],
                allow_host_loopback: false,
            }),
            Some(("pasta", options)) => {
                // rocker's own option, in slirp4netns's spelling; the rest
                // are pasta's.
                let mut options = pasta::parse_options(options);
                let before = options.len();
                options.retain(|o| o != "allow_host_loopback=true");
                Ok(NetworkMode::Pasta {
                    allow_host_loopback: options.len() != before,
                    options,
                })
            }
            Some(("container", name)) if !name.is_empty() => Ok(NetworkMode::Container {
                container: name.to_string(),
            }),
            Some(("slirp4netns", options)) => Ok(NetworkMode::Slirp4netns(
                SlirpOptions::parse(options).with_context(|| format!("--network {text}"))?,
            )),
            None if text == "bridge" => bail!(
                "rocker has no default bridge network: create one (rocker network create NAME) \
                 and run with --network NAME, or use none, host or slirp4netns[:OPTION=VALUE,...]"
            ),
            None if crate::util::names::check_object_name("network", text).is_ok() => {
                Ok(NetworkMode::Bridge {
                    network: text.to_string(),
                    aliases: vec![],
                })
            }
            _ => bail!(
                "unknown network {text:?}: use none, host, slirp4netns[:OPTION=VALUE,...], \
                 pasta[:OPTION,...], container:NAME or the name of a network (rocker network ls)"
            ),
        }
    }

    /// Whether the container gets a network namespace of its own.
    pub fn is_own_namespace(&self) -> bool {
        !matches!(self, NetworkMode::Host | NetworkMode::Container { .. })
    }
}

/// Whether a container's command may start as soon as its network
/// namespace has a default route, rather than when the monitor says the
/// network is up. slirp4netns configures the interface (up, MTU, address,
/// the default route last) in a child, then hands the tap device to its
/// main process, which builds its sandbox and compiles its syscall filter
/// before it says it is ready: a millisecond or two that the command's
/// start overlaps. Packets sent meanwhile wait in the tap device's queue.
/// Not with published ports, which are bound only once slirp4netns is
/// ready, nor with IPv6, whose address comes after the route.
pub fn starts_on_default_route(network: &NetworkMode, ports: &[ports::PortMapping]) -> bool {
    matches!(network, NetworkMode::Slirp4netns(options) if !options.enable_ipv6) && ports.is_empty()
}

/// An IPv4 network, such as 10.0.2.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Network {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Network {
    pub fn parse(text: &str) -> Result<Ipv4Network> {
        let (address, prefix) = text
            .split_once('/')
            .with_context(|| format!("{text:?} is not a network: write it as 10.0.3.0/24"))?;
        let address: Ipv4Addr = address
            .parse()
            .with_context(|| format!("{address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .with_context(|| format!("{prefix:?} is not a prefix length (0 to 32)"))?;
        let network = Ipv4Network::containing(address, prefix);
        if network.address != address {
            bail!(
                "{text} has host bits set: did you mean {}/{prefix}?",
                network.address
            );
        }
        Ok(network)
    }

    /// The network of `prefix` bits that `address` is in.
    pub fn containing(address: Ipv4Addr, prefix: u8) -> Ipv4Network {
        Ipv4Network {
            address: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        }
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Ipv4Network) -> bool {
        let shorter = self.prefix.min(other.prefix);
        Ipv4Network::containing(self.address, shorter)
            == Ipv4Network::containing(other.address, shorter)
    }

    /// The address `offset` into the network.
    pub fn host(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) + offset)
    }
}

/// The network part of an address: `prefix` one bits from the top (none
/// for /0, which a plain shift by 32 would overflow on).
fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Ipv4Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for Ipv4Network {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Network {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ipv4Network::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The options of `--network slirp4netns:...`, in podman's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SlirpOptions {
    /// Whether the gateway address reaches the host's 127.0.0.1.
    pub allow_host_loopback: bool,
    pub mtu: u32,
    pub enable_ipv6: bool,
    pub cidr: Ipv4Network,
}

const OPTION_NAMES: &str =
    "allow_host_loopback=true|false, mtu=N, enable_ipv6=true|false, cidr=A.B.C.D/N";

impl Default for SlirpOptions {
    fn default() -> SlirpOptions {
        SlirpOptions {
            allow_host_loopback: false,
            // The largest slirp4netns takes: fewer, bigger packets through
            // the user-mode stack (rootless Docker and podman use it too).
            mtu: 65520,
            enable_ipv6: false,
            cidr: Ipv4Network {
                address: Ipv4Addr::new(10, 0, 2, 0),
                prefix: 24,
            },
        }
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => bail!("{name} takes true or false, not {value:?}"),
    }
}

impl SlirpOptions {
    fn parse(text: &str) -> Result<SlirpOptions> {
        let mut options = SlirpOptions::default();
        for item in text.split(',').filter(|item| !item.is_empty()) {
            let (name, value) = item.split_once('=').with_context(|| {
                format!("{item:?} needs a value; the options are {OPTION_NAMES}")
            })?;
            match name {
                "allow_host_loopback" => options.allow_host_loopback = parse_bool(name, value)?,
                "enable_ipv6" => options.enable_ipv6 = parse_bool(name, value)?,
                "mtu" => {
                    options.mtu = value
                        .parse()
                        .ok()
                        .filter(|mtu| (68..=65521).contains(mtu))
                        .with_context(|| {
                            format!("mtu must be a number from 68 to 65521, not {value:?}")
                        })?
                }
                "cidr" => {
                    options.cidr = Ipv4Network::parse(value)?;
                    // slirp4netns puts the container at .100: the network
                    // needs room.
                    if options.cidr.prefix > 25 {
                        bail!("{value} is too small: the container's address is the network's .100, so use /25 or larger");
                    }
                }
                _ => bail!("unknown slirp4netns option {name:?}; the options are {OPTION_NAMES}"),
            }
        }
        Ok(options)
    }

    /// The container's address: the network's .100, as slirp4netns sets it.
    pub fn container_address(&self) -> Ipv4Addr {
        self.cidr.host(100)
    }

    /// The gateway, which is also the host (its loopback, when allowed).
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.host(2)
    }

    /// slirp4netns's DNS forwarder.
    pub fn nameserver(&self) -> Ipv4Addr {
        self.cidr.host(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_the_default() {
        assert_eq!(NetworkMode::parse("none").unwrap(), NetworkMode::None);
        assert_eq!(NetworkMode::parse("host").unwrap(), NetworkMode::Host);
        let default = NetworkMode::Slirp4netns(SlirpOptions::default());
        assert_eq!(NetworkMode::default(), default);
        assert_eq!(NetworkMode::parse("slirp4netns").unwrap(), default);
        assert_eq!(NetworkMode::parse("slirp4netns:").unwrap(), default);
        let err = NetworkMode::parse("bridge").unwrap_err().to_string();
        assert!(err.contains("rocker network create"), "{err}");
        assert_eq!(
            NetworkMode::parse("app").unwrap(),
            NetworkMode::Bridge {
                network: "app".into(),
                aliases: vec![]
            }
        );
        assert_eq!(
            NetworkMode::parse("pasta:--mtu,1500,allow_host_loopback=true").unwrap(),
            NetworkMode::Pasta {
                options: vec!["--mtu".into(), "1500".into()],
                allow_host_loopback: true
            }
        );
        let shared = NetworkMode::parse("container:web").unwrap();
        assert_eq!(shared.to_string(), "container:web");
        assert!(!shared.is_own_namespace());
        let err = NetworkMode::parse("no/such").unwrap_err().to_string();
        assert!(err.contains("none, host, slirp4netns"), "{err}");
    }

    #[test]
    fn slirp_options_in_podmans_spelling() {
        let NetworkMode::Slirp4netns(options) = NetworkMode::parse(
            "slirp4netns:allow_host_loopback=true,mtu=1500,enable_ipv6=true,cidr=10.0.3.0/24",
        )
        .unwrap() else {
            panic!("not slirp4netns");
        };
        assert!(options.allow_host_loopback && options.enable_ipv6);
        assert_eq!(options.mtu, 1500);
        assert_eq!(options.container_address(), Ipv4Addr::new(10, 0, 3, 100));
        assert_eq!(options.gateway(), Ipv4Addr::new(10, 0, 3, 2));
        assert_eq!(options.nameserver(), Ipv4Addr::new(10, 0, 3, 3));
    }

    #[test]
    fn bad_options_say_what_is_known() {
        for (text, expect) in [
            (
                "slirp4netns:port_handler=x",
                "allow_host_loopback=true|false, mtu=N",
            ),
            ("slirp4netns:mtu=10", "68 to 65521"),
            ("slirp4netns:allow_host_loopback=yes", "true or false"),
            ("slirp4netns:cidr=10.0.3.0/28", "/25 or larger"),
            ("slirp4netns:cidr=10.0.3.1/24", "did you mean 10.0.3.0/24"),
            ("slirp4netns:cidr=10.0.3.1/32", "/25 or larger"),
            ("slirp4netns:mtu", "needs a value"),
        ] {
            let err = format!("{:#}", NetworkMode::parse(text).unwrap_err());
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
