package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/app/xfer"
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
	publish string   // the path of the last Publish
	get     apitype.GetRequest
	share   apitype.ShareRequest
	accept  apitype.AcceptOfferRequest
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
		PortMappings: []apitype.PortMapping{{External: "/ip4/203.0.113.5/tcp/41234", Listen: "/ip4/0.0.0.0/tcp/4001"}},
		Supernodes:   []string{"12D3KooWSuper"}, SupernodeRTTs: map[string]float64{"12D3KooWSuper": 12.34}, Supernode: apitype.SupernodeState{Mode: "auto", Reason: "behind a NAT"},
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

func (f *fakeClient) Conversations(ctx context.Context) ([]apitype.Conversation, error) {
	f.called("Conversations")
	return []apitype.Conversation{{Contact: "bob", Unread: 2, Last: &apitype.Message{ID: "m1", From: "bob", To: "alice", Sent: fakeTime,
		Body: nasty, Incoming: true, State: apitype.MessageReceived, Path: "direct"}}}, nil
}

func (f *fakeClient) MarkRead(ctx context.Context, contact string) (apitype.ReadResult, error) {
	f.called("MarkRead")
	if err := userErr(contact); err != nil {
		return apitype.ReadResult{}, err
	}
	return apitype.ReadResult{Marked: 1}, nil
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

// The fake's publishing and transfer calls: "t1" is the one transfer,
// Get of the link "parley://bad" is refused, publishing "/nope" finds no
// file.

const fakeCID = "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"

func fakePublished(path string) apitype.Published {
	return apitype.Published{
		CID: fakeCID, Name: filepath.Base(path), Size: 40 << 20, Path: path,
		Link: "parley://" + fakeCID + "?name=" + filepath.Base(path) + "&size=41943040&from=12D3KooWThis",
	}
}

func fakeTransfer() apitype.Transfer {
	return apitype.Transfer{ID: "t1", CID: fakeCID, Name: "slides.pdf", Direction: "download",
		State: apitype.TransferFindingProviders, BytesTotal: 40 << 20, Dir: "/home/alice/Downloads"}
}

func (f *fakeClient) Publish(ctx context.Context, path string) (apitype.Published, error) {
	f.called("Publish")
	f.mu.Lock()
	f.publish = path
	f.mu.Unlock()
	if path == "/nope" {
		return apitype.Published{}, fs.ErrNotExist
	}
	return fakePublished(path), nil
}

func (f *fakeClient) Unpublish(ctx context.Context, cid string) error {
	f.called("Unpublish")
	if cid != fakeCID {
		return xfer.ErrInvalidLink
	}
	return nil
}

func (f *fakeClient) Published(ctx context.Context) ([]apitype.Published, error) {
	f.called("Published")
	return []apitype.Published{fakePublished("/home/alice/slides.pdf")}, nil
}

func (f *fakeClient) Get(ctx context.Context, req apitype.GetRequest) (apitype.Transfer, error) {
	f.called("Get")
	f.mu.Lock()
	f.get = req
	f.mu.Unlock()
	if req.Link == "parley://bad" {
		return apitype.Transfer{}, xfer.ErrInvalidLink
	}
	t := fakeTransfer()
	if req.Dir != "" {
		t.Dir = req.Dir
	}
	return t, nil
}

func (f *fakeClient) Transfers(ctx context.Context) ([]apitype.Transfer, error) {
	f.called("Transfers")
	t := fakeTransfer()
	t.State, t.BytesDone, t.Rate, t.Peers = apitype.TransferRunning, 10<<20, 2<<20, 3
	return []apitype.Transfer{t}, nil
}

func transferErr(id string) error {
	if id != "t1" {
		return fmt.Errorf("transfer %q: %w", id, xfer.ErrNoSuchTransfer)
	}
	return nil
}

func (f *fakeClient) PauseTransfer(ctx context.Context, id string) error {
	f.called("PauseTransfer")
	return transferErr(id)
}

func (f *fakeClient) ResumeTransfer(ctx context.Context, id string) error {
	f.called("ResumeTransfer")
	return transferErr(id)
}

func (f *fakeClient) CancelTransfer(ctx context.Context, id string) error {
	f.called("CancelTransfer")
	return transferErr(id)
}

func (f *fakeClient) lastPublish() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.publish
}

func (f *fakeClient) lastGet() apitype.GetRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get
}

// The fake's offers: "o1" is an incoming offer from bob, "o2" the
// outgoing one Share makes, "o3" an incoming one with a hostile name.

func fakeOffers() []apitype.Offer {
	return []apitype.Offer{
		{ID: "o1", Direction: "in", From: "bob", To: "alice", Name: "talk.mp4", Size: 40 << 20, Files: 1, CID: fakeCID,
			State: apitype.OfferPending, Delivered: true, Created: fakeTime},
		{ID: "o2", Direction: "out", From: "alice", To: "bob", Name: "photos", Size: 3 << 20, Files: 12, CID: fakeCID,
			State: apitype.OfferPending, Path: "/home/alice/photos", Created: fakeTime},
		{ID: "o3", Direction: "in", From: "eve", To: "alice", Name: "x\x1b[31mred\u202etxt.exe", Size: 1, Files: 1, CID: fakeCID,
			State: apitype.OfferDeclined, Delivered: true, Created: fakeTime},
	}
}

func offerErr(id string) error {
	if id != "o1" && id != "o2" && id != "o3" {
		return fmt.Errorf("offer %q: %w", id, offers.ErrNoSuchOffer)
	}
	return nil
}

func (f *fakeClient) Share(ctx context.Context, req apitype.ShareRequest) (apitype.Offer, error) {
	f.called("Share")
	f.mu.Lock()
	f.share = req
	f.mu.Unlock()
	if err := userErr(req.To); err != nil {
		return apitype.Offer{}, err
	}
	if req.Path == "/nope" {
		return apitype.Offer{}, fs.ErrNotExist
	}
	o := fakeOffers()[1]
	o.To, o.Name, o.Path = req.To, filepath.Base(req.Path), req.Path
	return o, nil
}

func (f *fakeClient) Offers(ctx context.Context) ([]apitype.Offer, error) {
	f.called("Offers")
	return fakeOffers(), nil
}

func (f *fakeClient) AcceptOffer(ctx context.Context, req apitype.AcceptOfferRequest) (apitype.Transfer, error) {
	f.called("AcceptOffer")
	f.mu.Lock()
	f.accept = req
	f.mu.Unlock()
	if err := offerErr(req.ID); err != nil {
		return apitype.Transfer{}, err
	}
	t := fakeTransfer()
	if req.Dir != "" {
		t.Dir = req.Dir
	}
	return t, nil
}

func (f *fakeClient) DeclineOffer(ctx context.Context, id string) error {
	f.called("DeclineOffer")
	return offerErr(id)
}

func (f *fakeClient) CancelOffer(ctx context.Context, id string) error {
	f.called("CancelOffer")
	return offerErr(id)
}

func (f *fakeClient) lastShare() apitype.ShareRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.share
}

func (f *fakeClient) lastAccept() apitype.AcceptOfferRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accept
}
