//! The images of the bare provider, written by xtask from programs built here (no Docker, no
//! registry) and imported into the node's containerd. Each is one layer: the program, and, when
//! it is dynamically linked, the shared libraries and loader `ldd` names, copied from this
//! machine. They are named `workshop.local/NAME:TAG`, a registry that does not exist, so nothing
//! ever tries to pull them; the Pods that use them say `imagePullPolicy: Never` or
//! `IfNotPresent`.
//!
//! Which upstream image each stands in for is in [`CATALOG`] (and the table of docs/cluster.md).

pub mod oci;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::{cmd, project, steps::Cmd, tools};

/// The registry part of every image xtask writes.
pub const REGISTRY: &str = "workshop.local";

/// Where the programs of an image come from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A tool of `cargo xtask tools` (its file in `.state/tools/bin/`), at `Image::path`.
    Tool(&'static str),
    /// A binary of this workspace, built with `cargo build --release` (the Dockerfile's build),
    /// at `Image::path`.
    Workspace(&'static str),
    /// Programs of this machine's Debian packages, each at its own path, with their libraries;
    /// the first one's version is the tag.
    Host(&'static [&'static str]),
}

/// A file or folder an image carries besides its programs and their libraries.
#[derive(Clone, Copy, Debug)]
pub enum Extra {
    /// A file of this repository, executable, at a path in the image.
    Script { from: &'static str, to: &'static str },
    /// A folder of this machine, with everything under it, at the same path.
    HostFolder(&'static str),
}

/// One image of the catalog.
#[derive(Debug)]
pub struct Image {
    pub name: &'static str,
    /// The upstream image it stands in for, and why this one.
    pub stands_in_for: &'static str,
    pub source: Source,
    /// Where the program goes in the image (for a tool or a workspace binary), and what runs.
    pub path: &'static str,
    pub entrypoint: &'static [&'static str],
    pub extras: &'static [Extra],
    /// The image's environment (`PATH` for programs that call others by name).
    pub env: &'static [&'static str],
    /// Part of the cluster itself (written for `--cluster-only` too), or of the workshop.
    pub cluster: bool,
}

