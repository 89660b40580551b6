//! Answers to "which image is NAME?", kept so that a run does not parse the
//! whole of images.json (about a millisecond with 200 images) to find one.
//!
//! Every rewrite of images.json gives it a new random stamp, its first
//! field. An answer is kept in `image-cache/HEX.json` (HEX: the name's
//! sha256) with the stamp of the index it was read from, and is used only
//! while images.json still begins with that stamp. So an answer never
//! outlives the index it came from: a pull, tag or rmi changes the stamp,
//! and the next lookup reads the index again. A torn or foreign cache file
//! is a miss, never an error: the index stays the only truth.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::store::ImageRecord;
use crate::util::fs::{read_json, replace_file};

/// How images.json begins when it has a stamp (as `Store::write_index`
/// writes it, pretty-printed, the stamp first).
const STAMP_PREFIX: &str = "{\n  \"stamp\": \"";
/// The stamp's length: 64 hex digits.
const STAMP_LEN: usize = 64;

#[derive(Serialize, Deserialize)]
struct Answer {
    stamp: String,
    record: ImageRecord,
}

pub struct LookupCache {
    dir: PathBuf,
}

impl LookupCache {
    pub fn new(store_root: &Path) -> LookupCache {
        LookupCache {
            dir: store_root.join("image-cache"),
        }
    }

    /// The record kept for `name` under `stamp`, if it is still that one.
    pub fn get(&self, stamp: &str, name: &str) -> Option<ImageRecord> {
        let answer: Answer = read_json(&self.path(name)).ok()??;
        (answer.stamp == stamp && answer.record.name == name).then_some(answer.record)
    }

    /// Keeps `record` as the answer for its name under `stamp`. Best
    /// effort: a store the user cannot write to only loses the speed-up.
    pub fn put(&self, stamp: &str, record: &ImageRecord) {
        let answer = Answer {
            stamp: stamp.to_string(),
            record: record.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&answer) else {
            return;
        };
        let path = self.path(&record.name);
        if replace_file(&path, &bytes, 0o600).is_err() && std::fs::create_dir(&self.dir).is_ok() {
            let _ = replace_file(&path, &bytes, 0o600);
        }
    }

    /// Forgets every answer (`image prune`, `system prune`).
    pub fn clear(&self) {
        let _ = crate::util::fs::remove_tree(&self.dir);
    }

    fn path(&self, name: &str) -> PathBuf {
        let key = Digest::of(name.as_bytes());
        self.dir.join(format!("{}.json", key.hex()))
    }
}

/// The stamp images.json at `index` begins with: read from its first bytes
/// alone. None when there is no index, or it has no stamp (written by an
/// older rocker: the next rewrite gives it one).
pub fn stamp_of(index: &Path) -> Option<String> {
    let mut head = [0u8; STAMP_PREFIX.len() + STAMP_LEN + 1];
    std::fs::File::open(index)
        .and_then(|mut file| file.read_exact(&mut head))
        .ok()?;
    let rest = head.strip_prefix(STAMP_PREFIX.as_bytes())?;
    let (stamp, end) = rest.split_at(STAMP_LEN);
    (end == b"\"" && stamp.iter().all(u8::is_ascii_hexdigit))
        .then(|| String::from_utf8_lossy(stamp).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::store::Store;
    use crate::util::scratch::ScratchDir;

    fn image(name: &str, config: &str) -> ImageRecord {
        ImageRecord {
            name: name.to_string(),
            manifest: Digest::of(b"manifest"),
            config: Digest::of(config.as_bytes()),
            layers: vec![],
            platform: "linux/amd64".to_string(),
            pulled: 1,
            build_cache: false,
        }
    }

    #[test]
    fn an_answer_is_kept_and_served_until_the_index_changes() {
        let dir = ScratchDir::new("lookup-cache");
        let store = Store::open(&dir).unwrap();
        let cache = LookupCache::new(&dir);
        let name = "docker.io/library/a:1";
        store.put_image(image(name, "one")).unwrap();
        store
            .put_image(image("docker.io/library/b:1", "two"))
            .unwrap();
        assert_eq!(store.image_named(name).unwrap(), Some(image(name, "one")));
        let stamp = stamp_of(&dir.join("images.json")).expect("a stamped index");
        assert_eq!(cache.get(&stamp, name), Some(image(name, "one")));

        // Served from the cache while the stamp holds: an answer planted
        // under it is what the lookup returns.
        let planted = ImageRecord {
            pulled: 2,
            ..image(name, "one")
        };
        cache.put(&stamp, &planted);
        assert_eq!(store.image_named(name).unwrap(), Some(planted));

        // Any rewrite of the index, even of another name, retires it.
        store
            .put_image(image("docker.io/library/c:1", "three"))
            .unwrap();
        assert_ne!(stamp_of(&dir.join("images.json")), Some(stamp.clone()));
        assert_eq!(store.image_named(name).unwrap(), Some(image(name, "one")));
        store.remove_images(|i| i.name == name).unwrap();
        assert_eq!(store.image_named(name).unwrap(), None);
    }

    #[test]
    fn a_torn_answer_or_an_unstamped_index_falls_back_to_the_index() {
        let dir = ScratchDir::new("lookup-cache-torn");
        let store = Store::open(&dir).unwrap();
        let name = "docker.io/library/a:1";
        store.put_image(image(name, "one")).unwrap();
        store.image_named(name).unwrap();
        let answer = LookupCache::new(&dir).path(name);
        std::fs::write(&answer, b"{\"stamp\": \"").unwrap();
        assert_eq!(store.image_named(name).unwrap(), Some(image(name, "one")));

        // An index as an older rocker wrote it: no stamp, so nothing kept.
        std::fs::remove_dir_all(dir.join("image-cache")).unwrap();
        let old = serde_json::json!({ "images": [image(name, "one")] });
        std::fs::write(dir.join("images.json"), old.to_string()).unwrap();
        assert_eq!(stamp_of(&dir.join("images.json")), None);
        assert_eq!(store.image_named(name).unwrap(), Some(image(name, "one")));
        assert!(!dir.join("image-cache").exists());
    }
}
