package testnet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestUp runs the README's main-job walkthrough and checks what it tells
// the user.
func TestUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	n, err := Up(ctx, Config{Dir: t.TempDir()}, &out)
	if err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, &out)
	}
	defer n.Close()
	text := out.String()
	via := "relayed via " + n.Supernodes[0].Node.ID().String()
	for _, want := range []string{
		"logged in as alice",
		"logged in as bob",
		"reserved a relay slot on supernode " + n.Supernodes[0].Node.ID().String(),
		"sees bob online",
		"/p2p-circuit",
		"go run ./cmd/parley --data",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if got := strings.Count(text, "delivered"); got != 2 {
		t.Errorf("got %d delivered messages, want 2:\n%s", got, text)
	}
	if got := strings.Count(text, via); got != 2 {
		t.Errorf("got %d messages %s, want 2:\n%s", got, via, text)
	}
}