pub const PAUSE: &str = "pause";
pub const COREDNS: &str = "coredns";
pub const CURL: &str = "curl";
pub const JAEGER: &str = "jaeger";
pub const COLLECTOR: &str = "otelcol";
pub const TRAEFIK: &str = "traefik";
pub const APISERVER: &str = "apiserver";
pub const TODOMANAGER: &str = "todomanager";
pub const MARIADB: &str = "mariadb";

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub const CATALOG: [Image; 9] = [
    Image {
        name: PAUSE,
        stands_in_for: "registry.k8s.io/pause: the Pods' sandbox; ours (tools/pause), static",
        source: Source::Tool(tools::PAUSE),
        path: "/pause",
        entrypoint: &["/pause"],
        extras: &[],
        env: &[],
        cluster: true,
    },
    Image {
        name: COREDNS,
        stands_in_for: "registry.k8s.io/coredns/coredns: the same program from its Go module, static",
        source: Source::Tool(tools::COREDNS),
        path: "/coredns",
        entrypoint: &["/coredns"],
        extras: &[],
        env: &[],
        cluster: true,
    },
    Image {
        name: CURL,
        stands_in_for: "docker.io/curlimages/curl (the chart's `helm test` client): Debian's curl and dash, \
                        dynamically linked, with their libraries",
        source: Source::Host(&["/usr/bin/curl", "/bin/sh"]),
        path: "/usr/bin/curl",
        entrypoint: &[],
        extras: &[],
        env: &[PATH],
        cluster: true,
    },
    Image {
        name: JAEGER,
        stands_in_for: "jaegertracing/jaeger: the release the tests run, from its Go module (older than the chart's: \
                        see config/versions.toml; dynamically linked: with glibc)",
        source: Source::Tool(tools::JAEGER),
        path: "/usr/local/bin/jaeger",
        entrypoint: &["/usr/local/bin/jaeger"],
        extras: &[],
        // As upstream's image (cmd/jaeger/Dockerfile): its built-in all-in-one configuration
        // listens on localhost unless told otherwise.
        env: &["JAEGER_LISTEN_HOST=0.0.0.0"],
        cluster: false,
    },
    Image {
        name: COLLECTOR,
        stands_in_for: "otel/opentelemetry-collector-contrib: our distribution of the same release \
                        (tools/otelcol, dynamically linked: with glibc)",
        source: Source::Tool(tools::COLLECTOR),
        path: "/usr/local/bin/otelcol",
        entrypoint: &["/usr/local/bin/otelcol"],
        extras: &[],
        env: &[],
        cluster: false,
    },
    Image {
        name: TRAEFIK,
        stands_in_for: "traefik: the same release from its Go module (tools/traefik, which says what stands in for \
                        the modules the proxy does not serve; dynamically linked: with glibc)",
        source: Source::Tool(tools::TRAEFIK),
        path: "/usr/local/bin/traefik",
        entrypoint: &["/usr/local/bin/traefik"],
        extras: &[],
        env: &[],
        cluster: false,
    },
    Image {
        name: APISERVER,
        stands_in_for: "the Dockerfile's apiserver target: the same release build, dynamically linked, with its \
                        libraries (glibc, libgcc) in place of distroless/cc",
        source: Source::Workspace("apiserver"),
        path: "/usr/local/bin/apiserver",
        entrypoint: &["/usr/local/bin/apiserver"],
        extras: &[],
        env: &[],
        cluster: false,
    },
    Image {
        name: TODOMANAGER,
        stands_in_for: "the Dockerfile's todomanager target: the same release build, dynamically linked, with its \
                        libraries (glibc, libgcc) in place of distroless/cc",
        source: Source::Workspace("todomanager"),
        path: "/usr/local/bin/todomanager",
        entrypoint: &["/usr/local/bin/todomanager"],
        extras: &[],
        env: &[],
        cluster: false,
    },
    Image {
        name: MARIADB,
        stands_in_for: "docker.io/library/mariadb: Debian's MariaDB (its server, client, dash and cat, with their \
                        libraries) and our config/bare/mariadb/ scripts for the environment contract and the \
                        healthcheck.sh the chart uses",
        source: Source::Host(&["/usr/sbin/mariadbd", "/usr/bin/mariadb", "/bin/sh", "/bin/cat"]),
        path: "/usr/sbin/mariadbd",
        entrypoint: &["/usr/local/bin/docker-entrypoint.sh"],
        extras: &[
            Extra::Script {
                from: "config/bare/mariadb/docker-entrypoint.sh",
                to: "/usr/local/bin/docker-entrypoint.sh",
            },
            Extra::Script { from: "config/bare/mariadb/healthcheck.sh", to: "/usr/local/bin/healthcheck.sh" },
            // The system tables' SQL, error messages and character sets.
            Extra::HostFolder("/usr/share/mysql"),
        ],
        env: &[PATH],
        cluster: false,
    },
];

impl Image {
    /// Its full name; the tag follows what it is built from.
    pub fn reference(&self) -> anyhow::Result<String> {
        Ok(format!("{REGISTRY}/{}:{}", self.name, self.tag()?))
    }

    pub fn tag(&self) -> anyhow::Result<String> {
        match self.source {
            Source::Tool(tool) => {
                let pins = tools::Pins::read()?;
                let mut version = pins.version(tools::tool(tool)?)?.to_owned();
                if tool == tools::JAEGER {
                    // The release, not the Go module's v1 tag (tools::jaeger_release).
                    version = tools::jaeger_release(&version)?;
                }
                Ok(version.trim_start_matches('v').to_owned())
            }
            Source::Workspace(_) => Ok(crate::cluster::stack::image_tag(&project::root())),
            Source::Host(programs) => Ok(host_version(&cmd!(programs[0], "--version").read().unwrap_or_default())),
        }
    }

