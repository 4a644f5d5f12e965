package apitype

import "testing"

func TestPathLabel(t *testing.T) {
	for _, c := range []struct{ path, transport, want string }{
		{"direct", "quic", "direct/quic"},
		{"holepunched", "quic", "holepunched/quic"},
		{"relayed via 12D3KooWrelay", "tcp", "relayed/tcp via 12D3KooWrelay"},
		{"direct", "", "direct"},
		{"relayed via 12D3KooWrelay", "", "relayed via 12D3KooWrelay"},
		{"mailbox", "quic", "mailbox"},
		{"not connected", "tcp", "not connected"},
		{"", "", ""},
	} {
		if got := PathLabel(c.path, c.transport); got != c.want {
			t.Errorf("PathLabel(%q, %q) = %q, want %q", c.path, c.transport, got, c.want)
		}
	}
}
