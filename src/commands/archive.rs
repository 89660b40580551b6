//! `rocker save` and `rocker load`: images to and from archive files.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::image::{no_such_image, ImageContext};
use crate::cli::args::{LoadArgs, SaveArgs};
use crate::image::archive::load::{compression_of, load};
use crate::image::archive::save::{save, ArchiveFormat, SaveItem};
use crate::image::layer::codec::decoder;
use crate::image::layer::ingest::ImageBudget;
use crate::image::manifest::{Compression, Platform};
use crate::image::reference::Reference;
use crate::util::fs::write_streamed_atomic;

pub fn save_command(args: SaveArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let format = ArchiveFormat::parse(&args.format)?;
    let mut items: Vec<SaveItem> = vec![];
    for text in &args.images {
        let Some(image) = context.find_one(text)? else {
            return Err(no_such_image(text));
        };
        // Named by id, an image goes without a name, as docker saves it.
        let by_name = Reference::parse(text).is_ok_and(|r| r.to_string() == image.name);
        let names = if by_name {
            vec![image.name.clone()]
        } else {
            vec![]
        };
        match items.iter_mut().find(|item| item.image.id() == image.id()) {
            Some(item) => {
                for name in names {
                    if !item.names.contains(&name) {
                        item.names.push(name);
                    }
                }
            }
            None => items.push(SaveItem { image, names }),
        }
    }
    match &args.output {
        Some(path) => write_streamed_atomic(path, 0o644, |file| {
            save(&context.store, &items, format, file)
        }),
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!(
                    "refusing to write an archive to a terminal; give -o FILE or redirect \
                     the output"
                );
            }
            save(
                &context.store,
                &items,
                format,
                std::io::BufWriter::with_capacity(1 << 20, stdout.lock()),
            )
        }
    }?;
    Ok(0)
}

/// `rocker load [-i FILE]`: a file or directory as it is; standard input,
/// or a compressed archive (`docker save | gzip`), goes to a temp file in
/// the store first, since an archive's members are read out of order.
pub fn load_command(args: LoadArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let config = crate::host::config::Config::load(&context.dirs.config)?;
    let budget = ImageBudget::new(config.max_layer_size()?, config.max_image_size()?);
    let spool = context.store.temp_dir("load")?;
    let spooled = spool.path().join("archive.tar");
    let path = match &args.input {
        Some(path) if path.is_dir() => path.clone(),
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let mut magic = vec![];
            (&file).take(4).read_to_end(&mut magic)?;
            match compression_of(&magic) {
                Compression::None => path.clone(),
                compression => {
                    let file = std::fs::File::open(path)?;
                    copy_bounded(decoder(file, compression)?, &spooled, budget.max_image_size)?;
                    spooled.clone()
                }
            }
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("give the archive with -i FILE, or on standard input");
            }
            let (compression, whole) = sniff_compression(std::io::stdin().lock())?;
            copy_bounded(
                decoder(whole, compression)?,
                &spooled,
                budget.max_image_size,
            )?;
            spooled.clone()
        }
    };
    let loaded = load(&context.store, &path, &budget, &Platform::host()).with_context(|| {
        format!(
            "loading {}",
            args.input
                .as_deref()
                .map_or("standard input".into(), |p| p.display().to_string())
        )
    })?;
    for image in loaded {
        if image.names.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for name in image.names {
            let shown = Reference::parse(&name).map_or(name.clone(), |r| r.familiar());
            if args.quiet {
                println!("{shown}");
            } else {
                println!("Loaded image: {shown}");
            }
        }
    }
    Ok(0)
}

/// A stream whose first bytes were read, with them put back in front.
pub(super) type Rewound<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// How a stream is compressed, from its first bytes, and the whole
/// stream again.
pub(super) fn sniff_compression<R: Read>(mut reader: R) -> Result<(Compression, Rewound<R>)> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match reader
            .read(&mut magic[got..])
            .context("reading the input")?
        {
            0 => break,
            n => got += n,
        }
    }
    let compression = compression_of(&magic[..got]);
    Ok((
        compression,
        std::io::Cursor::new(magic[..got].to_vec()).chain(reader),
    ))
}

/// Copies `reader` into the new file `path`, refusing more than `limit`
/// bytes (an endless stream would otherwise fill the disk).
fn copy_bounded(reader: impl Read, path: &Path, limit: u64) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let copied = std::io::copy(&mut reader.take(limit + 1), &mut file)
        .with_context(|| format!("writing {}", path.display()))?;
    if copied > limit {
        bail!(
            "the archive is more than {limit} bytes; if that is genuine, raise [images] \
             max_image_size in $XDG_CONFIG_HOME/rocker/config.toml"
        );
    }
    Ok(())
}
