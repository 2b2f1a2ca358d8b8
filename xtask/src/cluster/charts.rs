//! Where the upstream charts come from: the chart repositories (`helm repo add`), or, with
//! `--charts DIR`, a folder of packaged charts, an air-gapped user's mirror (`../shared/charts`
//! in CI). A chart in the folder is `NAME-VERSION.tgz`, as `helm package` and `helm pull` name
//! it, or an unpacked folder `NAME`; either way its `Chart.yaml` must say the name and the
//! version `config/versions.toml` pins, or it is refused.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::tools;

/// The chart `reference` (`repo/name`) at `version` in `dir`, checked.
///
/// Traefik's chart is not among the packaged ones of `../shared/charts`: it comes as a Go module
/// (`cargo xtask tools install` puts it in `.state/tools/bin/traefik-chart`), which stands in
/// when `dir` lacks it.
pub fn locate(dir: &Path, reference: &str, version: &str) -> anyhow::Result<PathBuf> {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    let packaged = dir.join(format!("{name}-{version}.tgz"));
    let unpacked = dir.join(name);
    let mut candidates = vec![packaged, unpacked];
    if name == "traefik" {
        candidates.extend(tools::installed(tools::TRAEFIK_CHART));
    }
    let Some(found) = candidates.into_iter().find(|path| path.exists()) else {
        let others: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the charts folder {}", dir.display()))?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|file| file.starts_with(&format!("{name}-")))
            .collect();
        let others = if others.is_empty() { String::new() } else { format!("; it has {}", others.join(", ")) };
        anyhow::bail!(
            "{} has no chart {name} {version} (looked for {name}-{version}.tgz and the folder {name}){others}. \
             config/versions.toml pins {version}: put that version there (helm pull {reference} --version {version})",
            dir.display()
        );
    };
    let (found_name, found_version) = name_and_version(&found)?;
    anyhow::ensure!(
        (found_name.as_str(), found_version.as_str()) == (name, version),
        "{} is {found_name} {found_version}, not {name} {version} as config/versions.toml pins: cluster mode \
         installs the pinned versions only",
        found.display()
    );
    Ok(found)
}

/// The `name` and `version` of a chart's `Chart.yaml`, in a packaged chart (its first folder's
/// `Chart.yaml`) or an unpacked one.
pub fn name_and_version(chart: &Path) -> anyhow::Result<(String, String)> {
    let text = if chart.is_dir() {
        let file = chart.join("Chart.yaml");
        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
    } else {
        chart_yaml_in_package(chart).with_context(|| format!("cannot read the Chart.yaml in {}", chart.display()))?
    };
    let documents = yaml_rust2::YamlLoader::load_from_str(&text)
        .with_context(|| format!("the Chart.yaml of {} is not YAML", chart.display()))?;
    let field = |key: &str| documents.first().and_then(|chart| chart[key].as_str()).map(str::to_owned);
    match (field("name"), field("version")) {
        (Some(name), Some(version)) => Ok((name, version)),
        _ => anyhow::bail!("the Chart.yaml of {} lacks a name or a version", chart.display()),
    }
}

/// NAME/Chart.yaml of a packaged chart, not a dependency's NAME/charts/DEP/Chart.yaml.
fn chart_yaml_in_package(file: &Path) -> anyhow::Result<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(file)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path.components().count() == 2 && path.ends_with("Chart.yaml") {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return Ok(text);
        }
    }
    anyhow::bail!("no NAME/Chart.yaml in the archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packaged chart `name` whose Chart.yaml says `version`, with a dependency inside.
    fn package(dir: &Path, file: &str, name: &str, version: &str) {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(dir.join(file)).unwrap(),
            flate2::Compression::default(),
        );
        let mut archive = tar::Builder::new(gz);
        let mut add = |path: String, text: String| {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive.append_data(&mut header, path, text.as_bytes()).unwrap();
        };
        add(format!("{name}/charts/common/Chart.yaml"), "name: common\nversion: 9.9.9\n".into());
        add(format!("{name}/Chart.yaml"), format!("apiVersion: v2\nname: {name}\nversion: {version}\n"));
        archive.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn finds_the_pinned_version_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        package(dir.path(), "jaeger-4.11.1.tgz", "jaeger", "4.11.1");
        let found = locate(dir.path(), "jaegertracing/jaeger", "4.11.1").unwrap();
        assert_eq!(found, dir.path().join("jaeger-4.11.1.tgz"));
        assert_eq!(name_and_version(&found).unwrap(), ("jaeger".into(), "4.11.1".into()), "not the dependency's");

        let error = locate(dir.path(), "jaegertracing/jaeger", "4.12.0").unwrap_err().to_string();
        assert!(error.contains("has no chart jaeger 4.12.0"), "{error}");
        assert!(error.contains("it has jaeger-4.11.1.tgz"), "says what is there: {error}");
        assert!(error.contains("helm pull jaegertracing/jaeger --version 4.12.0"), "says how to fix it: {error}");

        // A file named for the pinned version that holds another one.
        package(dir.path(), "otel-collector-0.170.0.tgz", "otel-collector", "0.169.0");
        let error = locate(dir.path(), "open-telemetry/otel-collector", "0.170.0").unwrap_err().to_string();
        assert!(error.ends_with("is otel-collector 0.169.0, not otel-collector 0.170.0 as config/versions.toml pins: cluster mode installs the pinned versions only"), "{error}");
    }

    /// Every upstream chart of `config/versions.toml` but Traefik's is in `../shared/charts`
    /// at its pinned version (what CI installs from).
    #[test]
    fn the_shared_charts_are_the_pinned_versions() {
        let Some(shared) = testkit::real::shared("charts", "the packaged upstream charts") else { return };
        let versions = super::super::versions::Versions::read(&crate::project::root()).unwrap();
        for (release, chart) in versions.charts.iter().filter(|(release, _)| *release != "traefik") {
            let found = locate(&shared, &chart.chart, &chart.version).unwrap();
            assert!(found.is_file(), "{release}: {}", found.display());
        }
    }
}
