package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleynet/parley/app/apitype"
)

// safe renders text that came from the network (a message body, a
// username, a server's error) for a terminal, on one line: newlines and
// other control characters, terminal escape sequences, bidirectional
// controls, line and paragraph separators and invalid UTF-8 are shown
// escaped (\n, \x1b, \u202e, \xff), so that no text can fake a line, a
// sender or a label, move the cursor or reorder what follows it.
// Everything else, emoji and every script included, is shown as is.
//
// Every human-readable line the CLI prints with network text goes through
// safe; JSON output carries the text exactly.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unicode.IsControl(r): // C0 (ESC among them) and DEL
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || isBidiOrSeparator(r): // C1 (CSI among them), bidi, U+2028/9
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || isBidiOrSeparator(r) {
			return true
		}
	}
	return false
}

// isBidiOrSeparator reports the characters that reorder or break a line:
// the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069), the implicit marks (LRM, RLM, ALM), and the line and
// paragraph separators.
func isBidiOrSeparator(r rune) bool {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200E, r == 0x200F, r == 0x061C, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// messageLine describes a message on one line, the network's text last
// and escaped: "bob → you (relayed via 12D3…): hello". How it travelled
// comes before the text, so the text cannot fake it.
func messageLine(m apitype.Message) string {
	from, to := safe(m.From), "you"
	if !m.Incoming {
		from, to = "you", safe(m.To)
	}
	return fmt.Sprintf("%s → %s (%s): %s", from, to, messageHow(m), safe(m.Body))
}

// messageHow is how a message travelled, or where it stands.
func messageHow(m apitype.Message) string {
	switch m.State {
	case apitype.MessageQueued:
		return "queued"
	case apitype.MessageSent:
		return "sent, not delivered yet"
	case apitype.MessageFailed:
		return "not delivered: " + safe(m.Error)
	}
	how := string(m.State)
	if m.Path != "" {
		how = safe(apitype.PathLabel(m.Path, m.Transport))
	}
	if m.State == apitype.MessageRead && !m.Incoming {
		how += ", read"
	}
	return how
}
