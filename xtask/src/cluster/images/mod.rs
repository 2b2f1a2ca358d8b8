//! The images of the bare provider, written by xtask from programs built here (no Docker, no
//! registry) and imported into the node's containerd. Each is one layer: the program, and, when
//! it is dynamically linked, the shared libraries and loader `ldd` names, copied from this
//! machine. They are named `workshop.local/NAME:TAG`, a registry that does not exist, so nothing
//! ever tries to pull them; the Pods that use them say `imagePullPolicy: Never` or
//! `IfNotPresent`.
//!
//! Which upstream image each stands in for is in [`CATALOG`] (and the README's table).

pub mod oci;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::{cmd, plan::Cmd, tools};

/// The registry part of every image xtask writes.
pub const REGISTRY: &str = "workshop.local";

/// Where a program of an image comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A tool of `cargo xtask tools` (its file in `.state/tools/bin/`).
    Tool(&'static str),
    /// Programs of this machine's Debian packages, with their libraries.
    Host(&'static [&'static str]),
}

/// One image of the catalog.
#[derive(Debug)]
pub struct Image {
    pub name: &'static str,
    /// The upstream image it stands in for, and why this one.
    pub stands_in_for: &'static str,
    pub source: Source,
    /// Where the program goes in the image (for a tool), and what runs.
    pub path: &'static str,
    pub entrypoint: &'static [&'static str],
    /// Part of the cluster itself (written for `--cluster-only` too), or of the workshop.
    pub cluster: bool,
}

pub const PAUSE: &str = "pause";
pub const COREDNS: &str = "coredns";
pub const CURL: &str = "curl";

pub const CATALOG: [Image; 5] = [
    Image {
        name: PAUSE,
        stands_in_for: "registry.k8s.io/pause: the Pods' sandbox; ours (tools/pause), static",
        source: Source::Tool(tools::PAUSE),
        path: "/pause",
        entrypoint: &["/pause"],
        cluster: true,
    },
    Image {
        name: COREDNS,
        stands_in_for: "registry.k8s.io/coredns/coredns: the same program from its Go module, static",
        source: Source::Tool(tools::COREDNS),
        path: "/coredns",
        entrypoint: &["/coredns"],
        cluster: true,
    },
    Image {
        name: CURL,
        stands_in_for: "docker.io/curlimages/curl (the chart's `helm test` client): Debian's curl and dash, \
                        dynamically linked, with their libraries",
        source: Source::Host(&["/usr/bin/curl", "/bin/sh"]),
        path: "/usr/bin/curl",
        entrypoint: &[],
        cluster: true,
    },
    Image {
        name: "jaeger",
        stands_in_for: "jaegertracing/jaeger: the same release from its Go module (dynamically linked: with glibc)",
        source: Source::Tool(tools::JAEGER),
        path: "/usr/local/bin/jaeger",
        entrypoint: &["/usr/local/bin/jaeger"],
        cluster: false,
    },
    Image {
        name: "otelcol",
        stands_in_for: "otel/opentelemetry-collector-contrib: our distribution of the same release \
                        (tools/otelcol, dynamically linked: with glibc)",
        source: Source::Tool(tools::COLLECTOR),
        path: "/usr/local/bin/otelcol",
        entrypoint: &["/usr/local/bin/otelcol"],
        cluster: false,
    },
];

impl Image {
    /// Its full name; the tag follows what it is built from.
    pub fn reference(&self) -> anyhow::Result<String> {
        Ok(format!("{REGISTRY}/{}:{}", self.name, self.tag()?))
    }

    fn tag(&self) -> anyhow::Result<String> {
        match self.source {
            Source::Tool(tool) => {
                let pins = tools::Pins::read()?;
                let version = pins.version(tools::tool(tool)?)?;
                Ok(version.trim_start_matches('v').replace(['(', ')', ' '], ""))
            }
            Source::Host(programs) => {
                // The version of the first program's Debian package, as it says (`curl 7.88.1 …`).
                let version = cmd!(programs[0], "--version").read().unwrap_or_default();
                Ok(version.split_whitespace().nth(1).unwrap_or("host").to_owned())
            }
        }
    }

    /// The file it is written to.
    pub fn file(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        Ok(dir.join(format!("{}-{}.tar", self.name, self.tag()?)))
    }

    /// Writes it into `dir` (unless written already) and returns the file.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let output = self.file(dir)?;
        if output.is_file() {
            return Ok(output);
        }
        let mut entries = vec![oci::Entry { path: "/etc/passwd".into(), contents: PASSWD.into(), mode: 0o644 }];
        entries.push(oci::Entry { path: "/etc/group".into(), contents: GROUP.into(), mode: 0o644 });
        match self.source {
            Source::Tool(tool) => {
                let program = tools::require(tool)?;
                entries.extend(with_libraries(&program, self.path)?);
            }
            Source::Host(programs) => {
                for program in programs {
                    entries.extend(with_libraries(Path::new(program), program)?);
                }
            }
        }
        let run = oci::RunConfig {
            entrypoint: self.entrypoint.iter().map(|word| word.to_string()).collect(),
            ..Default::default()
        };
        oci::write(&self.reference()?, &entries, &run, &output)?;
        Ok(output)
    }
}

/// Users and groups for programs that look themselves up (`nobody` for the test client).
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The README's table of the images xtask writes (a test keeps both in step).
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

/// The images in the node's containerd.
pub fn imported(socket: &Path) -> Vec<String> {
    ctr(socket).args(["images", "list", "--quiet"]).read().unwrap_or_default().lines().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_images() {
        let readme = std::fs::read_to_string(crate::project::root().join("README.md")).unwrap();
        let table = markdown_table();
        assert!(readme.contains(&table), "README.md must show the images xtask writes:\n{table}");
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
