package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/command/commandtest"
	"github.com/parleynet/parley/testnet"
)

func TestCLI(t *testing.T) {
	commandtest.CheckTree(t, newRoot)
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no subcommand", nil, 2, "missing command: one of load, natlab, relay-load, run, up"},
		{"unknown subcommand", []string{"down"}, 2, `unknown command "down"`},
		{"stray argument", []string{"up", "now"}, 2, `unknown command "now" for "parley-testnet up"`},
		{"bad flag value", []string{"up", "--supernodes", "two"}, 2, `invalid argument "two" for "--supernodes"`},
		{"supernodes out of range", []string{"up", "--supernodes", "0"}, 2, "--supernodes must be at least 1"},
		{"clients out of range", []string{"up", "--clients", "1"}, 2, "--clients must be at least 2"},
		{"run without a scenario", []string{"run"}, 2, "SCENARIO"},
		{"unknown scenario", []string{"run", "dance"}, 2, `unknown scenario "dance": want one of connectivity, chat, failover, files, churn, dht`},
		{"dht in the NAT lab", []string{"run", "dht", "--natlab"}, 2, "dht runs on loopback only"},
		{"failover with too few supernodes", []string{"run", "failover", "--supernodes", "2"}, 2, "--supernodes must be at least 3"},
		{"bad --nat", []string{"run", "chat", "--natlab", "--nat", "moon=2"}, 2, `kind "moon"`},
		{"too few clients", []string{"run", "chat", "--natlab", "--nat", "cone=1"}, 2, "1 clients, want 2"},
		{"missing topology file", []string{"run", "chat", "--natlab", "--topology", "/nonexistent/topo"}, 2, "no such file"},
		{"bad attempts", []string{"run", "connectivity", "--attempts", "0"}, 2, "--attempts must be at least 1"},
		{"exec without a command", []string{"natlab", "exec", "alice"}, 2, "want HOST -- COMMAND"},
		{"exec without the dash", []string{"natlab", "exec", "alice", "parley", "status"}, 2, "want HOST -- COMMAND"},
		{"exec without a lab", []string{"natlab", "exec", "--state", "/nonexistent/natlab.json", "alice", "--", "parley", "status"}, 1, "no NAT lab is running"},
		{"bad --loss", []string{"natlab", "up", "--loss", "5"}, 2, `--loss: loss "5": want a percentage`},
		{"natlab up with a bad topology", []string{"natlab", "up", "--nat", "cone=1"}, 2, "1 clients, want 2"},
		{"flag of another subcommand", []string{"load", "--reservations", "5"}, 2, "unknown flag: --reservations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := commandtest.Run(t, newRoot, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.err) {
				t.Fatalf("got exit %d, %q; want %d, %q", code, errOut, tt.code, tt.err)
			}
		})
	}
}

// TestReportJSON: the --json reports parse, with snake_case names that
// say their units.
func TestReportJSON(t *testing.T) {
	tests := []struct {
		rep  fmt.Stringer
		keys []string
	}{
		{testnet.LoadReport{Sessions: 10, Login: testnet.Phase{Ops: 10, Elapsed: time.Second}}, []string{"sessions", "login", "rss_per_session_bytes", "shutdown_ns"}},
		{testnet.RelayLoadReport{Reservations: 10, Took: time.Second}, []string{"reservations", "took_ns", "idle", "loaded"}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := printReport(&out, tt.rep, true, nil); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%T: not JSON: %v\n%s", tt.rep, err, &out)
		}
		for _, key := range tt.keys {
			if _, ok := doc[key]; !ok {
				t.Errorf("%T: no %q in\n%s", tt.rep, key, &out)
			}
		}
	}
}
