package topology

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	top, err := Parse(strings.NewReader(`# a small lab
supernodes 3
delay 20ms
loss 1%
client alice cone
client bob symmetric 50ms 5%  # slower, lossier
client carol public 0.5%
`))
	if err != nil {
		t.Fatal(err)
	}
	if top.Supernodes != 3 || top.Delay != 20*time.Millisecond || len(top.Clients) != 3 {
		t.Fatalf("got %+v", top)
	}
	if d := top.Clients[0].LinkDelay(top); d != 20*time.Millisecond {
		t.Errorf("alice's delay %v, want the default 20ms", d)
	}
	if d := top.Clients[1].LinkDelay(top); d != 50*time.Millisecond {
		t.Errorf("bob's delay %v, want 50ms", d)
	}
	for i, want := range []float64{0.01, 0.05, 0.005} {
		if p := top.Clients[i].LinkLoss(top); p != want {
			t.Errorf("%s's loss %v, want %v", top.Clients[i].Name, p, want)
		}
	}
	if d := top.Clients[2].LinkDelay(top); d != 20*time.Millisecond {
		t.Errorf("carol's delay %v, want the default 20ms", d)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"client alice cone\nclient bob moon\n", `line 2: client bob: kind "moon"`},
		{"client alice cone\nclient alice cone\n", `line 2: client "alice" appears twice`},
		{"supernodes many\n", `line 1: supernodes "many"`},
		{"supernodes 0\n", `line 1: supernodes "0"`},
		{"delay -5ms\n", `line 1: delay "-5ms"`},
		{"delay\n", `line 1: want "delay DURATION"`},
		{"loss 1\n", `line 1: loss "1"`},
		{"loss 60%\n", `line 1: loss "60%"`},
		{"client alice cone 1% 20ms\n", `line 1: client alice: "20ms": want the delay before the loss`},
		{"client alice cone 1% 2%\n", `line 1: client alice: two losses`},
		{"client Alice cone\n", `client name "Alice"`},
		{"client rendezvous cone\n", `client name "rendezvous"`},
		{"client supernode1 cone\n", `client name "supernode1"`},
		{"client alice\n", `want "client NAME KIND [DELAY] [LOSS%]"`},
		{"hosts 3\n", `unknown statement "hosts"`},
		{"client alice cone\n", "1 clients, want 2"},
		{strings.Repeat("x", 5000), "read topology"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Parse(%.40q) = %v, want an error with %q", tt.in, err, tt.err)
		}
	}
}

func TestFromCounts(t *testing.T) {
	name := func(i int) string { return fmt.Sprintf("c%d", i+1) }
	cs, err := FromCounts("cone=2,symmetric=1", name)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Kind != "cone" || cs[2].Kind != "symmetric" || cs[2].Name != "c3" {
		t.Errorf("got %+v", cs)
	}
	// Every NAT runner knows is a kind, the UPnP router included.
	cs, err = FromCounts("upnp=1,udp-blocked=1,public=1", name)
	if err != nil || len(cs) != 3 || cs[0].Kind != "upnp" {
		t.Errorf("upnp, udp-blocked, public: got %+v, %v", cs, err)
	}
	for _, bad := range []string{"cone", "cone=x", "moon=1", "cone=-1", "cone=1000"} {
		if _, err := FromCounts(bad, name); err == nil {
			t.Errorf("FromCounts(%q) accepted it", bad)
		}
	}
}

// FuzzTopology: any input is either a valid topology or an error; a
// valid one validates, and its clients are unique and well named.
func FuzzTopology(f *testing.F) {
	f.Add("supernodes 2\ndelay 20ms\nclient alice cone\nclient bob symmetric 5ms\n")
	f.Add("client a public\nclient b cone # x\n")
	f.Add("delay 1h\n")
	f.Add("loss 2%\nclient a cone 5ms 1%\nclient b public 3%\n")
	f.Fuzz(func(t *testing.T, in string) {
		top, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := top.Validate(); err != nil {
			t.Fatalf("Parse accepted %q but Validate says %v", in, err)
		}
		for _, c := range top.Clients {
			if d := c.LinkDelay(top); d < 0 || d > MaxDelay {
				t.Fatalf("client %s has delay %v", c.Name, d)
			}
			if p := c.LinkLoss(top); !(p >= 0 && p <= MaxLoss) {
				t.Fatalf("client %s has loss %v", c.Name, p)
			}
		}
	})
}
