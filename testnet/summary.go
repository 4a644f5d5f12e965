package testnet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/parleynet/parley/app/apitype"
)

// Summary is a one-screen view of a running network: who is online, how
// each pair of clients is connected, and each supernode's load. Lines
// holds it, one fact a line, in a stable order, so that two summaries can
// be compared line by line.
type Summary struct {
	Lines []string
}

// Summarize reads every client's status and every supernode's load.
func (n *Network) Summarize(ctx context.Context) Summary {
	n.mu.Lock()
	clients := slices.Clone(n.clients)
	n.mu.Unlock()
	var s Summary
	add := func(format string, args ...any) { s.Lines = append(s.Lines, fmt.Sprintf(format, args...)) }
	add("clients:")
	for _, c := range clients {
		st, _ := c.Engine.Status(ctx)
		state := "offline"
		if st.LoggedIn {
			state = "online"
		}
		add("  %-8s %-7s relay slots on %s", c.Name, state, shortIDs(st.Supernodes))
	}
	add("pairs (as the first of each sees the second):")
	for i, a := range clients {
		st, _ := a.Engine.Status(ctx)
		for _, b := range clients[i+1:] {
			path := "not contacts"
			if j := slices.IndexFunc(st.Contacts, func(cs apitype.ContactStatus) bool { return cs.Username == b.Name }); j >= 0 {
				path = shortPath(st.Contacts[j])
			}
			add("  %-8s ↔ %-8s %s", a.Name, b.Name, path)
		}
	}
	add("supernodes:")
	for i, sn := range n.Supernodes {
		l := sn.Service.Load()
		add("  supernode-%d %s  reservations %d  circuits %d", i+1, shortID(sn.Node.ID().String()), l.Reservations, l.Circuits)
	}
	return s
}

// String is the summary, one line each.
func (s Summary) String() string { return strings.Join(s.Lines, "\n") + "\n" }

// Changed are the lines of s that were not in prev.
func (s Summary) Changed(prev Summary) []string {
	var out []string
	for _, l := range s.Lines {
		if !slices.Contains(prev.Lines, l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// shortPath is a contact's path with the supernode's peer ID shortened,
// "offline" when the contact is.
func shortPath(cs apitype.ContactStatus) string {
	if !cs.Online {
		return "offline"
	}
	if via, ok := strings.CutPrefix(cs.Path, "relayed via "); ok {
		return "relayed via " + shortID(via)
	}
	return cs.Path
}

func shortIDs(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = shortID(id)
	}
	return strings.Join(s, ", ")
}

// shortID is a peer ID's last 6 characters, as the summary names peers.
func shortID(id string) string {
	if len(id) <= 8 {
		return id
	}
	return "…" + id[len(id)-6:]
}