    /// The file it is written to: NAME-TAG-RECIPE.tar, RECIPE a hash of how it is made here
    /// (paths, entrypoint, environment, extras), so that a change to the catalog writes it anew.
    pub fn file(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let recipe =
            format!("{:?} {:?} {:?} {:?} {:?}", self.source, self.path, self.entrypoint, self.env, self.extras);
        Ok(dir.join(format!("{}-{}-{:08x}.tar", self.name, self.tag()?, project::fnv1a(recipe.as_bytes()) as u32)))
    }

    /// The files it is made from, whose change makes a written image stale (a rebuilt tool
    /// keeps its version, so the tag alone does not tell).
    fn inputs(&self) -> Vec<PathBuf> {
        let mut inputs = match self.source {
            Source::Tool(tool) => vec![tools::bin_dir().join(tool)],
            Source::Workspace(package) => vec![project::root().join("target/release").join(package)],
            Source::Host(programs) => programs.iter().map(PathBuf::from).collect(),
        };
        for extra in self.extras {
            if let Extra::Script { from, .. } = extra {
                inputs.push(project::root().join(from));
            }
        }
        inputs
    }

    /// Its file in `dir`, if written after everything it is made from.
    pub fn current_file(&self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        let file = self.file(dir)?;
        let modified = |path: &Path| std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
        let Some(written) = modified(&file) else { return Ok(None) };
        let current = self.inputs().iter().all(|input| modified(input).is_none_or(|changed| changed <= written));
        Ok(current.then_some(file))
    }

    /// Writes it into `dir` (unless written since its inputs changed) and returns the file.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let output = self.file(dir)?;
        if self.current_file(dir)?.is_some() {
            return Ok(output);
        }
        let mut entries = vec![oci::Entry { path: "/etc/passwd".into(), contents: PASSWD.into(), mode: 0o644 }];
        entries.push(oci::Entry { path: "/etc/group".into(), contents: GROUP.into(), mode: 0o644 });
        match self.source {
            Source::Tool(tool) => {
                let program = tools::require(tool)?;
                entries.extend(with_libraries(&program, self.path)?);
            }
            Source::Workspace(package) => {
                release_build().run("the workspace must build: cargo build --release")?;
                let program = project::root().join("target/release").join(package);
                entries.extend(with_libraries(&program, self.path)?);
            }
            Source::Host(programs) => {
                for program in programs {
                    entries.extend(with_libraries(Path::new(program), program)?);
                }
            }
        }
        for extra in self.extras {
            entries.extend(extra.entries()?);
        }
        let run = oci::RunConfig {
            entrypoint: self.entrypoint.iter().map(|word| word.to_string()).collect(),
            env: self.env.iter().map(|variable| variable.to_string()).collect(),
            ..Default::default()
        };
        oci::write(&self.reference()?, &entries, &run, &output)?;
        // Earlier versions of this image (another tag or recipe) are of no more use.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let earlier = file
                .strip_prefix(&format!("{}-", self.name))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            if earlier && entry.path() != output {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(output)
    }
}

/// The release build of the workspace's binaries, as the Dockerfile's builder stage runs it: all
/// at once, since building them one by one unifies their dependencies' features differently
/// and builds the shared ones twice (measured: 143 s, then 174 s more for the second).
pub fn release_build() -> Cmd {
    let packages = CATALOG.iter().filter_map(|image| match image.source {
        Source::Workspace(package) => Some(["--package", package]),
        _ => None,
    });
    cmd!("cargo", "build", "--release", "--locked").args(packages.flatten())
}

