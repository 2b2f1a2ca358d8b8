//! An image written without Docker: an OCI image layout (image-spec `image-layout.md`) in one
//! tar file, with one uncompressed layer, its configuration and manifest, and an index that
//! names it. The types and their JSON come from `oci-spec` (the youki project's crate); this
//! file only lays the blobs out and hashes them.
//!
//! containerd's `ctr images import` takes it as it is: it names the image after the index's
//! `io.containerd.image.name` annotation (containerd 1.6, `images/archive/importer.go`).

use std::{collections::HashMap, io::Write, path::Path, str::FromStr};

use anyhow::Context;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

/// containerd's annotation for the full name of an imported image.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// One file of a layer: where it goes in the image, its bytes and mode.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// What the image runs, and with what.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
}

/// Writes the image `reference` (`registry/name:tag`) with `entries` as its one layer into the
/// OCI layout tar `output`. The same entries and config give the same image (manifest digest).
pub fn write(reference: &str, entries: &[Entry], run: &RunConfig, output: &Path) -> anyhow::Result<()> {
    let layer = layer_tar(entries)?;
    let layer_digest = sha256(&layer);
    let mut config = ConfigBuilder::default();
    if !run.entrypoint.is_empty() {
        config = config.entrypoint(run.entrypoint.clone());
    }
    if !run.cmd.is_empty() {
        config = config.cmd(run.cmd.clone());
    }
    let mut env = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned()];
    env.extend(run.env.iter().cloned());
    config = config.env(env);
    if let Some(user) = &run.user {
        config = config.user(user.clone());
    }
    let configuration = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config.build()?)
        .rootfs(RootFsBuilder::default().diff_ids(vec![layer_digest.to_string()]).build()?)
        .build()?;
    let config_json = serde_json::to_vec(&configuration)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(MediaType::ImageConfig, config_json.len() as u64, sha256(&config_json)))
        .layers(vec![Descriptor::new(MediaType::ImageLayer, layer.len() as u64, layer_digest.clone())])
        .build()?;
    let manifest_json = serde_json::to_vec(&manifest)?;
    let mut manifest_descriptor =
        Descriptor::new(MediaType::ImageManifest, manifest_json.len() as u64, sha256(&manifest_json));
    let tag = reference.rsplit_once(':').map_or("latest", |(_, tag)| tag);
    manifest_descriptor.set_annotations(Some(HashMap::from([
        (CONTAINERD_IMAGE_NAME.to_owned(), reference.to_owned()),
        (ANNOTATION_REF_NAME.to_owned(), tag.to_owned()),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()?;

    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = output.with_extension("tar.partial");
    let file = std::fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut archive = tar::Builder::new(std::io::BufWriter::new(file));
    add(&mut archive, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644)?;
    add(&mut archive, "index.json", &serde_json::to_vec(&index)?, 0o644)?;
    for blob in [&layer, &config_json, &manifest_json] {
        add(&mut archive, &format!("blobs/sha256/{}", hex(&Sha256::digest(blob))), blob, 0o644)?;
    }
    archive.into_inner()?.flush()?;
    // Renamed when complete: an interrupted write never leaves a tar that looks whole.
    std::fs::rename(&partial, output).with_context(|| format!("cannot write {}", output.display()))
}

/// The manifest digest (`sha256:…`) of the image in the OCI layout tar `file`, from its
/// index.json: what containerd lists for the image once imported.
pub fn manifest_digest(file: &Path) -> anyhow::Result<String> {
    let mut archive =
        tar::Archive::new(std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.path()?.as_os_str() == "index.json" {
            let index: oci_spec::image::ImageIndex = serde_json::from_reader(entry)?;
            let manifest = index.manifests().first().with_context(|| format!("{} names no image", file.display()))?;
            return Ok(manifest.digest().to_string());
        }
    }
    anyhow::bail!("{} has no index.json", file.display())
}

/// The layer: every entry and the folders above it, in path order, owned by root, dated 0.
fn layer_tar(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut folders = std::collections::BTreeSet::new();
    for entry in &sorted {
        let mut path = Path::new(entry.path.trim_start_matches('/'));
        while let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            folders.insert(parent.to_path_buf());
            path = parent;
        }
    }
    let mut archive = tar::Builder::new(Vec::new());
    for folder in &folders {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(0);
        archive.append_data(&mut header, format!("{}/", folder.display()), std::io::empty())?;
    }
    for entry in sorted {
        add(&mut archive, entry.path.trim_start_matches('/'), &entry.contents, entry.mode)?;
    }
    Ok(archive.into_inner()?)
}

fn add<W: Write>(archive: &mut tar::Builder<W>, path: &str, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(contents.len() as u64);
    header.set_mtime(0);
    archive.append_data(&mut header, path, contents).with_context(|| format!("cannot add {path} to the image"))
}

fn sha256(bytes: &[u8]) -> Digest {
    let hex = hex(&Sha256::digest(bytes));
    Sha256Digest::from_str(&hex).expect("a SHA-256 digest in hex").into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn read_tar(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
        let mut files = HashMap::new();
        for entry in tar::Archive::new(bytes).entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            files.insert(path, contents);
        }
        files
    }

    /// Read back as a registry or containerd would: index → manifest → config and layer, each
    /// found by its digest and of the size the descriptor says; the layer's diff id in the config.
    #[test]
    fn the_layout_is_self_consistent_and_names_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("hello.tar");
        let entries =
            [Entry { path: "/usr/bin/hello".into(), contents: b"#!/bin/sh\necho hi\n".to_vec(), mode: 0o755 }];
        let run = RunConfig { entrypoint: vec!["/usr/bin/hello".into()], ..Default::default() };
        write("workshop.local/hello:1.0", &entries, &run, &output).unwrap();
        let files = read_tar(&std::fs::read(&output).unwrap());
        let blob = |digest: &str| files[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))].clone();
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let descriptor = &index["manifests"][0];
        assert_eq!(descriptor["annotations"][CONTAINERD_IMAGE_NAME], "workshop.local/hello:1.0");
        assert_eq!(descriptor["annotations"][ANNOTATION_REF_NAME], "1.0");
        let manifest_bytes = blob(descriptor["digest"].as_str().unwrap());
        assert_eq!(manifest_bytes.len() as u64, descriptor["size"].as_u64().unwrap());
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let config: serde_json::Value =
            serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/hello");
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
        let layer = read_tar(&blob(layer_digest));
        assert_eq!(layer["usr/bin/hello"], entries[0].contents);
        assert!(layer.contains_key("usr/") && layer.contains_key("usr/bin/"), "{:?}", layer.keys());
        assert!(!dir.path().join("hello.tar.partial").exists());

        let again = dir.path().join("again.tar");
        write("workshop.local/hello:1.0", &entries, &run, &again).unwrap();
        let index_of = |path: &Path| {
            let files = read_tar(&std::fs::read(path).unwrap());
            serde_json::from_slice::<serde_json::Value>(&files["index.json"]).unwrap()["manifests"][0]["digest"].clone()
        };
        assert_eq!(index_of(&output), index_of(&again), "the same input, the same image");
    }
}
