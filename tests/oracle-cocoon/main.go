// Command oracle-cocoon runs cocoon-common's own library calls over an OCI
// image layout, for epoch-store's interop tests (tests/it/cocoon_oracle.rs).
// Each subcommand is a thin adapter around one peer function:
//
//	stream   LAYOUT REF [LOCALNAME]   snapshot.Stream: the tar `cocoon snapshot import` reads, on stdout
//	push     LAYOUT REF TAR [knobs]   snapshot.Pusher.Push: TAR (a `cocoon snapshot export` stream) into LAYOUT as REF
//	cloudimg LAYOUT REF               cloudimg.Stream: the disk bytes of an OS image, on stdout
//	classify LAYOUT REF               manifest.Classify: the kind cocoon-common gives the ref's manifest
//	config   LAYOUT REF               snapshot.FetchSnapshotConfig + snapshot.MarshalEnvelope: the envelope it would write
//
// The same three over a registry instead of a layout, through cocoon-common's
// own registry client (oci.NewOCIRegistry: go-containerregistry's remote
// package, authn.DefaultKeychain; plain HTTP for 127.0.0.1 and localhost, as
// go-containerregistry decides), see registry.go:
//
//	push-registry     HOST/REPO:TAG TAR [knobs]
//	stream-registry   HOST/REPO:TAG [LOCALNAME]
//	cloudimg-registry HOST/REPO:TAG
//
// push takes the v2 knobs of snapshot.PushOptions as flags after TAR:
// -zstd LEVEL, -chunk MIB, -concurrency N, -budget MIB.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cocoonstack/cocoon-common/cloudimg"
	"github.com/cocoonstack/cocoon-common/manifest"
	"github.com/cocoonstack/cocoon-common/snapshot"
)

func main() {
	if handled, err := registryRun(os.Args[1:]); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "oracle-cocoon %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: oracle-cocoon stream|push|cloudimg|classify|config LAYOUT REF ...")
		os.Exit(2)
	}
	cmd, l, ref, rest := os.Args[1], layout{dir: os.Args[2]}, os.Args[3], os.Args[4:]
	var err error
	switch cmd {
	case "stream":
		err = stream(l, ref, rest)
	case "push":
		err = push(l, ref, rest)
	case "cloudimg":
		err = cloudImage(l, "", ref)
	case "classify":
		err = classify(l, ref)
	case "config":
		err = config(l, ref)
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oracle-cocoon %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// splitRef splits a layout ref NAME:TAG at its last colon into the
// repository name and tag the peer's registry calls take (the fleet calls
// Stream and Push with Name = the repository, so the envelope's name is it).
func splitRef(ref string) (name, tag string) {
	if i := strings.LastIndex(ref, ":"); i > 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// stream calls snapshot.Stream, which follows an index to its linux/amd64
// child, validates the layers (fail closed) and writes the import tar.
func stream(l snapshot.Downloader, ref string, rest []string) error {
	name, tag := splitRef(ref)
	raw, _, err := l.GetManifest(context.Background(), name, tag)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	opts := snapshot.StreamOptions{Name: name, Writer: out}
	if len(rest) > 0 {
		opts.LocalName = rest[0]
	}
	if err := snapshot.Stream(context.Background(), raw, l, opts); err != nil {
		return err
	}
	return out.Flush()
}

// tarRunner is a snapshot.CocoonRunner whose export is a given tar file.
type tarRunner struct{ path string }

func (t tarRunner) Export(context.Context, string) (io.ReadCloser, func() error, error) {
	f, err := os.Open(t.path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() error { return nil }, nil
}

// push calls snapshot.Pusher.Push with the layout as its Uploader.
func push(l snapshot.Uploader, ref string, rest []string) error {
	if len(rest) < 1 {
		return fmt.Errorf("push needs TAR")
	}
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	level := fs.Int("zstd", 0, "PushOptions.ZstdLevel")
	chunk := fs.Int("chunk", 0, "PushOptions.ChunkSizeMiB")
	conc := fs.Int("concurrency", 0, "PushOptions.Concurrency")
	budget := fs.Int("budget", 0, "PushOptions.MemoryBudgetMiB")
	if err := fs.Parse(rest[1:]); err != nil {
		return err
	}
	p := snapshot.Pusher{Uploader: l, Cocoon: tarRunner{path: rest[0]}}
	name, tag := splitRef(ref)
	res, err := p.Push(context.Background(), snapshot.PushOptions{
		Name: name, Tag: tag,
		ZstdLevel: *level, ChunkSizeMiB: *chunk, Concurrency: *conc, MemoryBudgetMiB: *budget,
	})
	if err != nil {
		return err
	}
	fmt.Println(res.ManifestDigest)
	return nil
}

// imageSource is what cloudimg.Stream reads from: the manifest, then blobs.
type imageSource interface {
	GetManifest(ctx context.Context, name, tag string) ([]byte, string, error)
	cloudimg.BlobReader
}

// cloudImage calls cloudimg.Stream on the manifest GetManifest(name, tag) gives.
func cloudImage(l imageSource, name, tag string) error {
	raw, _, err := l.GetManifest(context.Background(), name, tag)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	if err := cloudimg.Stream(context.Background(), raw, l, out); err != nil {
		return err
	}
	return out.Flush()
}

// classify calls manifest.Classify on the ref's manifest bytes.
func classify(l layout, ref string) error {
	raw, _, err := l.GetManifest(context.Background(), "", ref)
	if err != nil {
		return err
	}
	kind, err := manifest.Classify(raw)
	if err != nil {
		return err
	}
	fmt.Println(kind)
	return nil
}

// config calls snapshot.FetchSnapshotConfig and snapshot.MarshalEnvelope.
func config(l layout, ref string) error {
	raw, _, err := l.GetManifest(context.Background(), "", ref)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return err
	}
	name, _ := splitRef(ref)
	cfg, err := snapshot.FetchSnapshotConfig(context.Background(), l, name, m.Config)
	if err != nil {
		return err
	}
	env, err := snapshot.MarshalEnvelope(cfg, name)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(env)
	return err
}
