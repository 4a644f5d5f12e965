package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Write writes r into dir (created if needed): report.json, report.md,
// and the charts that apply: connectivity.svg (the heat map) and
// latency.svg (chat latencies, the connectivity scenario's times to
// first message, or the dht scenario's lookup latencies).
func Write(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	files := map[string]func(*bytes.Buffer) error{
		"report.json": func(b *bytes.Buffer) error {
			enc := json.NewEncoder(b)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		},
		"report.md": func(b *bytes.Buffer) error { return WriteMarkdown(b, r) },
	}
	if r.Connectivity != nil {
		files["connectivity.svg"] = func(b *bytes.Buffer) error { return HeatMap(b, r.Connectivity.Matrix) }
	}
	if lat, title := latencies(r); lat != nil {
		files["latency.svg"] = func(b *bytes.Buffer) error { return Histogram(b, title, lat) }
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		var b bytes.Buffer
		if err := files[name](&b); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// latencies are the durations the latency chart shows, and its title.
func latencies(r Report) ([]int64, string) {
	switch {
	case r.Chat != nil:
		return r.Chat.LatenciesNS, "chat message latency (send to arrival)"
	case r.Connectivity != nil:
		var all []int64
		for _, p := range r.Connectivity.Pairs {
			all = append(all, p.FirstMessageNS...)
		}
		return all, "time to first message (send to arrival)"
	case r.DHT != nil:
		var all []int64
		for _, l := range r.DHT.Lookups {
			if l.OK {
				all = append(all, l.TookNS)
			}
		}
		return all, "DHT lookup latency (find-peer and find-providers)"
	}
	return nil, ""
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
