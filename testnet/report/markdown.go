package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes r as Markdown: a heading, the clients, one table
// per result, and the problems.
func WriteMarkdown(w io.Writer, r Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# parley-testnet run %s\n\n", r.Scenario)
	fmt.Fprintf(b, "- mode: %s\n- command: `%s`\n- started: %s, took %s\n\n",
		r.Mode, r.Command, r.Started.UTC().Format(time.RFC3339), Dur(r.TookNS))
	fmt.Fprintf(b, "| client | NAT |\n| --- | --- |\n")
	for _, c := range r.Clients {
		fmt.Fprintf(b, "| %s | %s |\n", cell(c.Name), cell(c.NAT))
	}
	b.WriteString("\n")
	if c := r.Connectivity; c != nil {
		writeConnectivity(b, c)
	}
	if c := r.Chat; c != nil {
		fmt.Fprintf(b, "## Chat\n\n%d messages each way between every pair.\n\n", c.PerDirection)
		fmt.Fprintf(b, "| sent | arrived | lost | latency p50 | p95 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(b, "| %d | %d | %d | %s | %s | %s | %s |\n\n", c.Sent, c.Arrived, c.Lost,
			Dur(c.Latency.Median), Dur(c.Latency.P95), Dur(c.Latency.P99), Dur(c.Latency.Max))
		fmt.Fprintf(b, "| path (as the sender saw it) | messages |\n| --- | ---: |\n")
		for _, p := range sortedKeys(c.Paths) {
			fmt.Fprintf(b, "| %s | %d |\n", cell(p), c.Paths[p])
		}
		b.WriteString("\n![latency](latency.svg)\n\n")
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(b, "## Failover\n\n%s chat while the supernode it uses is stopped.\n\n", cell(f.Pair))
		fmt.Fprintf(b, "| stop | supernode | first message after the stop arrived after | path changed after | path then |\n| --- | --- | ---: | ---: | --- |\n")
		for _, o := range f.Outages {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", o.How, cell(o.Supernode), durOrNever(o.RecoveredNS), durOrNever(o.PathRecoveredNS), cell(o.PathAfter))
		}
		fmt.Fprintf(b, "\n| sent | arrived | lost | latency p50 | p95 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(b, "| %d | %d | %d | %s | %s | %s | %s |\n\n", f.Sent, f.Arrived, f.Lost,
			Dur(f.Latency.Median), Dur(f.Latency.P95), Dur(f.Latency.P99), Dur(f.Latency.Max))
	}
	if f := r.Files; f != nil {
		fmt.Fprintf(b, "## Files\n\nEach pair: one publishes a %d-byte file of random bytes, the other downloads it.\n\n", f.SizeBytes)
		fmt.Fprintf(b, "| download | NATs | path | took | MB/s | intact |\n| --- | --- | --- | ---: | ---: | --- |\n")
		for _, t := range f.Transfers {
			took := Dur(t.TookNS)
			if t.Error != "" {
				took = "failed: " + t.Error
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %.1f | %v |\n", cell(t.Pair), cell(t.NATs), cell(t.Path), cell(took), t.MBPerSecond, t.Intact)
		}
		b.WriteString("\n")
		writeCroc(b, f)
	}
	if c := r.Churn; c != nil {
		fmt.Fprintf(b, "## Churn\n\nEvery pair chats both ways for %s while clients restart one after another and a supernode leaves.\n\n", Dur(c.DurationNS))
		fmt.Fprintf(b, "| at | event | back after |\n| ---: | --- | ---: |\n")
		for _, e := range c.Events {
			fmt.Fprintf(b, "| %s | %s | %s |\n", Dur(e.AtNS), cell(e.What), Dur(e.TookNS))
		}
		fmt.Fprintf(b, "\n| sent | refused by the API | arrived | lost | latency p50 | p95 | p99 |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(b, "| %d | %d | %d | %d | %s | %s | %s |\n\n", c.Sent, c.SendErrors, c.Arrived, c.Lost,
			Dur(c.Latency.Median), Dur(c.Latency.P95), Dur(c.Latency.P99))
	}
	if d := r.DHT; d != nil {
		writeDHT(b, d)
	}
	if len(r.Problems) == 0 {
		b.WriteString("## Result\n\nAll checks passed.\n")
	} else {
		b.WriteString("## Result: problems\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(b, "- %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeConnectivity(b *strings.Builder, c *Connectivity) {
	fmt.Fprintf(b, "## Connectivity\n\n%d attempts per pair; an attempt restarts every client, sends one message per pair and waits up to %s for a direct path.\n\n",
		c.Attempts, Dur(c.DirectTimeoutNS))
	fmt.Fprintf(b, "| NAT pair | attempts |")
	for _, o := range Outcomes {
		fmt.Fprintf(b, " %s |", o)
	}
	fmt.Fprintf(b, "\n| --- | ---: |%s\n", strings.Repeat(" ---: |", len(Outcomes)))
	for _, m := range c.Matrix {
		fmt.Fprintf(b, "| %s | %d |", cell(m.NATs), m.Attempts)
		for _, o := range Outcomes {
			fmt.Fprintf(b, " %d |", m.Outcomes[o])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "\nDirect or hole-punched: %.0f%% of attempts.\n\n", 100*c.DirectShare)
	fmt.Fprintf(b, "| time | n | median | p95 |\n| --- | ---: | ---: | ---: |\n")
	fmt.Fprintf(b, "| to first message | %d | %s | %s |\n", c.FirstMessage.N, Dur(c.FirstMessage.Median), Dur(c.FirstMessage.P95))
	fmt.Fprintf(b, "| to direct | %d | %s | %s |\n\n", c.ToDirect.N, Dur(c.ToDirect.Median), Dur(c.ToDirect.P95))
	fmt.Fprintf(b, "| pair | NATs |")
	for _, o := range Outcomes {
		fmt.Fprintf(b, " %s |", o)
	}
	fmt.Fprintf(b, "\n| --- | --- |%s\n", strings.Repeat(" ---: |", len(Outcomes)))
	for _, p := range c.Pairs {
		fmt.Fprintf(b, "| %s | %s |", cell(p.Names), cell(p.NATs))
		for _, o := range Outcomes {
			fmt.Fprintf(b, " %d |", p.Outcomes[o])
		}
		b.WriteString("\n")
	}
	b.WriteString("\n![connectivity](connectivity.svg)\n\n![time to first message](latency.svg)\n\n")
}

// cell escapes what would break a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func durOrNever(ns int64) string {
	if ns < 0 {
		return "never"
	}
	return Dur(ns)
}
