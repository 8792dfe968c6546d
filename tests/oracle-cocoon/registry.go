package main

// The registry forms of stream, push and cloudimg. cocoon-common v0.3.0 has
// its own registry client, oci.OCIRegistry (oci/oci.go: go-containerregistry's
// remote.Get, remote.Layer, remote.WriteLayer, remote.Put), which implements
// snapshot.Uploader and snapshot.Downloader; these subcommands hand it to the
// peer's Pusher, Stream and cloudimg.Stream unchanged. The only adapter here
// is blobReader, cloudimg.BlobReader over OCIRegistry.GetBlob with the
// repository fixed (cocoon-common's own callers do the same).

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/cocoonstack/cocoon-common/oci"
)

// registryRun runs a *-registry subcommand; handled is false for any other.
func registryRun(args []string) (handled bool, err error) {
	if len(args) < 2 || !strings.HasSuffix(args[0], "-registry") {
		return false, nil
	}
	reg, repoRef, err := openRegistry(args[1])
	if err != nil {
		return true, err
	}
	switch args[0] {
	case "push-registry":
		return true, push(reg, repoRef, args[2:])
	case "stream-registry":
		return true, stream(reg, repoRef, args[2:])
	case "cloudimg-registry":
		repo, tag := splitRef(repoRef)
		return true, cloudImage(blobReader{reg, repo}, repo, tag)
	}
	return true, fmt.Errorf("unknown subcommand %q", args[0])
}

// openRegistry splits HOST/REPO:TAG into cocoon-common's client rooted at
// HOST and REPO:TAG.
func openRegistry(ref string) (*oci.OCIRegistry, string, error) {
	host, repoRef, ok := strings.Cut(ref, "/")
	if !ok || repoRef == "" {
		return nil, "", fmt.Errorf("want HOST/REPO:TAG, got %q", ref)
	}
	return oci.NewOCIRegistry(host, authn.DefaultKeychain), repoRef, nil
}

// blobReader is cloudimg.BlobReader over one repository of the registry.
type blobReader struct {
	*oci.OCIRegistry
	repo string
}

func (b blobReader) ReadBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	return b.GetBlob(ctx, b.repo, digest)
}
