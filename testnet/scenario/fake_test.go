package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
)

// fakeNet is a network of fake clients that deliver a message at once,
// unless drop says to lose it or quiet says to store it without an
// event (as when an event stream falls behind).
type fakeNet struct {
	peers       []*Peer
	drop, quiet func(n int) bool
	corrupt     bool // downloads get a byte wrong

	mu      sync.Mutex // guards sent and relay
	sent    int
	relay   int      // the supernode relaying every pair: fake-supernode-<relay>
	stopped []string // the supernodes StopSupernode stopped
}

func newFakeNet(names ...string) *fakeNet {
	n := &fakeNet{drop: func(int) bool { return false }, quiet: func(int) bool { return false }}
	for _, name := range names {
		n.peers = append(n.peers, NewPeer(name, "fake", &fakeAPI{net: n, name: name}))
	}
	return n
}

func (n *fakeNet) Peers() []*Peer                             { return n.peers }
func (n *fakeNet) Restart(context.Context, *Peer) error       { return nil }
func (n *fakeNet) Forget(context.Context, *Peer, *Peer) error { return nil }
func (n *fakeNet) StopSupernode(_ context.Context, id string, _ bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = append(n.stopped, id)
	n.relay++
	return nil
}

func (n *fakeNet) path() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("relayed via fake-supernode-%d", n.relay)
}
func (n *fakeNet) api(name string) *fakeAPI {
	for _, p := range n.peers {
		if p.Name == name {
			return p.API().(*fakeAPI)
		}
	}
	return nil
}

type fakeAPI struct {
	net  *fakeNet
	name string

	mu        sync.Mutex // guards the following
	watches   []chan apitype.Event
	history   []apitype.Message
	transfers []apitype.Transfer
}

// Publish links to the file itself; Get copies it at once.
func (f *fakeAPI) Publish(_ context.Context, path string) (apitype.Published, error) {
	return apitype.Published{Link: path}, nil
}

func (f *fakeAPI) Get(_ context.Context, req apitype.GetRequest) (apitype.Transfer, error) {
	data, err := os.ReadFile(req.Link)
	if err != nil {
		return apitype.Transfer{}, err
	}
	if f.net.corrupt {
		data[len(data)/2] ^= 1
	}
	t := apitype.Transfer{ID: req.Link, State: apitype.TransferDone, Path: filepath.Join(req.Dir, "got")}
	if err := os.WriteFile(t.Path, data, 0o600); err != nil {
		return t, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.transfers = append(f.transfers, t)
	return t, nil
}

func (f *fakeAPI) Transfers(context.Context) ([]apitype.Transfer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.transfers), nil
}

func (f *fakeAPI) Status(context.Context) (apitype.Status, error) {
	via, _ := isRelayed(f.net.path())
	st := apitype.Status{Supernodes: []string{via}}
	for _, p := range f.net.peers {
		if p.Name != f.name {
			st.Contacts = append(st.Contacts, apitype.ContactStatus{Username: p.Name, Online: true, Addrs: []string{"/fake"}, Path: f.net.path()})
		}
	}
	return st, nil
}

func (f *fakeAPI) Send(_ context.Context, to, body string) (apitype.Message, error) {
	f.net.mu.Lock()
	f.net.sent++
	n := f.net.sent
	f.net.mu.Unlock()
	m := apitype.Message{ID: fmt.Sprintf("message-%04d", n), From: f.name, To: to, Body: body, State: apitype.MessageDelivered, Path: f.net.path()}
	if !f.net.drop(n) {
		in := m
		in.Incoming, in.State = true, apitype.MessageReceived
		f.net.api(to).receive(in, !f.net.quiet(n))
	}
	return m, nil
}

func (f *fakeAPI) receive(m apitype.Message, withEvent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append(f.history, m)
	if !withEvent {
		return
	}
	for _, ch := range f.watches {
		ch <- apitype.Event{Kind: apitype.EventMessage, Time: time.Now().Add(time.Millisecond), Message: &m}
	}
}

func (f *fakeAPI) History(_ context.Context, q apitype.HistoryQuery) ([]apitype.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apitype.Message
	for _, m := range f.history {
		if m.From == q.Contact {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeAPI) Watch(ctx context.Context, _ uint64) (<-chan apitype.Event, error) {
	in := make(chan apitype.Event, 10000)
	out := make(chan apitype.Event)
	f.mu.Lock()
	f.watches = append(f.watches, in)
	f.mu.Unlock()
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-in:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
