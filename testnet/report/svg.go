package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"time"
)

// outcomeColour is each outcome's colour in the heat map; a cell's
// opacity is its share of the row's attempts.
var outcomeColour = map[Outcome]string{
	Direct:      "#1a9850",
	HolePunched: "#66bd63",
	Relayed:     "#f46d43",
	Failed:      "#a50026",
}

// HeatMap writes the connectivity matrix as an SVG heat map: a row per
// NAT-type pair, a column per outcome, each cell (class "cell") shaded by
// its share of the row's attempts and labelled with the count.
func HeatMap(w io.Writer, matrix []Cell) error {
	const label, cw, ch, top = 190, 110, 34, 40
	width, height := label+cw*len(Outcomes)+10, top+ch*len(matrix)+10
	b := &bytes.Buffer{}
	svgOpen(b, width, height)
	fmt.Fprintf(b, "<text x=\"%d\" y=\"16\" font-weight=\"bold\">connectivity by NAT-type pair (share of attempts)</text>\n", 4)
	for j, o := range Outcomes {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", label+cw*j+cw/2, top-6, esc(string(o)))
	}
	for i, m := range matrix {
		y := top + ch*i
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">%s</text>\n", 4, y+ch/2+5, esc(m.NATs))
		for j, o := range Outcomes {
			n, share := m.Outcomes[o], 0.0
			if m.Attempts > 0 {
				share = float64(n) / float64(m.Attempts)
			}
			x := label + cw*j
			fmt.Fprintf(b, "<rect class=\"cell\" data-nats=\"%s\" data-outcome=\"%s\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"#999\"/>\n",
				esc(m.NATs), o, x, y, cw, ch, outcomeColour[o], 0.08+0.92*share)
			fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d (%.0f%%)</text>\n", x+cw/2, y+ch/2+5, n, 100*share)
		}
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// histogramBins is how many bars a histogram has.
const histogramBins = 20

// Histogram writes an SVG bar chart of the distribution of durations
// (nanoseconds): histogramBins equal bins from 0 to the largest, each bar
// (class "bar") as tall as its count, with the median and p95 marked.
func Histogram(w io.Writer, title string, ns []int64) error {
	const left, top, plotW, plotH = 50, 30, 600, 200
	b := &bytes.Buffer{}
	svgOpen(b, left+plotW+20, top+plotH+50)
	fmt.Fprintf(b, "<text x=\"4\" y=\"16\" font-weight=\"bold\">%s, n=%d</text>\n", esc(title), len(ns))
	if len(ns) > 0 {
		hi := max(slices.Max(ns), 1)
		counts := make([]int, histogramBins)
		for _, v := range ns {
			counts[min(int(v*histogramBins/hi), histogramBins-1)]++
		}
		most := slices.Max(counts)
		bw := plotW / histogramBins
		for i, c := range counts {
			h := plotH * c / most
			fmt.Fprintf(b, "<rect class=\"bar\" data-count=\"%d\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#4575b4\"/>\n",
				c, left+i*bw, top+plotH-h, bw-1, h)
		}
		s := Summarize(ns)
		for _, mark := range []struct {
			name string
			v    int64
		}{{"median", s.Median}, {"p95", s.P95}} {
			x := left + int(int64(plotW)*mark.v/hi)
			fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#d73027\" stroke-dasharray=\"4 2\"/>\n", x, top, x, top+plotH)
			fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s %s</text>\n", x+2, top+10, mark.name, esc(Dur(mark.v)))
		}
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">0</text>\n", left, top+plotH+16)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left+plotW, top+plotH+16, esc(time.Duration(hi).Round(time.Millisecond).String()))
		fmt.Fprintf(b, "<text x=\"4\" y=\"%d\" font-size=\"11\">max %d</text>\n", top+10, most)
	}
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", left, top+plotH, left+plotW, top+plotH)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func svgOpen(b *bytes.Buffer, width, height int) {
	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n", width, height, width, height)
	fmt.Fprintf(b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height)
}

// esc escapes text for XML.
func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s)) // writes to a bytes.Buffer never fail
	return b.String()
}
