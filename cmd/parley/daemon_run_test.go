package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/node/nodetest"
)

// TestDaemon runs parley daemon with its flags after the subcommand (its
// rendezvous server does not exist, so it keeps trying to log in), talks
// to it, and stops it with Ctrl-C.
func TestDaemon(t *testing.T) {
	rdv := "/ip4/127.0.0.1/tcp/9/p2p/" + nodetest.PeerID(t).String()
	for _, tt := range []struct {
		name string
		json bool
	}{{"human", false}, {"json", true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"daemon", "--rendezvous", rdv, "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
				"--supernode", "never", "--private", "--api", "127.0.0.1:0", "--data", dir}
			if tt.json {
				args = append(args, "--json")
			}
			w := startParley(t, args...)
			line := w.next(t)
			if tt.json {
				var started daemonStarted
				if err := json.Unmarshal([]byte(line), &started); err != nil || started.Peer == "" || started.DataDir != dir || started.API == "" {
					t.Fatalf("got %q (%v), want the peer, data_dir and api as JSON", line, err)
				}
			} else if !regexp.MustCompile(`^parley daemon: device \S+, data in ` + regexp.QuoteMeta(dir) + `, API on 127\.0\.0\.1:\d+$`).MatchString(line) {
				// testnet/labnet waits for this line.
				t.Fatalf("got %q, want parley daemon: device ID, data in DIR, API on ADDR", line)
			}
			var st apitype.Status
			if err := json.Unmarshal([]byte(mustParley(t, context.Background(), "", "--data", dir, "status", "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if st.Peer == "" || !strings.Contains(line, st.Peer) || st.Supernode.Mode != "never" {
				t.Errorf("status of the daemon: got %+v", st)
			}
			w.stop()
			if err := w.wait(t); err != nil {
				t.Errorf("Ctrl-C: got %v, want exit 0", err)
			}
		})
	}
}
