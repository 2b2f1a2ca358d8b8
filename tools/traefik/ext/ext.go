// Package ext stands in for the extension points dynamic.HTTP and dynamic.Router embed in
// Traefik's open-source build (pkg/config/dynamic/http_config.go): empty there, empty here.
package ext

// HTTP is embedded in dynamic.HTTP.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}