/// The version a Debian program prints, as a tag: its first word that starts with a digit, up
/// to a `-` (`curl 7.88.1 (x86_64…` gives 7.88.1, `mariadbd  Ver 10.11.19-MariaDB-0+deb12u1`
/// gives 10.11.19).
fn host_version(version_output: &str) -> String {
    version_output
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|word| word.split('-').next())
        .unwrap_or("host")
        .to_owned()
}

impl Extra {
    fn entries(&self) -> anyhow::Result<Vec<oci::Entry>> {
        let read = |file: &Path| std::fs::read(file).with_context(|| format!("cannot read {}", file.display()));
        match *self {
            Extra::Script { from, to } => {
                Ok(vec![oci::Entry { path: to.to_owned(), contents: read(&project::root().join(from))?, mode: 0o755 }])
            }
            Extra::HostFolder(folder) => {
                let mut entries = Vec::new();
                let mut pending = vec![PathBuf::from(folder)];
                while let Some(dir) = pending.pop() {
                    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
                        let path = entry?.path();
                        if path.is_dir() {
                            pending.push(path);
                        } else {
                            entries.push(oci::Entry {
                                path: path.display().to_string(),
                                contents: read(&path)?,
                                mode: 0o644,
                            });
                        }
                    }
                }
                entries.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(entries)
            }
        }
    }
}

/// Users and groups for programs that look themselves up (`nobody` for the test client).
/// `mysql` (999) as in the official MariaDB image, which the chart runs as; `nonroot` (65532)
/// as in distroless, which the Dockerfile's images and Traefik's chart run as.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nmysql:x:999:999:MariaDB:/var/lib/mysql:/bin/false\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nmysql:x:999:\nnonroot:x:65532:\nnogroup:x:65534:\n";

/// The table of docs/cluster.md of the images xtask writes (a test keeps both in step).
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut table = String::from("| image | stands in for |\n| --- | --- |\n");
    for image in &CATALOG {
        table.push_str(&format!(
            "| `{REGISTRY}/{}` | {} |\n",
            image.name,
            image.stands_in_for.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    table
}

pub fn find(name: &str) -> anyhow::Result<&'static Image> {
    CATALOG.iter().find(|image| image.name == name).with_context(|| format!("no image named {name}"))
}

/// `program` at `path` in the image, and the libraries and loader it needs (`ldd`), each at the
/// path the loader looks for it. A static program (`ldd` says "not a dynamic executable") comes
/// alone.
fn with_libraries(program: &Path, path: &str) -> anyhow::Result<Vec<oci::Entry>> {
    let read = |file: &Path| std::fs::read(file).with_context(|| format!("cannot read {}", file.display()));
    let mut entries = vec![oci::Entry { path: path.to_owned(), contents: read(program)?, mode: 0o755 }];
    for library in libraries(&ldd(program).read().unwrap_or_default()) {
        entries.push(oci::Entry { path: library.display().to_string(), contents: read(&library)?, mode: 0o755 });
    }
    Ok(entries)
}

pub fn ldd(program: &Path) -> Cmd {
    cmd!("ldd", program.display())
}

/// The files of `ldd`'s answer: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the
/// loader `/lib64/ld-linux-x86-64.so.2 (0x…)`; not the kernel's `linux-vdso.so.1`.
pub fn libraries(ldd_output: &str) -> Vec<PathBuf> {
    ldd_output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=>").map_or(line, |(_, target)| target.trim());
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// `ctr` against the node's containerd (its socket), in the namespace the kubelet uses.
pub fn ctr(socket: &Path) -> Cmd {
    cmd!("ctr", "--address", socket.display(), "--namespace", "k8s.io")
}

/// `ctr images import` into the node's containerd.
pub fn import(socket: &Path, file: &Path) -> Cmd {
    ctr(socket).args(["images", "import"]).args([file.display()])
}

/// The images in the node's containerd: reference → manifest digest.
pub fn imported(socket: &Path) -> std::collections::BTreeMap<String, String> {
    // `ctr images list`: REF TYPE DIGEST SIZE PLATFORMS LABELS.
    let listed = ctr(socket).args(["images", "list"]).read().unwrap_or_default();
    listed
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            let reference = columns.next()?;
            Some((reference.to_owned(), columns.nth(1)?.to_owned()))
        })
        .collect()
}

