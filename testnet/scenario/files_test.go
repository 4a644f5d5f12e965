package scenario

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestFilesChecksContent: a download that differs from the published
// file is reported as not intact, and is a problem.
func TestFilesChecksContent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, corrupt := range []bool{false, true} {
		n := newFakeNet("alice", "bob", "carol")
		n.corrupt = corrupt
		res, problems, err := Files(ctx, n, FilesConfig{Size: 64 << 10, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Transfers) != 3 {
			t.Fatalf("%d transfers, want one per pair", len(res.Transfers))
		}
		for _, tr := range res.Transfers {
			if tr.Intact == corrupt || tr.Error != "" || tr.MBPerSecond <= 0 {
				t.Errorf("corrupt %v: transfer %+v", corrupt, tr)
			}
		}
		if want := map[bool]int{false: 0, true: 3}[corrupt]; len(problems) != want {
			t.Errorf("corrupt %v: problems %q, want %d", corrupt, problems, want)
		}
	}
}

// TestFilesCroc: without croc the result says so; with croc the same
// size goes through croc's relay intact, with a throughput and a ratio;
// a croc that does not work is a problem.
func TestFilesCroc(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := FilesConfig{Size: 1 << 20, Timeout: 5 * time.Second}
	res, problems, err := Files(ctx, newFakeNet("alice", "bob"), cfg)
	if err != nil || len(problems) != 0 || res.Croc.Installed || res.CrocRatio != 0 || res.MedianMBPerSecond <= 0 {
		t.Fatalf("without croc: %+v, %q, %v", res, problems, err)
	}
	broken, err := exec.LookPath("false")
	if err != nil {
		t.Skip(err)
	}
	cfg.Croc = broken
	res, problems, err = Files(ctx, newFakeNet("alice", "bob"), cfg)
	if err != nil || len(problems) != 1 || res.Croc.Error == "" || res.CrocRatio != 0 {
		t.Fatalf("broken croc: %+v, %q, %v", res.Croc, problems, err)
	}
	croc, err := exec.LookPath("croc")
	if err != nil {
		t.Skip("croc not installed")
	}
	cfg.Croc, cfg.Timeout = croc, 30*time.Second
	res, problems, err = Files(ctx, newFakeNet("alice", "bob"), cfg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("croc: %+v, %q, %v", res.Croc, problems, err)
	}
	if c := res.Croc; !c.Installed || !c.Intact || c.MBPerSecond <= 0 || res.CrocRatio <= 0 {
		t.Errorf("croc: %+v, ratio %v", c, res.CrocRatio)
	}
}
