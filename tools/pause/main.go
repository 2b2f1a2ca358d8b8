// pause holds a Pod's namespaces for its containers (the kubelet's "sandbox"): it does nothing
// until it is told to stop. Put alone in an image by xtask
// (xtask/src/cluster/images), which containerd names as its sandbox_image. It uses no cgo, so
// Go links it statically.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
