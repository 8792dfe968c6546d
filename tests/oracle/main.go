// Command oracle-go runs Go peers' own library code that the module proxy
// serves, for epoch-store's interop tests. Each subcommand is a thin adapter
// around the peer call named beside it; data goes stdin -> stdout.
//
//	zstd-encode-all LEVEL  klauspost/compress zstd Encoder.EncodeAll, as cocoon-common's
//	                       push pipeline compresses each chunk (snapshot/pushpipeline.go uploadChunk)
//	zstd-decode-all CAP    zstd Decoder.DecodeAll with WithDecoderMaxMemory(CAP) and
//	                       WithDecodeAllCapLimit, as cocoon-common's pull decodes a chunk
//	                       (snapshot/pullencoded.go newChunkPipeline, fetch)
//	zstd-decode-stream     zstd.NewReader over the whole stream, cocoon-common's pull of a
//	                       file with fewer than two chunks in flight (pullencoded.go streamFile)
//	zstd-frame-info        the frame header as klauspost reads it: one line of JSON
//	platforms              containerd/platforms: stdin {"parse": [SPEC...], "rank": [{"want":
//	                       SPEC, "platforms": [PLATFORM...]}...]}; stdout, for each, Parse's
//	                       result, and the indexes Only(Parse(want)) matches, sorted by its
//	                       Less (stable), as containerd picks an image from an index
//	eci-push, eci-pull     lf-edge/edge-containers' Pusher and Puller (see eci.go)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/containerd/platforms"
	"github.com/klauspost/compress/zstd"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oracle-go zstd-encode-all LEVEL | zstd-decode-all CAP | zstd-decode-stream | zstd-frame-info")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "oracle-go %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func intArg(args []string) (int64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("needs one number")
	}
	return strconv.ParseInt(args[0], 10, 64)
}

func run(cmd string, args []string) error {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	switch cmd {
	case "zstd-encode-all":
		level, err := intArg(args)
		if err != nil {
			return err
		}
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(int(level))),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		_, err = out.Write(enc.EncodeAll(in, nil))
		return err
	case "zstd-decode-all":
		limit, err := intArg(args)
		if err != nil {
			return err
		}
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return err
		}
		defer dec.Close()
		got, err := dec.DecodeAll(in, make([]byte, 0, limit))
		if err != nil {
			return err
		}
		_, err = out.Write(got)
		return err
	case "zstd-decode-stream":
		dec, err := zstd.NewReader(bufio.NewReader(os.Stdin))
		if err != nil {
			return err
		}
		defer dec.Close()
		_, err = io.Copy(out, dec)
		return err
	case "zstd-frame-info":
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		var h zstd.Header
		if err := h.Decode(in); err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(map[string]any{
			"hasContentSize": h.HasFCS,
			"contentSize":    h.FrameContentSize,
			"hasChecksum":    h.HasCheckSum,
			"singleSegment":  h.SingleSegment,
			"windowSize":     h.WindowSize,
		})
	}
	if cmd == "platforms" {
		return platformCases(out)
	}
	if handled, err := eciRun(cmd, args, out); handled {
		return err
	}
	return fmt.Errorf("unknown subcommand %q", cmd)
}

type rankCase struct {
	Want      string           `json:"want"`
	Platforms []specs.Platform `json:"platforms"`
}

// platformCases answers a batch of platforms.Parse and platforms.Only cases.
func platformCases(out io.Writer) error {
	var in struct {
		Parse []string   `json:"parse"`
		Rank  []rankCase `json:"rank"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return err
	}
	var res struct {
		Parse []any `json:"parse"`
		Rank  []any `json:"rank"`
	}
	for _, s := range in.Parse {
		p, err := platforms.Parse(s)
		if err != nil {
			res.Parse = append(res.Parse, map[string]string{"error": err.Error()})
			continue
		}
		res.Parse = append(res.Parse, p)
	}
	for _, c := range in.Rank {
		want, err := platforms.Parse(c.Want)
		if err != nil {
			res.Rank = append(res.Rank, map[string]string{"error": err.Error()})
			continue
		}
		m := platforms.Only(want)
		idx := []int{}
		for i, p := range c.Platforms {
			if m.Match(p) {
				idx = append(idx, i)
			}
		}
		sort.SliceStable(idx, func(a, b int) bool {
			return m.Less(c.Platforms[idx[a]], c.Platforms[idx[b]])
		})
		res.Rank = append(res.Rank, idx)
	}
	return json.NewEncoder(out).Encode(res)
}
