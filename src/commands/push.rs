//! `rocker push IMAGE [DESTINATION]`.

use anyhow::{bail, Result};

use super::image::{no_such_image, ImageContext};
use crate::cli::args::PushArgs;
use crate::error::{StatusError, EXIT_ROCKER_FAILED};
use crate::image::distribution::auth::AuthFiles;
use crate::image::distribution::client::Registry;
use crate::image::manifest::{Compression, ManifestFormat};
use crate::image::push::{push, PushOptions};
use crate::image::reference::Reference;
use crate::util::fs::write_atomic;

pub fn push_command(args: PushArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let Some(image) = context.find_one(&args.image)? else {
        return Err(no_such_image(&args.image));
    };
    let destination = match &args.destination {
        Some(text) => destination_reference(text)?,
        None => {
            let named = Reference::parse(&args.image).is_ok_and(|r| r.to_string() == image.name);
            if !named {
                bail!(
                    "{} is an image id; say where to push it: rocker push {} \
                     REGISTRY/REPOSITORY[:TAG]",
                    args.image,
                    args.image
                );
            }
            Reference::parse(&image.name)?
        }
    };
    if destination.digest.is_some() {
        bail!("{destination}: push to a tag, not a digest (the registry computes the digest)");
    }
    let tag = destination.tag.clone().unwrap_or_else(|| "latest".into());
    let registries = context.registries()?;
    let endpoint = registries.push_endpoint(&destination)?;
    // A repository of the same registry that the image came from (under
    // any of its names) lends its blobs by mount instead of upload.
    let mount_from = context
        .store
        .images()?
        .iter()
        .filter(|other| other.id() == image.id())
        .filter_map(|other| Reference::parse(&other.name).ok())
        .filter_map(|source| registries.push_endpoint(&source).ok())
        .find(|source| source.host == endpoint.host && source.repository != endpoint.repository)
        .map(|source| source.repository);
    let registry = Registry::for_push(
        AuthFiles::new(context.dirs.auth_file.clone(), &context.dirs.home),
        mount_from.iter().cloned().collect(),
    );
    let options = PushOptions::new(
        args.format
            .as_deref()
            .map(ManifestFormat::parse)
            .transpose()?,
        args.compression_format
            .as_deref()
            .map(Compression::parse)
            .transpose()?,
        args.quiet,
    );
    let pushed = push(
        &context.store,
        &registry,
        &endpoint,
        &image,
        &tag,
        mount_from.as_deref(),
        &options,
    )
    .map_err(|err| {
        StatusError::new(
            EXIT_ROCKER_FAILED,
            format!("pushing {} to {destination}: {err:#}", image.name),
        )
    })?;
    if let Some(path) = &args.digestfile {
        write_atomic(path, pushed.digest.to_string().as_bytes(), 0o644)?;
    }
    if !args.quiet {
        eprintln!(
            "Pushed {destination}: {} layers sent, {} mounted, {} already there",
            pushed.sent, pushed.mounted, pushed.present
        );
        println!("{tag}: digest: {} size: {}", pushed.digest, pushed.size);
    }
    Ok(0)
}

/// `[docker://]REFERENCE`; other transports are save's.
fn destination_reference(text: &str) -> Result<Reference> {
    if let Some(rest) = text.strip_prefix("docker://") {
        return Reference::parse(rest);
    }
    if let Some((transport, _)) = text.split_once(':') {
        if [
            "oci",
            "oci-archive",
            "docker-archive",
            "dir",
            "containers-storage",
        ]
        .contains(&transport)
        {
            bail!(
                "rocker push sends images to registries (docker://); for a {transport} \
                 destination use rocker save"
            );
        }
    }
    Reference::parse(text)
}
