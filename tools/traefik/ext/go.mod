// A stand-in for github.com/traefik/traefik/dynamic/ext: Traefik's go.mod replaces it with a
// folder of its own repository (pkg/config/dynamic/ext), which the Go module proxy's zip of
// github.com/traefik/traefik/v3 leaves out (a folder with its own go.mod is another module).
// Upstream it declares extension points of the open-source build that are empty structs.
module github.com/traefik/traefik/dynamic/ext

go 1.26.0
