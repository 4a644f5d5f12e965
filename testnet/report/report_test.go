package report

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() Report {
	return Report{
		Scenario: "connectivity",
		Mode:     "test",
		Command:  "parley-testnet run connectivity",
		Started:  time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC),
		Clients:  []Client{{"alice", "cone"}, {"bob", "cone"}, {"c|arol <&>", "symmetric"}},
		Connectivity: &Connectivity{
			Attempts: 2,
			Matrix: []Cell{
				{NATs: "cone ↔ cone", Attempts: 2, Outcomes: map[Outcome]int{HolePunched: 2}},
				{NATs: "cone ↔ symmetric <&>", Attempts: 4, Outcomes: map[Outcome]int{Relayed: 3, Failed: 1}},
			},
			Pairs: []Pair{{Names: "alice ↔ bob", NATs: "cone ↔ cone", Outcomes: map[Outcome]int{HolePunched: 2},
				FirstMessageNS: []int64{4e8, 5e8}, ToDirectNS: []int64{6e8, 7e8}}},
		},
		Chat: &Chat{PerDirection: 2, Sent: 4, Arrived: 4, LatenciesNS: []int64{1e6, 2e6, 3e6, 9e6}, Paths: map[string]int{"relayed via x": 4}},
	}
}

// TestWrite: every file parses back; the heat map has a cell per NAT
// pair and outcome; the histogram counts every latency.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if back.Connectivity.Matrix[1].Outcomes[Relayed] != 3 || back.Chat.Sent != 4 {
		t.Errorf("report.json lost numbers: %+v", back)
	}

	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| cone ↔ symmetric <&> | 4 | 0 | 0 | 3 | 1 |", `c\|arol`, "| 4 | 4 | 0 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	assertTables(t, string(md))

	cells := svgElements(t, filepath.Join(dir, "connectivity.svg"), "rect", "cell")
	if len(cells) != len(r.Connectivity.Matrix)*len(Outcomes) {
		t.Errorf("heat map has %d cells, want %d", len(cells), len(r.Connectivity.Matrix)*len(Outcomes))
	}
	seen := map[string]bool{}
	for _, c := range cells {
		key := c["data-nats"] + "/" + c["data-outcome"]
		if seen[key] {
			t.Errorf("two cells for %s", key)
		}
		seen[key] = true
	}
	total := 0
	for _, bar := range svgElements(t, filepath.Join(dir, "latency.svg"), "rect", "bar") {
		var n int
		if err := json.Unmarshal([]byte(bar["data-count"]), &n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != len(r.Chat.LatenciesNS) {
		t.Errorf("histogram counts %d latencies, want %d", total, len(r.Chat.LatenciesNS))
	}
}

// TestHistogramEmpty: no data still makes a valid SVG.
func TestHistogramEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.svg")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Histogram(f, "nothing", nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if bars := svgElements(t, path, "rect", "bar"); len(bars) != 0 {
		t.Errorf("%d bars for no data", len(bars))
	}
}

// svgElements parses an SVG file as XML and returns the attributes of
// its elements named name with the given class.
func svgElements(t *testing.T, path, name, class string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var out []map[string]string
	root := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s is not XML: %v", path, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		attrs := map[string]string{}
		for _, a := range se.Attr {
			attrs[a.Name.Local] = a.Value
		}
		if se.Name.Local == name && attrs["class"] == class {
			out = append(out, attrs)
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", path, root)
	}
	return out
}

// assertTables checks that every Markdown table row has as many cells
// as its header.
func assertTables(t *testing.T, md string) {
	t.Helper()
	cols := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") - 1
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table row %q has %d cells, header %d", line, n, cols)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []int64
	for i := int64(1); i <= 100; i++ {
		ds = append(ds, i)
	}
	s := Summarize(ds)
	if s.N != 100 || s.Median != 50 || s.P95 != 95 || s.P99 != 99 || s.Max != 100 {
		t.Errorf("Summarize(1..100) = %+v", s)
	}
	if (Summarize(nil) != Stats{}) {
		t.Error("Summarize(nil) is not zero")
	}
}

// TestWriteDHT: a dht report has its table and a latency chart with a
// bar for the successful lookups.
func TestWriteDHT(t *testing.T) {
	dir := t.TempDir()
	lookups := []DHTLookup{
		{Kind: "find-peer", From: "alice", Target: "bob", TookNS: 2e6, Hops: 1, Queried: 2, OK: true},
		{Kind: "find-providers", From: "alice", Target: "bob", TookNS: 3e6, Error: "routing: not found"},
	}
	r := Report{Scenario: "dht", Problems: []string{}, DHT: &DHT{Lookups: lookups,
		Kinds: []DHTKind{{Kind: "find-peer", Lookups: 1, Succeeded: 1, SuccessRate: 1, Latency: Summarize([]int64{2e6}), HopsMedian: 1, HopsMax: 1}}}}
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## DHT", "| find-peer | 1 | 100% | 2ms |", "failed: routing: not found", "![lookup latency](latency.svg)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if bars := svgElements(t, filepath.Join(dir, "latency.svg"), "rect", "bar"); len(bars) == 0 {
		t.Error("latency.svg has no bars")
	}
}

// TestCrocMarkdown: the files table says when croc is missing, and
// otherwise shows both throughputs and their ratio.
func TestCrocMarkdown(t *testing.T) {
	for _, tt := range []struct {
		croc CrocTransfer
		want string
	}{
		{CrocTransfer{}, "croc not installed"},
		{CrocTransfer{Installed: true, MBPerSecond: 40, Intact: true}, "| 20.0 | 40.0 | 0.50 |"},
		{CrocTransfer{Installed: true, Error: "croc receive: exit status 1"}, "failed: croc receive"},
	} {
		f := &Files{SizeBytes: 1 << 20, Croc: tt.croc, MedianMBPerSecond: 20}
		if tt.croc.MBPerSecond > 0 {
			f.CrocRatio = 0.5
		}
		var b strings.Builder
		if err := WriteMarkdown(&b, Report{Scenario: "files", Files: f}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("croc %+v: report lacks %q:\n%s", tt.croc, tt.want, b.String())
		}
	}
}
