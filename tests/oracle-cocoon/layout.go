package main

// An OCI image layout as cocoon-common's Downloader, Uploader and
// cloudimg.BlobReader: blobs from blobs/sha256/<hex>, refs from index.json
// (org.opencontainers.image.ref.name). This is the thin adapter between the
// peer's registry interfaces and a directory; every format decision is left
// to the peer's own code.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const refAnnotation = "org.opencontainers.image.ref.name"

type layout struct{ dir string }

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

func (l layout) blobPath(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("not a sha256 digest: %q", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("not a sha256 digest: %q", digest)
	}
	return filepath.Join(l.dir, "blobs", "sha256", hexPart), nil
}

func (l layout) readIndex() (index, error) {
	var idx index
	data, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		return idx, err
	}
	err = json.Unmarshal(data, &idx)
	return idx, err
}

// resolve gives the manifest descriptor a ref (or a digest) names.
func (l layout) resolve(ref string) (descriptor, error) {
	idx, err := l.readIndex()
	if err != nil {
		return descriptor{}, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[refAnnotation] == ref || d.Digest == ref {
			return d, nil
		}
	}
	if strings.HasPrefix(ref, "sha256:") {
		return descriptor{Digest: ref}, nil
	}
	return descriptor{}, fmt.Errorf("no ref %q in %s/index.json", ref, l.dir)
}

func (l layout) readVerified(digest string) ([]byte, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if got := "sha256:" + sha256Hex(data); got != digest {
		return nil, fmt.Errorf("blob %s hashes to %s", digest, got)
	}
	return data, nil
}

// GetManifest implements snapshot.Downloader. The tag is a ref of the layout
// or, for an index child, a digest. The media type returned is the
// document's own mediaType field.
func (l layout) GetManifest(_ context.Context, name string, tag string) ([]byte, string, error) {
	ref := name + ":" + tag
	if strings.HasPrefix(tag, "sha256:") || name == "" {
		ref = tag
	}
	d, err := l.resolve(ref)
	if err != nil {
		return nil, "", err
	}
	data, err := l.readVerified(d.Digest)
	if err != nil {
		return nil, "", err
	}
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(data, &doc)
	return data, doc.MediaType, nil
}

// GetBlob implements snapshot.Downloader: a stream that fails at its end if
// the bytes do not hash to the digest, as a registry client's would.
func (l layout) GetBlob(_ context.Context, _ string, digest string) (io.ReadCloser, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return &verifying{f: f, h: sha256.New(), want: digest}, nil
}

// ReadBlob implements cloudimg.BlobReader.
func (l layout) ReadBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	return l.GetBlob(ctx, "", digest)
}

type verifying struct {
	f *os.File
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	want string
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	_, _ = v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("blob %s hashes to %s", v.want, got)
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.f.Close() }

// HasBlob implements snapshot.Uploader.
func (l layout) HasBlob(_ context.Context, _ string, digest string) (bool, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// PutBlob implements snapshot.Uploader: the body is hashed and checked
// against the digest before it is renamed into blobs/.
func (l layout) PutBlob(_ context.Context, _ string, digest string, body io.Reader, size int64) error {
	p, err := l.blobPath(digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("blob %s: %d bytes, declared %d", digest, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("blob declared %s hashes to %s", digest, got)
	}
	return os.Rename(tmp.Name(), p)
}

// PutManifest implements snapshot.Uploader: the manifest becomes a blob and
// the tag a ref in index.json (replacing an entry of the same ref).
func (l layout) PutManifest(ctx context.Context, name, tag string, data []byte, contentType string) error {
	ref := name + ":" + tag
	digest := "sha256:" + sha256Hex(data)
	if err := l.PutBlob(ctx, name, digest, strings.NewReader(string(data)), int64(len(data))); err != nil {
		return err
	}
	idx, err := l.readIndex()
	if errors.Is(err, os.ErrNotExist) {
		idx = index{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
		if err := os.WriteFile(filepath.Join(l.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	kept := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if d.Annotations[refAnnotation] != ref {
			kept = append(kept, d)
		}
	}
	idx.Manifests = append(kept, descriptor{
		MediaType:   contentType,
		Digest:      digest,
		Size:        int64(len(data)),
		Annotations: map[string]string{refAnnotation: ref},
	})
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, ".index.json.tmp")
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.dir, "index.json"))
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
