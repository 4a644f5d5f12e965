package scenario

import (
	"context"
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
