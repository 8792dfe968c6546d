// Command oracle-registry runs go-containerregistry's own registry
// (pkg/registry, the handler `crane registry serve` runs) with the
// referrers API on, for epoch-store's interop tests:
//
//	oracle-registry serve ADDR   registry.New(WithReferrersSupport(true)), in memory, on
//	                             ADDR (127.0.0.1:0 for a free port); prints "listening on
//	                             HOST:PORT" once it accepts connections, then serves until
//	                             killed. `crane registry serve` (v0.22.1) is the same handler
//	                             without referrers: there only the fallback tags work.
//
// A module of its own, not a subcommand of tests/oracle: go-containerregistry
// v0.22.1 needs klauspost/compress v1.19.2 (tests/oracle pins v1.18.6, what
// cocoon-common uses) and docker/cli v29, with which the oras-go v1 that
// lf-edge's edge-containers needs does not build.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: oracle-registry serve ADDR")
		os.Exit(2)
	}
	if err := serve(os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "oracle-registry serve: %v\n", err)
		os.Exit(1)
	}
}

// serve serves the registry on addr; returns only on an error.
func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Said on stdout, unbuffered: the test reads the port from it.
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	handler := registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
	return http.Serve(ln, handler)
}
