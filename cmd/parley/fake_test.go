package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/rendezvous"
)

// fakeClient is an apitype.Client with canned answers, served by the real
// local API (api.Listen) so that the CLI talks to it over HTTP like to a
// daemon: "carol" is not a contact, "nobody" does not exist, "boom" fails.
type fakeClient struct {
	mu      sync.Mutex           // guards the following
	watches []chan apitype.Event // what each Watch streams, in order
	calls   []string             // the methods called, in order
	history apitype.HistoryQuery
	probe   int64
	since   []uint64 // the cursor of each Watch
	body    string   // of the message History returns
}

const fakeEventSeq = 41

var fakeTime = time.Date(2026, 12, 6, 14, 25, 31, 0, time.Local)

// startFake serves a fakeClient in a fresh data directory.
func startFake(t *testing.T) (*fakeClient, *api.Server, string) {
	t.Helper()
	f := &fakeClient{body: "hello"}
	dir := t.TempDir()
	s, err := api.Listen(f, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f, s, dir
}

func (f *fakeClient) called(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeClient) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// userErr is the error the fake answers for a username.
func userErr(user string) error {
	switch user {
	case "nobody":
		return rendezvous.ErrNotFound
	case "carol":
		return chat.ErrNotAContact
	case "boom":
		return errors.New("boom")
	case "evil":
		return fmt.Errorf("%w: evil\x1b[2J\nparley: fake", rendezvous.ErrNotFound)
	}
	return nil
}

func (f *fakeClient) Status(ctx context.Context) (apitype.Status, error) {
	f.called("Status")
	return apitype.Status{
		Peer: "12D3KooWThis", Username: "alice", LoggedIn: true, Reachability: "private",
		Supernodes: []string{"12D3KooWSuper"}, Supernode: apitype.SupernodeState{Mode: "auto", Reason: "behind a NAT"},
		DHT:      apitype.DHTStatus{Mode: "client", Peers: 3},
		Contacts: []apitype.ContactStatus{{Username: "bob", Online: true, Peer: "12D3KooWBob", Path: "direct"}},
		Incoming: []string{"dave"}, Outgoing: []string{},
		EventSeq: fakeEventSeq,
	}, nil
}

func (f *fakeClient) Register(ctx context.Context, username, password string) (apitype.Account, error) {
	f.called("Register")
	return apitype.Account{Username: username}, userErr(username)
}

func (f *fakeClient) Enrol(ctx context.Context, username, password string) (apitype.Account, error) {
	f.called("Enrol")
	return apitype.Account{Username: username}, userErr(username)
}

func (f *fakeClient) Devices(ctx context.Context) ([]apitype.Device, error) {
	f.called("Devices")
	return []apitype.Device{{Peer: "12D3KooWThis", Enrolled: fakeTime, Online: true, This: true}}, nil
}

func (f *fakeClient) RevokeDevice(ctx context.Context, peer string) error {
	f.called("RevokeDevice")
	if peer != "12D3KooWLaptop" {
		return rendezvous.ErrNotFound
	}
	return nil
}

func (f *fakeClient) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	f.called("ChangePassword")
	return nil
}

func (f *fakeClient) DeleteAccount(ctx context.Context, password string) error {
	f.called("DeleteAccount")
	return nil
}

func (f *fakeClient) Contacts(ctx context.Context) (apitype.ContactBook, error) {
	f.called("Contacts")
	return apitype.ContactBook{
		Contacts: []apitype.ContactStatus{{Username: "bob", Online: true, Path: "direct"}},
		Incoming: []string{"dave"}, Outgoing: []string{}, Blocked: []string{"mallory"},
	}, nil
}

func (f *fakeClient) RequestContact(ctx context.Context, username string) (apitype.ContactRequestResult, error) {
	f.called("RequestContact")
	return apitype.ContactRequestResult{}, userErr(username)
}

func (f *fakeClient) AcceptContact(ctx context.Context, username string) error {
	f.called("AcceptContact")
	return userErr(username)
}

func (f *fakeClient) DeclineContact(ctx context.Context, username string) error {
	f.called("DeclineContact")
	return userErr(username)
}

func (f *fakeClient) RemoveContact(ctx context.Context, username string) error {
	f.called("RemoveContact")
	return userErr(username)
}

func (f *fakeClient) Block(ctx context.Context, username string) error {
	f.called("Block")
	return userErr(username)
}

func (f *fakeClient) Unblock(ctx context.Context, username string) error {
	f.called("Unblock")
	return userErr(username)
}

func (f *fakeClient) Send(ctx context.Context, to, body string) (apitype.Message, error) {
	f.called("Send")
	if err := userErr(to); err != nil {
		return apitype.Message{}, err
	}
	return apitype.Message{ID: "m1", From: "alice", To: to, Sent: fakeTime, Body: body, State: apitype.MessageDelivered, Path: "direct"}, nil
}

func (f *fakeClient) History(ctx context.Context, q apitype.HistoryQuery) ([]apitype.Message, error) {
	f.called("History")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = q
	if q.Contact != "bob" {
		return nil, nil
	}
	msgs := []apitype.Message{
		{ID: "m1", From: "bob", To: "alice", Sent: fakeTime, Body: f.body, Incoming: true, State: apitype.MessageReceived, Path: "relayed via 12D3KooWSuper"},
		{ID: "m2", From: "alice", To: "bob", Sent: fakeTime, Body: "hi", State: apitype.MessageQueued},
	}
	if q.Limit < len(msgs) {
		msgs = msgs[len(msgs)-q.Limit:]
	}
	return msgs, nil
}

func (f *fakeClient) Probe(ctx context.Context, username string, size int64) (apitype.ProbeResult, error) {
	f.called("Probe")
	f.mu.Lock()
	f.probe = size
	f.mu.Unlock()
	if err := userErr(username); err != nil {
		return apitype.ProbeResult{}, err
	}
	return apitype.ProbeResult{Device: "12D3KooWBob", Bytes: size, Duration: time.Second, MBPerSecond: float64(size) / 1e6, Path: "direct", Intact: true}, nil
}

func (f *fakeClient) Watch(ctx context.Context, since uint64) (<-chan apitype.Event, error) {
	f.called("Watch")
	events := make(chan apitype.Event)
	f.mu.Lock()
	f.since = append(f.since, since)
	f.watches = append(f.watches, events)
	f.mu.Unlock()
	out := make(chan apitype.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeClient) lastHistory() apitype.HistoryQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.history
}

func (f *fakeClient) lastProbe() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probe
}
