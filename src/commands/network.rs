//! `rocker network create|ls|inspect|rm|prune`: the definitions in the
//! store (`network::networks`), and what the keeper says is attached.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::filters::{label_matches, name_matches, Filters};
use super::output::{confirm, remove_each, write_removed, write_table};
use crate::cli::args::{
    Format, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::container::connected::{self, Connection};
use crate::container::live_dir;
use crate::container::record::{ContainerRecord, Containers, State};
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::network::keeper::client::KeeperConnection;
use crate::network::keeper::protocol::AttachRequest;
use crate::network::keeper::protocol::Endpoint;
use crate::network::networks::dns_names;
use crate::network::networks::{NetworkRecord, Networks, NewNetwork};
use crate::network::Ipv4Network;
use crate::network::NetworkMode;
use crate::util::time;

struct Store {
    networks: Networks,
    /// Who is on which network now, by network name.
    attached: BTreeMap<String, Vec<Endpoint>>,
}

fn open() -> Result<Store> {
    let dirs = Dirs::discover()?;
    crate::host::dirs::ensure_private_dir(&dirs.data)?;
    let mut attached: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    // No keeper running: no container is on any network.
    if let Some(keeper) = KeeperConnection::if_running(dirs.ensure_runtime()?)? {
        for endpoint in keeper.status()? {
            attached
                .entry(endpoint.network.clone())
                .or_default()
                .push(endpoint);
        }
    }
    Ok(Store {
        networks: Networks::open(&dirs.data)?,
        attached,
    })
}

impl Store {
    /// The endpoints on `network` now: none when the network was made
    /// again under its name since they attached.
    fn endpoints(&self, network: &NetworkRecord) -> Vec<&Endpoint> {
        self.attached
            .get(&network.name)
            .into_iter()
            .flatten()
            .filter(|e| e.network_id == network.id)
            .collect()
    }
}

fn labels_of(texts: &[String]) -> BTreeMap<String, String> {
    texts
        .iter()
        .map(|label| {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            (key.to_string(), value.to_string())
        })
        .collect()
}

pub fn create_command(args: NetworkCreateArgs) -> Result<i32> {
    if args.driver != "bridge" {
        bail!(
            "network driver {:?} does not exist in rocker: only bridge",
            args.driver
        );
    }
    let subnet = args
        .subnet
        .as_deref()
        .map(Ipv4Network::parse)
        .transpose()
        .context("--subnet")?;
    let dirs = Dirs::discover()?;
    crate::host::dirs::ensure_private_dir(&dirs.data)?;
    let network = Networks::open(&dirs.data)?.create(NewNetwork {
        name: args.name,
        subnet,
        internal: args.internal,
        labels: labels_of(&args.labels),
    })?;
    println!("{}", network.id);
    Ok(0)
}

/// docker's `network ls --format` fields.
fn row(network: &NetworkRecord) -> Value {
    json!({
        "ID": &network.id[..12],
        "Name": network.name,
        "Driver": "bridge",
        "Scope": "local",
        "IPv6": "false",
        "Internal": network.internal.to_string(),
        "CreatedAt": time::rfc3339(network.created),
        "Labels": network
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    })
}

pub fn ls_command(args: NetworkLsArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filters, &["name", "id", "driver", "label"])?;
    let networks = Networks::open(&Dirs::discover()?.data)?;
    let listed: Vec<NetworkRecord> = networks
        .list()?
        .into_iter()
        .filter(|n| {
            filters.allows("name", |v| name_matches(v, &n.name))
                && filters.allows("id", |v| n.id.starts_with(v))
                && filters.allows("driver", |v| v == "bridge")
                && filters.allows("label", |v| label_matches(v, &n.labels))
        })
        .collect();
    let id = |n: &NetworkRecord| match args.no_trunc {
        true => n.id.clone(),
        false => n.id[..12].to_string(),
    };
    if args.quiet {
        for network in &listed {
            println!("{}", id(network));
        }
        return Ok(0);
    }
    match &args.format {
        Format::Template(template) => {
            let rows: Vec<Value> = listed.iter().map(row).collect();
            super::template::print_each(template, &rows)?;
        }
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for network in &listed {
                writeln!(out, "{}", row(network))?;
            }
        }
        Format::Text => {
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|n| vec![id(n), n.name.clone(), "bridge".into(), "local".into()])
                .collect();
            write_table(
                &mut std::io::stdout().lock(),
                &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                &rows,
            )?;
        }
    }
    Ok(0)
}

/// docker's `network inspect` object.
fn report(network: &NetworkRecord, endpoints: &[&Endpoint]) -> Value {
    let containers: serde_json::Map<String, Value> = endpoints
        .iter()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": e.names.first().cloned().unwrap_or_default(),
                    "EndpointID": format!("{}-{}", &e.network_id[..12], &e.container_id[..12]),
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.address, e.prefix),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": time::rfc3339(network.created),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{
                "Subnet": network.subnet.to_string(),
                "Gateway": network.gateway().to_string(),
            }],
        },
        "Internal": network.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": network.bridge_name(),
            "com.docker.network.driver.mtu": "65520",
        },
        "Labels": network.labels,
    })
}