/// Whether the node has `image` as its current file in `dir` says (same manifest digest).
pub fn is_imported(image: &Image, dir: &Path, imported: &std::collections::BTreeMap<String, String>) -> bool {
    let Ok(Some(file)) = image.current_file(dir) else { return false };
    let (Ok(reference), Ok(digest)) = (image.reference(), oci::manifest_digest(&file)) else { return false };
    imported.get(&reference) == Some(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_show_the_images() {
        let page = std::fs::read_to_string(crate::project::root().join("docs/cluster.md")).unwrap();
        let table = markdown_table();
        assert!(page.contains(&table), "docs/cluster.md must show the images xtask writes:\n{table}");
    }

    /// The collector and Traefik the bare cluster runs are the releases config/versions.toml
    /// pins for the charts. (Jaeger is not yet: the tools build v2.13.0, the chart pins 2.19.0.)
    #[test]
    fn the_images_run_the_pinned_releases() {
        let versions = crate::cluster::versions::Versions::read(&project::root()).unwrap();
        for (pinned, image) in [("collector", COLLECTOR), ("traefik", TRAEFIK)] {
            let tag = &versions.images[pinned].tag;
            assert_eq!(find(image).unwrap().tag().unwrap(), tag.trim_start_matches('v'), "{image}");
        }
    }

    #[test]
    fn a_debian_program_says_its_version() {
        assert_eq!(host_version("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1"), "7.88.1");
        assert_eq!(host_version("mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64"), "10.11.19");
        assert_eq!(host_version(""), "host");
    }

    /// The MariaDB image carries the scripts of the chart's contract and what they call.
    #[test]
    fn the_mariadb_image_has_its_entrypoint_and_healthcheck() {
        let image = find(MARIADB).unwrap();
        let scripts: Vec<_> = image
            .extras
            .iter()
            .filter(|extra| matches!(extra, Extra::Script { .. }))
            .flat_map(|extra| extra.entries().unwrap())
            .collect();
        let path = |path: &str| scripts.iter().find(|entry| entry.path == path).unwrap_or_else(|| panic!("{path}"));
        assert_eq!(image.entrypoint, ["/usr/local/bin/docker-entrypoint.sh"]);
        let entrypoint = String::from_utf8_lossy(&path("/usr/local/bin/docker-entrypoint.sh").contents).into_owned();
        for variable in ["MARIADB_DATABASE", "MARIADB_USER", "MARIADB_PASSWORD", "MARIADB_ROOT_PASSWORD"] {
            assert!(entrypoint.contains(variable), "{variable}");
        }
        assert_eq!(path("/usr/local/bin/healthcheck.sh").mode, 0o755);
        let chart = std::fs::read_to_string(project::root().join("helm/todo-app/templates/mariadb.yaml")).unwrap();
        assert!(chart.contains(r#"command: ["healthcheck.sh", "--connect", "--innodb_initialized"]"#));
    }

    #[test]
    fn reads_the_libraries_from_ldd() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)\n\
                      \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            libraries(output),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(libraries("\tnot a dynamic executable\n").is_empty());
    }

    /// A dynamically linked program of this machine comes with its loader and libc.
    #[test]
    fn a_dynamic_program_carries_its_loader() {
        let entries = with_libraries(Path::new("/bin/sh"), "/bin/sh").unwrap();
        let paths: Vec<&str> = entries.iter().map(|entry| entry.path.as_str()).collect();
        assert_eq!(paths[0], "/bin/sh");
        assert!(paths.iter().any(|path| path.ends_with("/libc.so.6")), "{paths:?}");
        assert!(paths.iter().any(|path| path.contains("ld-linux")), "{paths:?}");
    }
}
