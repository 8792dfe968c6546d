package main

// lf-edge edge-container images (ECI) through lf-edge's own
// github.com/lf-edge/edge-containers/pkg/registry package:
//
//	eci-push DIR REF FORMAT [--timestamp UNIX] [--os OS] [--arch ARCH]
//	         [--kernel F] [--initrd F] [--root F:TYPE] [--disk F:TYPE]...
//	         [--config F] [--other F]...
//	                       registry.Pusher.Push of an Artifact of FileSources (FORMAT
//	                       artifacts or legacy) into DIR through its directory resolver
//	                       (resolver.NewDirectory), as `eci push` does; prints the digest
//	eci-pull DIR REF OUTDIR DISKS
//	                       registry.Puller.Pull from DIR (its directory resolver, which
//	                       reads only index.json's first entry) into a FilesTarget whose
//	                       Kernel, Initrd, Root and DISKS Disks writers are OUTDIR/kernel,
//	                       initrd, root, disk-N (each created at its first byte); prints
//	                       the Artifact Pull returns as JSON
//	eci-push-registry HOST/REPO:TAG FORMAT [options]
//	eci-pull-registry HOST/REPO:TAG OUTDIR DISKS
//	                       the same with lf-edge's own registry resolver
//	                       (resolver.NewRegistry, as its CLI's --remote does: oras-go
//	                       v1's docker client, credentials from $DOCKER_CONFIG;
//	                       containerd's resolver speaks plain HTTP to localhost and
//	                       loopback addresses)

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lf-edge/edge-containers/pkg/registry"
	"github.com/lf-edge/edge-containers/pkg/resolver"
)

// eciRun runs an eci-* subcommand; handled is false for any other name.
func eciRun(cmd string, args []string, out io.Writer) (handled bool, err error) {
	switch cmd {
	case "eci-push":
		return true, eciPush(args, out)
	case "eci-pull":
		return true, eciPull(args, out)
	case "eci-push-registry", "eci-pull-registry":
		// The directory argument is replaced by the registry resolver.
		args = append([]string{registryTarget}, args...)
		if cmd == "eci-push-registry" {
			return true, eciPush(args, out)
		}
		return true, eciPull(args, out)
	}
	return false, nil
}

// registryTarget in place of DIR means lf-edge's registry resolver.
const registryTarget = "\x00registry"

// eciResolver is lf-edge's directory resolver over dir, or its registry
// resolver for registryTarget.
func eciResolver(dir string) (resolver.ResolverCloser, error) {
	if dir == registryTarget {
		_, r, err := resolver.NewRegistry(context.Background())
		return r, err
	}
	_, r, err := resolver.NewDirectory(context.Background(), dir)
	return r, err
}

// eciDisk parses F:TYPE as lf-edge's cmd/push.go diskToStruct does.
func eciDisk(s string) (*registry.Disk, error) {
	parts := strings.SplitN(s, ":", 2)
	if len(parts) != 2 {
		return nil, fmt.Errorf("expected <path>:<type>, got %q", s)
	}
	t, ok := registry.NameToType[parts[1]]
	if !ok {
		return nil, fmt.Errorf("unknown disk type: %s", parts[1])
	}
	return &registry.Disk{Source: &registry.FileSource{Path: parts[0]}, Type: t}, nil
}

func eciPush(args []string, out io.Writer) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: eci-push DIR REF FORMAT [options]")
	}
	dir, ref, formatName := args[0], args[1], args[2]
	var format registry.Format
	switch formatName {
	case "artifacts":
		format = registry.FormatArtifacts
	case "legacy":
		format = registry.FormatLegacy
	default:
		return fmt.Errorf("unknown format %q", formatName)
	}
	art := &registry.Artifact{}
	pusher := registry.Pusher{Artifact: art, Image: ref}
	var opts registry.ConfigOpts
	rest := args[3:]
	for i := 0; i < len(rest); i += 2 {
		if i+1 >= len(rest) {
			return fmt.Errorf("%s needs a value", rest[i])
		}
		flag, val := rest[i], rest[i+1]
		switch flag {
		case "--timestamp":
			secs, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return err
			}
			t := time.Unix(secs, 0).UTC()
			pusher.Timestamp = &t
		case "--os":
			opts.OS = val
		case "--arch":
			opts.Architecture = val
		case "--kernel":
			art.Kernel = &registry.FileSource{Path: val}
		case "--initrd":
			art.Initrd = &registry.FileSource{Path: val}
		case "--config":
			art.Config = &registry.FileSource{Path: val}
		case "--other":
			art.Other = append(art.Other, &registry.FileSource{Path: val})
		case "--root", "--disk":
			d, err := eciDisk(val)
			if err != nil {
				return err
			}
			if flag == "--root" {
				art.Root = d
			} else {
				art.Disks = append(art.Disks, d)
			}
		default:
			return fmt.Errorf("unknown option %q", flag)
		}
	}
	dirResolver, err := eciResolver(dir)
	if err != nil {
		return err
	}
	digest, err := pusher.Push(format, false, io.Discard, opts, dirResolver)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, digest)
	return err
}

// lazyFile creates its file at the first Write, so that a writer the
// Puller never uses leaves no file behind.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Write(p)
}

func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

func eciPull(args []string, out io.Writer) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: eci-pull DIR REF OUTDIR DISKS")
	}
	dir, ref, outDir := args[0], args[1], args[2]
	disks, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	files := []*lazyFile{}
	file := func(name string) *lazyFile {
		f := &lazyFile{path: filepath.Join(outDir, name)}
		files = append(files, f)
		return f
	}
	target := &registry.FilesTarget{Kernel: file("kernel"), Initrd: file("initrd"), Root: file("root")}
	for i := 0; i < disks; i++ {
		target.Disks = append(target.Disks, file(fmt.Sprintf("disk-%d", i)))
	}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	dirResolver, err := eciResolver(dir)
	if err != nil {
		return err
	}
	puller := registry.Puller{Image: ref}
	desc, art, err := puller.Pull(target, 0, false, io.Discard, dirResolver)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			return err
		}
	}
	res := map[string]any{"digest": desc.Digest.String()}
	if art.Kernel != nil {
		res["kernel"] = art.Kernel.GetPath()
	}
	if art.Initrd != nil {
		res["initrd"] = art.Initrd.GetPath()
	}
	disk := func(d *registry.Disk) map[string]string {
		return map[string]string{"title": d.Source.GetPath(), "type": d.Type.String()}
	}
	if art.Root != nil {
		res["root"] = disk(art.Root)
	}
	list := []map[string]string{}
	for _, d := range art.Disks {
		list = append(list, disk(d))
	}
	res["disks"] = list
	return json.NewEncoder(out).Encode(res)
}