pub fn inspect_command(args: NetworkInspectArgs) -> Result<i32> {
    let store = open()?;
    let reports = args
        .networks
        .iter()
        .map(|name| {
            let network = store.networks.find(name)?;
            Ok(report(&network, &store.endpoints(&network)))
        })
        .collect::<Result<Vec<_>>>()?;
    match &args.format {
        Format::Template(template) => super::template::print_each(template, &reports)?,
        _ => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    Ok(0)
}

/// The error of removing a network that running containers are on; exits
/// 1, as docker's does.
fn in_use(network: &NetworkRecord, endpoints: &[&Endpoint]) -> StatusError {
    let names: Vec<&str> = endpoints
        .iter()
        .filter_map(|e| e.names.first().map(String::as_str))
        .collect();
    StatusError::new(
        1,
        format!(
            "network {} has active endpoints ({}): stop them first, or disconnect them",
            network.name,
            names.join(", ")
        ),
    )
}

pub fn rm_command(args: NetworkRmArgs) -> Result<i32> {
    let store = open()?;
    let _lock = store.networks.lock()?;
    Ok(remove_each(&args.networks, |name| {
        match store.networks.find(name) {
            Err(_) if args.force => Ok(false),
            Err(err) => Err(err),
            Ok(network) => match store.endpoints(&network) {
                endpoints if !endpoints.is_empty() => Err(in_use(&network, &endpoints).into()),
                _ => store.networks.remove(&network).map(|()| true),
            },
        }
    }))
}

pub fn prune_command(args: NetworkPruneArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filters, &["label", "label!"])?;
    if !args.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    let store = open()?;
    let _lock = store.networks.lock()?;
    let mut removed = vec![];
    for network in store.networks.list()? {
        let labels = &network.labels;
        let chosen = store.endpoints(&network).is_empty()
            && filters.allows("label", |v| label_matches(v, labels))
            && filters.allows("label!", |v| !label_matches(v, labels));
        if chosen {
            store.networks.remove(&network)?;
            removed.push(network.name);
        }
    }
    write_removed(&mut std::io::stdout().lock(), "Deleted Networks:", &removed)?;
    Ok(0)
}

/// The container's own network (the one it was made on), which a
/// container must have for `network connect`: it is what puts the
/// container in the keeper's user namespace.
fn own_network<'a>(record: &'a ContainerRecord, what: &str) -> Result<&'a str> {
    match &record.network {
        NetworkMode::Bridge { network, .. } => Ok(network),
        other => Err(StatusError::new(
            1,
            format!(
                "cannot {what} {}: it is on {other}, and only a container made on a \
                 user-defined network (--network NAME) joins others, as in podman",
                record.name
            ),
        )
        .into()),
    }
}

pub fn connect_command(args: NetworkConnectArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let networks = Networks::open(&dirs.data)?;
    let network = networks.find(&args.network)?;
    let record = containers.find(&args.container)?;
    let own = own_network(&record, "connect")?;
    for alias in &args.aliases {
        crate::cli::values::check_hostname(alias)
            .with_context(|| format!("--alias {alias}: not a host name"))?;
    }
    let _lock = containers.lock()?;
    let dir = containers.dir(&record.id);
    let mut connections = connected::read(&dir)?;
    if own == network.name || connections.iter().any(|c| c.network == network.name) {
        return Err(StatusError::new(
            1,
            format!(
                "endpoint with name {} already exists in network {}",
                record.name, network.name
            ),
        )
        .into());
    }
    if let State::Running(live) = containers.state(&record.id)? {
        let pidfd = live
            .init
            .open()
            .with_context(|| format!("container {} has just stopped", record.name))?;
        let netns = crate::host::proc_ns::open(live.init.pid, "net")
            .with_context(|| format!("opening the network namespace of {}", record.name))?;
        let runtime = containers.runtime_of(&record.id);
        let keeper = KeeperConnection::if_running(&runtime)?.with_context(|| {
            format!(
                "no network keeper runs for {}: stop and start it",
                record.name
            )
        })?;
        let request = AttachRequest {
            container_id: record.id.clone(),
            names: dns_names(&record.name, &args.aliases, &record.id),
            isolated: networks.others_subnets(&network)?,
            network: network.clone(),
            hosts: dir.join(crate::runtime::SHARED_HOSTS_FILE),
            ports: vec![],
        };
        let endpoint = keeper
            .connect(request, &netns, &pidfd)
            .with_context(|| format!("connecting {} to {}", record.name, network.name))?;
        let mut endpoints = live_dir::read_endpoints(&runtime, &record.id);
        endpoints.push(endpoint);
        live_dir::write_endpoints(&runtime, &record.id, &endpoints)?;
    }
    connections.push(Connection {
        network: network.name.clone(),
        aliases: args.aliases,
    });
    connected::write(&dir, &connections)?;
    Ok(0)
}

pub fn disconnect_command(args: NetworkDisconnectArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let network = Networks::open(&dirs.data)?.find(&args.network)?;
    let record = containers.find(&args.container)?;
    let own = own_network(&record, "disconnect")?;
    if own == network.name {
        bail!(
            "{} was made on {}, which it keeps while it exists; \
             disconnect only takes it off networks it was connected to",
            record.name,
            network.name
        );
    }
    let _lock = containers.lock()?;
    let dir = containers.dir(&record.id);
    let mut connections = connected::read(&dir)?;
    let before = connections.len();
    connections.retain(|c| c.network != network.name);
    if connections.len() == before {
        if args.force {
            return Ok(0);
        }
        return Err(StatusError::new(
            1,
            format!(
                "container {} is not connected to network {}",
                record.name, network.name
            ),
        )
        .into());
    }
    if let State::Running(_) = containers.state(&record.id)? {
        let runtime = containers.runtime_of(&record.id);
        if let Some(keeper) = KeeperConnection::if_running(&runtime)? {
            keeper.disconnect(&record.id, &network.id)?;
        }
        let mut endpoints = live_dir::read_endpoints(&runtime, &record.id);
        endpoints.retain(|e| e.network_id != network.id);
        live_dir::write_endpoints(&runtime, &record.id, &endpoints)?;
    }
    connected::write(&dir, &connections)?;
    Ok(0)
}
