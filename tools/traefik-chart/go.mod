// The Traefik Helm chart the tests render (github.com/traefik/traefik-helm-chart, folder
// traefik/), fetched through the Go module proxy: its release tags are module versions. The
// version is the chart version of config/versions.toml (a test keeps them equal).
module workshop/tools/traefik-chart

go 1.26.0

require github.com/traefik/traefik-helm-chart v41.6.0+incompatible
