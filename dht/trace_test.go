package dht

import (
	"bytes"
	"testing"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestTrace follows a FindPeer and a record lookup: every query is
// answered or failed, distances are those of kbucket, hops grow from 1,
// and the summary names the peer that held the answer.
func TestTrace(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 6)
	for _, s := range servers {
		<-s.Kad().RefreshRoutingTable()
	}
	device := client(t, servers[:1])
	if _, err := device.PublishAddrs(ctx); err != nil {
		t.Fatal(err)
	}
	q := client(t, servers[5:])

	target := servers[2].Host().ID()
	q.Host().Network().ClosePeer(target) // so that FindPeer must look it up
	var streamed []TraceEvent
	tr := q.NewTrace(func(ev TraceEvent) { streamed = append(streamed, ev) })
	if _, err := q.FindPeer(tr.Context(ctx), target); err != nil {
		t.Fatal(err)
	}
	tr.Stop()
	evs, sum := tr.Events(), tr.Summary()
	if len(evs) == 0 || len(streamed) != len(evs) {
		t.Fatalf("%d events, %d streamed", len(evs), len(streamed))
	}
	checkTrace(t, evs, sum, kb.ConvertPeerID(target))
	// 0 hops if the target was in q's routing table (which is still
	// filling up), else the hop of the peer that named it.
	if (sum.Hops == 0) != (sum.AnsweredBy == "") {
		t.Errorf("FindPeer summary %+v", sum)
	}

	tr = q.NewTrace(nil)
	r, err := q.LookupAddrs(tr.Context(ctx), device.Host().ID())
	if err != nil {
		t.Fatal(err)
	}
	tr.Stop()
	n := len(tr.Events())
	sum = tr.Summary()
	checkTrace(t, tr.Events(), sum, kb.ConvertKey(r.Key()))
	if sum.Hops < 1 {
		t.Errorf("record lookup summary %+v", sum)
	}
	found := false
	for _, ev := range tr.Events() {
		found = found || ev.Record
	}
	if !found {
		t.Error("no event shows the record")
	}
	if _, err := q.LookupAddrs(tr.Context(ctx), device.Host().ID()); err != nil {
		t.Fatal(err)
	}
	if len(tr.Events()) != n {
		t.Error("a stopped trace still records")
	}
}

func checkTrace(t *testing.T, evs []TraceEvent, sum TraceSummary, target kb.ID) {
	t.Helper()
	queried := map[peer.ID]int{}
	var responded, failed int
	for i, ev := range evs {
		if i > 0 && ev.At < evs[i-1].At {
			t.Errorf("event %d goes back in time", i)
		}
		pid := kb.ConvertPeerID(ev.Peer)
		if got, want := ev.CPL, kb.CommonPrefixLen(pid, target); got != want {
			t.Errorf("event %d: CPL %d, want %d", i, got, want)
		}
		if !bytes.Equal(ev.Distance, kb.Xor(pid, target)) {
			t.Errorf("event %d: wrong distance", i)
		}
		if ev.Hop < 1 || ev.Hop > sum.MaxHop {
			t.Errorf("event %d: hop %d outside 1..%d", i, ev.Hop, sum.MaxHop)
		}
		switch ev.Kind {
		case TraceQuery:
			queried[ev.Peer]++
		case TraceResponse:
			responded++
			if ev.RTT <= 0 {
				t.Errorf("event %d: response without RTT", i)
			}
			if queried[ev.Peer] == 0 {
				t.Errorf("event %d: response from %s, never queried", i, ev.Peer)
			}
		case TraceError:
			failed++
			if ev.Err == nil {
				t.Errorf("event %d: error event without error", i)
			}
		}
	}
	if sum.Queried < responded+failed {
		t.Errorf("summary %+v, counted %d responses, %d failures", sum, responded, failed)
	}
	if sum.Responded != responded || sum.Failed != failed {
		t.Errorf("summary %+v, counted %d responses, %d failures", sum, responded, failed)
	}
}
