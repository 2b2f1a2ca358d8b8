//! The versions cluster mode installs, read from their one place: `config/versions.toml`.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use serde::Deserialize;

pub const FILE: &str = "config/versions.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub minimum: Minimum,
    /// By release name in the plan.
    pub charts: BTreeMap<String, Chart>,
    /// By what runs the image.
    pub images: BTreeMap<String, Image>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minimum {
    pub minikube: String,
    pub kubernetes: String,
    pub helm: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    /// `repository/chart`, as `helm upgrade --install` names it.
    pub chart: String,
    pub version: String,
    /// What the chart runs, for people.
    pub app: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The release (a key of `charts`, or `todo`, the app) whose values take the tag.
    pub chart: String,
    pub image: String,
    pub tag: String,
    /// The value that takes the tag (`--set <set>=<tag>`).
    pub set: String,
    /// The value that takes the image's name (with the registry, unless `registry` is given);
    /// `None` for an image with no stand-in on the bare provider.
    pub repository: Option<String>,
    /// The value that takes the registry, for a chart that names it apart from the repository.
    pub registry: Option<String>,
    /// The image of xtask's catalog that stands in on the bare provider (`None`: none can,
    /// the image must be pulled).
    pub bare: Option<String>,
}

impl Versions {
    pub fn read(root: &Path) -> anyhow::Result<Self> {
        let path = root.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a valid table of versions", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let versions: Self = toml::from_str(text)?;
        for (name, image) in &versions.images {
            anyhow::ensure!(
                image.chart == "todo" || versions.charts.contains_key(&image.chart),
                "image {name} is set in chart {}, which the table does not have",
                image.chart
            );
            if let Some(bare) = &image.bare {
                super::images::find(bare).with_context(|| format!("image {name} stands in as {bare}"))?;
                anyhow::ensure!(
                    image.repository.is_some(),
                    "image {name} stands in as {bare} without a `repository` value"
                );
            }
        }
        Ok(versions)
    }

    /// The chart installed as release `name`.
    pub fn chart(&self, name: &str) -> anyhow::Result<&Chart> {
        self.charts.get(name).with_context(|| format!("{FILE} has no version for the chart of release {name}"))
    }

    /// The `--set` arguments of the image tags that go into release `name`.
    pub fn image_sets(&self, name: &str) -> Vec<String> {
        self.images
            .values()
            .filter(|image| image.chart == name)
            .flat_map(|image| ["--set".to_owned(), format!("{}={}", image.set, image.tag)])
            .collect()
    }

    /// The `--set` arguments that point release `name` at the bare provider's images instead
    /// (after [`Versions::image_sets`]: Helm keeps the last value set).
    pub fn bare_image_sets(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let mut sets = Vec::new();
        for image in self.images.values().filter(|image| image.chart == name) {
            let (Some(bare), Some(repository)) = (&image.bare, &image.repository) else { continue };
            let reference = super::images::find(bare)?.reference()?;
            sets.extend(repository_sets(repository, image.registry.as_deref(), &image.set, &reference));
        }
        Ok(sets)
    }

    /// The table of docs/cluster.md: what cluster mode installs, at which version.
    pub fn markdown(&self) -> String {
        let mut table = String::from("| component | chart or image | version |\n| --- | --- | --- |\n");
        table.push_str(&format!(
            "| minikube, Kubernetes, Helm | (your tools) | {} or newer, Kubernetes {} or newer, Helm {} or newer (or 4) |\n",
            self.minimum.minikube, self.minimum.kubernetes, self.minimum.helm
        ));
        for chart in self.charts.values() {
            table.push_str(&format!("| {} | chart `{}` | {} |\n", chart.app, chart.chart, chart.version));
        }
        for (name, image) in &self.images {
            table.push_str(&format!("| {name} | image `{}` | {} |\n", image.image, image.tag));
        }
        table
    }
}

/// `--set` arguments naming the image `reference` (`registry/name:tag`) through the values
/// `repository`, `registry` (if the chart has one apart) and `tag`.
pub fn repository_sets(repository: &str, registry: Option<&str>, tag: &str, reference: &str) -> Vec<String> {
    let (name, version) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    let mut values = Vec::new();
    match registry.zip(name.split_once('/')) {
        Some((registry, (host, path))) => {
            values.push(format!("{registry}={host}"));
            values.push(format!("{repository}={path}"));
        }
        None => values.push(format!("{repository}={name}")),
    }
    values.push(format!("{tag}={version}"));
    values.into_iter().flat_map(|value| ["--set".to_owned(), value]).collect()
}

