package report

import (
	"fmt"
	"strings"
)

// writeCroc writes the files scenario's comparison with croc.
func writeCroc(b *strings.Builder, f *Files) {
	c := f.Croc
	b.WriteString("### Parley and croc\n\n")
	if !c.Installed {
		b.WriteString("croc not installed: no comparison (`go install github.com/schollz/croc/v10@v10.7.0`).\n\n")
		return
	}
	b.WriteString("The same size sent with croc through a croc relay of its own on 127.0.0.1 (`--no-local`: the data goes through the relay), timed from the receiver's start, croc's key exchange included, to its exit.\n\n")
	crocCell := fmt.Sprintf("%.1f", c.MBPerSecond)
	if c.Error != "" {
		crocCell = "failed: " + cell(c.Error)
	} else if !c.Intact {
		crocCell += " (not intact)"
	}
	fmt.Fprintf(b, "| parley MB/s (median) | croc MB/s | parley ÷ croc |\n| ---: | ---: | ---: |\n| %.1f | %s | %.2f |\n\n", f.MedianMBPerSecond, crocCell, f.CrocRatio)
}
