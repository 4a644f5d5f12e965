package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/testnet/report"
)

// FilesConfig configures the files scenario.
type FilesConfig struct {
	// Size is the size of each file.
	Size int64
	// Timeout bounds each download.
	Timeout time.Duration
	// Croc is the croc binary to compare with; empty: not installed.
	Croc string
	// Progress, if set, gets a line per download.
	Progress func(format string, args ...any)
}

// Files has, for every pair of peers, the first publish a file of
// random bytes (its own, so that only it provides it) and the second
// download it; it reports each download's time, throughput, the path it
// took, and whether the file on disk equals the original. A download
// that fails or differs is a problem. With croc, it also sends a file of
// the same size with croc through a croc relay on loopback and compares
// the throughput; a croc transfer that fails is a problem too.
func Files(ctx context.Context, n Net, cfg FilesConfig) (_ *report.Files, _ []string, err error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "parley-testnet-files-")
	if err != nil {
		return nil, nil, fmt.Errorf("create the files' directory: %w", err)
	}
	defer os.RemoveAll(dir)
	res := &report.Files{SizeBytes: cfg.Size}
	var problems []string
	for i, p := range pairs(n.Peers()) {
		t := transfer(ctx, p[0], p[1], filepath.Join(dir, fmt.Sprint(i)), cfg)
		progress("%s: %s in %s (%.1f MB/s), intact %v %s", t.Pair, t.Path, report.Dur(t.TookNS), t.MBPerSecond, t.Intact, t.Error)
		if t.Error != "" || !t.Intact {
			problems = append(problems, fmt.Sprintf("download %s: intact %v %s", t.Pair, t.Intact, t.Error))
		}
		res.Transfers = append(res.Transfers, t)
	}
	var rates []float64
	for _, t := range res.Transfers {
		if t.Error == "" {
			rates = append(rates, t.MBPerSecond)
		}
	}
	if len(rates) > 0 {
		slices.Sort(rates)
		res.MedianMBPerSecond = rates[(len(rates)-1)/2]
	}
	if cfg.Croc != "" {
		res.Croc = crocTransfer(ctx, cfg.Croc, dir, cfg.Size, cfg.Timeout)
		progress("croc: %.1f MB/s, intact %v %s", res.Croc.MBPerSecond, res.Croc.Intact, res.Croc.Error)
		if res.Croc.Error != "" || !res.Croc.Intact {
			problems = append(problems, fmt.Sprintf("croc transfer: intact %v %s", res.Croc.Intact, res.Croc.Error))
		} else {
			res.CrocRatio = res.MedianMBPerSecond / res.Croc.MBPerSecond
		}
	}
	return res, problems, nil
}

// transfer has from publish a new file in dir and to download it.
func transfer(ctx context.Context, from, to *Peer, dir string, cfg FilesConfig) report.FileTransfer {
	t := report.FileTransfer{Pair: from.Name + " → " + to.Name, NATs: natPair(from, to)}
	fail := func(step string, err error) report.FileTransfer {
		t.Error = fmt.Sprintf("%s: %v", step, err)
		return t
	}
	data := make([]byte, cfg.Size)
	rand.Read(data)
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		return fail("create the download folder", err)
	}
	src := filepath.Join(dir, "file.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return fail("write the file", err)
	}
	pub, err := from.API().Publish(ctx, src)
	if err != nil {
		return fail("publish", err)
	}
	start := time.Now()
	tr, err := to.API().Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: filepath.Join(dir, "out"), NoSeed: true})
	if err != nil {
		return fail("get", err)
	}
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if !poll(tctx, func() bool {
		all, err := to.API().Transfers(tctx)
		if err != nil {
			return false
		}
		for _, x := range all {
			if x.ID == tr.ID {
				tr = x
			}
		}
		return tr.State == apitype.TransferDone || tr.State == apitype.TransferFailed
	}) {
		return fail("download", fmt.Errorf("not done after %v (%s, %d of %d bytes)", cfg.Timeout, tr.State, tr.BytesDone, tr.BytesTotal))
	}
	took := time.Since(start)
	t.Path = currentLabel(ctx, to, from.Name)
	if tr.State == apitype.TransferFailed {
		return fail("download", fmt.Errorf("failed: %s", tr.Error))
	}
	t.TookNS, t.MBPerSecond = took.Nanoseconds(), float64(cfg.Size)/took.Seconds()/1e6
	got, err := os.ReadFile(tr.Path)
	if err != nil {
		return fail("read the download", err)
	}
	t.Intact = bytes.Equal(got, data)
	return t
}