/// `cargo xtask versions`.
pub fn print(markdown: bool) -> anyhow::Result<()> {
    let versions = Versions::read(&crate::project::root())?;
    if markdown {
        print!("{}", versions.markdown());
        return Ok(());
    }
    for (release, chart) in &versions.charts {
        println!("{release:<24} chart {:<42} {:<10} {}", chart.chart, chart.version, chart.app);
    }
    for (name, image) in &versions.images {
        println!("{name:<24} image {:<42} {:<10} in {} ({})", image.image, image.tag, image.chart, image.set);
    }
    let minimum = &versions.minimum;
    println!(
        "needs minikube {} or newer, Kubernetes {} or newer, Helm {} or newer",
        minimum.minikube, minimum.kubernetes, minimum.helm
    );
    Ok(())
}

/// `major.minor.patch` as numbers, from text such as `v3.19.0+g1234` or `minikube version: v1.37.0`.
pub fn numeric(text: &str) -> Option<(u64, u64, u64)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut parts = text[start..].split(|c: char| !c.is_ascii_digit()).map(|part| part.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project;

    #[test]
    fn the_table_reads_and_names_existing_charts_for_its_images() {
        let versions = Versions::read(&project::root()).unwrap();
        assert!(versions.charts.len() >= 5);
        let image = "image='i'\ntag='1'\nset='image.tag'\nrepository='image.repository'";
        let table = |chart: &str, bare: &str| {
            format!(
                "[minimum]\nminikube='1'\nkubernetes='1'\nhelm='3'\n[charts]\n[images.x]\nchart='{chart}'\n{image}\nbare='{bare}'\n"
            )
        };
        let error = Versions::parse(&table("nowhere", "curl")).unwrap_err().to_string();
        assert!(error.contains("chart nowhere"), "{error}");
        let error = Versions::parse(&table("todo", "busybox")).unwrap_err().to_string();
        assert!(error.contains("image x stands in as busybox"), "{error}");
    }

    /// The bare provider's images, named through a chart's values: with the registry in the
    /// repository, or apart (Traefik's chart).
    #[test]
    fn a_local_image_through_the_charts_values() {
        let sets =
            |registry| repository_sets("image.repository", registry, "image.tag", "workshop.local/traefik:3.7.13");
        assert_eq!(sets(None), ["--set", "image.repository=workshop.local/traefik", "--set", "image.tag=3.7.13"]);
        assert_eq!(
            sets(Some("image.registry")),
            [
                "--set",
                "image.registry=workshop.local",
                "--set",
                "image.repository=traefik",
                "--set",
                "image.tag=3.7.13"
            ]
        );
    }

    #[test]
    fn versions_are_read_from_tool_output() {
        assert_eq!(numeric("v3.19.0+g3d8990f"), Some((3, 19, 0)));
        assert_eq!(numeric("minikube version: v1.37.0"), Some((1, 37, 0)));
        assert_eq!(numeric("v4.3"), Some((4, 3, 0)));
        assert_eq!(numeric("none"), None);
    }

    /// The table of docs/cluster.md is the table of versions.toml, verbatim.
    #[test]
    fn the_docs_show_the_pinned_versions() {
        let versions = Versions::read(&project::root()).unwrap();
        let page = std::fs::read_to_string(project::root().join("docs/cluster.md")).unwrap();
        assert!(
            page.contains(&versions.markdown()),
            "docs/cluster.md must contain the output of `cargo xtask versions --markdown`:\n{}",
            versions.markdown()
        );
    }

    /// The Traefik chart the tests render (a Go module under tools/) is the one the plan installs.
    #[test]
    fn the_rendered_traefik_chart_is_the_installed_one() {
        let go_mod = std::fs::read_to_string(project::root().join("tools/traefik-chart/go.mod")).unwrap();
        let module = crate::tools::go_mod_version(&go_mod, "github.com/traefik/traefik-helm-chart").unwrap();
        let versions = Versions::read(&project::root()).unwrap();
        assert_eq!(module, format!("v{}+incompatible", versions.chart("traefik").unwrap().version));
    }

    /// The collector image is the release the tests build and validate the pipeline with.
    #[test]
    fn the_collector_image_is_the_tested_collector() {
        let builder = std::fs::read_to_string(project::root().join("tools/otelcol/go.mod")).unwrap();
        let tested = crate::tools::go_mod_version(&builder, "go.opentelemetry.io/collector/cmd/builder").unwrap();
        let versions = Versions::read(&project::root()).unwrap();
        assert_eq!(format!("v{}", versions.images["collector"].tag), tested);
    }
}
