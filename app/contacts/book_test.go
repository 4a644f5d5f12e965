package contacts

import (
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous/client"
)

// names gives the test's peers readable names in failures.
type names map[peer.ID]string

func newID(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// world is a set of devices and supernodes, by name.
type world struct {
	t     *testing.T
	ids   map[string]peer.ID
	names names
}

func newWorld(t *testing.T) *world {
	return &world{t: t, ids: make(map[string]peer.ID), names: make(names)}
}

func (w *world) id(name string) peer.ID {
	if id, ok := w.ids[name]; ok {
		return id
	}
	id := newID(w.t)
	w.ids[name], w.names[id] = id, name
	return id
}

// dev is a device with a direct address, and a circuit address through
// each of relays.
func (w *world) dev(name string, relays ...string) peer.AddrInfo {
	d := peer.AddrInfo{ID: w.id(name), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4001")}}
	for _, r := range relays {
		d.Addrs = append(d.Addrs, ma.StringCast("/ip4/192.0.2.9/tcp/4001/p2p/"+w.id(r).String()+"/p2p-circuit"))
	}
	return d
}

func online(name string, devices ...peer.AddrInfo) client.Presence {
	last := devices[len(devices)-1]
	return client.Presence{Username: name, Online: true, Peer: last.ID, Addrs: last.Addrs, Devices: devices}
}

func offline(name string) client.Presence { return client.Presence{Username: name} }

// input is one thing that happens to a book.
type input struct {
	login    *client.Session // Contacts and Incoming only
	restore  []client.Presence
	presence *client.Presence
	event    *client.ContactEvent
	listing  *client.ContactBook
	// read takes the generation a listing is read at; the next listing
	// is applied with it (a fresh one otherwise).
	read   bool
	logout bool
	forget bool
	stale  bool // the listing must be refused
}

func login(incoming []string, contacts ...client.Presence) input {
	return input{login: &client.Session{Contacts: contacts, Incoming: incoming}}
}
func restore(ps ...client.Presence) input { return input{restore: ps} }
func push(p client.Presence) input        { return input{presence: &p} }
func ev(c client.ContactChange, name string) input {
	return input{event: &client.ContactEvent{Change: c, Username: name}}
}
func listing(l client.ContactBook) input { return input{listing: &l} }

// staleListing is a listing read before the inputs since the last read.
func staleListing(l client.ContactBook) input { return input{listing: &l, stale: true} }

var read = input{read: true}

// describe renders an update as lines a test can compare and a person can
// read: "presence bob online [phone laptop]", "contact bob accepted",
// "set phone via [r1]", "gone laptop".
func (n names) describe(u Update) (evs, addrs []string) {
	for _, e := range u.Events {
		switch e.Kind {
		case apitype.EventPresence:
			c := e.Contact
			state := "offline"
			if c.Online {
				state = "online"
			}
			evs = append(evs, fmt.Sprintf("presence %s %s %v", c.Username, state, n.strs(c.Devices)))
			if c.Path != "" {
				evs = append(evs, "path set by the book: "+c.Path)
			}
		case apitype.EventContact:
			evs = append(evs, fmt.Sprintf("contact %s %s", e.Username, e.Change))
		default:
			evs = append(evs, fmt.Sprintf("unexpected %s", e.Kind))
		}
	}
	for _, a := range u.Addrs {
		if a.Gone {
			addrs = append(addrs, "gone "+n[a.Device])
			continue
		}
		s := fmt.Sprintf("set %s %d addrs", n[a.Device], len(a.Addrs))
		if len(a.Relays) > 0 {
			var rs []string
			for _, r := range a.Relays {
				rs = append(rs, n[r])
			}
			s += " via " + strings.Join(rs, ",")
		}
		addrs = append(addrs, s)
	}
	return evs, addrs
}

func (n names) strs(ids []string) []string {
	var out []string
	for _, s := range ids {
		id, err := peer.Decode(s)
		if err != nil {
			out = append(out, s)
			continue
		}
		out = append(out, n[id])
	}
	return out
}

// brief renders a listing: "bob online phone", "carol offline".
func (n names) brief(l apitype.ContactBook) []string {
	var out []string
	for _, c := range l.Contacts {
		s := c.Username + " offline"
		if c.Online {
			s = c.Username + " online"
		}
		if c.Peer != "" {
			id, _ := peer.Decode(c.Peer)
			s += " " + n[id]
		}
		out = append(out, s)
	}
	return out
}

func TestBook(t *testing.T) {
	type want struct {
		contacts, incoming, outgoing, blocked []string
		// events and addrs are every update's, in order; lastEvents and
		// lastAddrs the last input's, when set.
		events, addrs         []string
		lastEvents, lastAddrs []string
		// lookup maps a username to the device Lookup names ("" for an
		// offline contact, "-" for no contact).
		lookup map[string]string
		// owner maps a device to the contact UsernameOf names ("-" for
		// none).
		owner map[string]string
	}
	tests := []struct {
		name   string
		inputs func(w *world) []input
		want   want
	}{
		{
			name:   "request arrives",
			inputs: func(w *world) []input { return []input{ev(client.ContactRequested, "bob")} },
			want: want{
				incoming: []string{"bob"},
				events:   []string{"contact bob requested"},
				lookup:   map[string]string{"bob": "-"},
			},
		},
		{
			name: "accepted, presence follows",
			inputs: func(w *world) []input {
				return []input{ev(client.ContactRequested, "bob"), ev(client.ContactAccepted, "bob"), push(online("bob", w.dev("phone")))}
			},
			want: want{
				contacts: []string{"bob online phone"},
				events:   []string{"contact bob requested", "contact bob accepted", "presence bob online [phone]"},
				addrs:    []string{"set phone 1 addrs"},
				lookup:   map[string]string{"bob": "phone"},
				owner:    map[string]string{"phone": "bob"},
			},
		},
		{
			name: "presence overtakes the acceptance",
			inputs: func(w *world) []input {
				return []input{listing(client.ContactBook{Outgoing: []string{"bob"}}), push(online("bob", w.dev("phone"))), ev(client.ContactAccepted, "bob")}
			},
			want: want{
				contacts: []string{"bob online phone"},
				events:   []string{"presence bob online [phone]", "contact bob accepted"},
				addrs:    []string{"set phone 1 addrs"},
				lookup:   map[string]string{"bob": "phone"},
			},
		},
		{
			name: "accepted, presence only in the listing",
			inputs: func(w *world) []input {
				return []input{ev(client.ContactAccepted, "bob"), listing(client.ContactBook{Accepted: []client.Presence{online("bob", w.dev("phone"))}})}
			},
			want: want{
				contacts: []string{"bob online phone"},
				events:   []string{"contact bob accepted", "presence bob online [phone]"},
				addrs:    []string{"set phone 1 addrs"},
			},
		},
		{
			name: "accepted, not yet seen: offline with no device",
			inputs: func(w *world) []input {
				return []input{login(nil), ev(client.ContactAccepted, "bob")}
			},
			want: want{
				contacts: []string{"bob offline"},
				events:   []string{"contact bob accepted"},
				lookup:   map[string]string{"bob": ""},
			},
		},
		{
			name: "a listing does not undo a newer push",
			inputs: func(w *world) []input {
				return []input{
					push(online("bob", w.dev("phone"))),
					push(offline("bob")),
					listing(client.ContactBook{Accepted: []client.Presence{online("bob", w.dev("phone"))}}),
				}
			},
			want: want{
				contacts:   []string{"bob offline"},
				lastEvents: []string{},
				lastAddrs:  []string{},
			},
		},
		{
			name: "a listing read before a push is not applied",
			inputs: func(w *world) []input {
				return []input{
					read,
					ev(client.ContactRequested, "carol"),
					staleListing(client.ContactBook{Outgoing: []string{"dave"}}),
				}
			},
			want: want{
				incoming:   []string{"carol"},
				lastEvents: []string{},
			},
		},
		{
			name: "a listing read before a contact's first presence is not applied",
			inputs: func(w *world) []input {
				return []input{
					read,
					push(online("bob", w.dev("phone"))),
					staleListing(client.ContactBook{}),
				}
			},
			want: want{
				contacts: []string{"bob online phone"},
			},
		},
		{
			name: "a listing read before a known contact's presence is applied",
			inputs: func(w *world) []input {
				return []input{
					push(online("bob", w.dev("phone"))),
					read,
					push(offline("bob")), // presence of a known contact: no generation
					listing(client.ContactBook{Accepted: []client.Presence{online("bob", w.dev("phone"))}, Blocked: []string{"eve"}}),
				}
			},
			want: want{
				contacts: []string{"bob offline"},
				blocked:  []string{"eve"},
			},
		},
		{
			name: "removed, stale presence ignored",
			inputs: func(w *world) []input {
				return []input{push(online("bob", w.dev("phone"))), ev(client.ContactRemoved, "bob"), push(online("bob", w.dev("phone")))}
			},
			want: want{
				events:     []string{"presence bob online [phone]", "contact bob removed"},
				addrs:      []string{"set phone 1 addrs", "gone phone"},
				lastEvents: []string{},
				lookup:     map[string]string{"bob": "-"},
				owner:      map[string]string{"phone": "-"},
			},
		},
		{
			name: "removed, then accepted again",
			inputs: func(w *world) []input {
				return []input{
					push(online("bob", w.dev("phone"))), ev(client.ContactRemoved, "bob"),
					ev(client.ContactAccepted, "bob"), push(online("bob", w.dev("phone"))),
				}
			},
			want: want{
				contacts: []string{"bob online phone"},
				addrs:    []string{"set phone 1 addrs", "gone phone", "set phone 1 addrs"},
			},
		},
		{
			name: "listing drops a contact removed meanwhile",
			inputs: func(w *world) []input {
				return []input{push(online("bob", w.dev("phone"))), listing(client.ContactBook{Blocked: []string{"bob"}}), push(online("bob", w.dev("laptop")))}
			},
			want: want{
				blocked:    []string{"bob"},
				events:     []string{"presence bob online [phone]", "contact bob removed"},
				addrs:      []string{"set phone 1 addrs", "gone phone"},
				lastEvents: []string{},
			},
		},
		{
			name: "listing sets requests both ways",
			inputs: func(w *world) []input {
				return []input{ev(client.ContactRequested, "carol"), listing(client.ContactBook{Incoming: []string{"dave"}, Outgoing: []string{"erin"}})}
			},
			want: want{
				incoming: []string{"dave"},
				outgoing: []string{"erin"},
				events:   []string{"contact carol requested"},
			},
		},
		{
			name: "a request from a contact is ignored",
			inputs: func(w *world) []input {
				return []input{push(online("bob", w.dev("phone"))), ev(client.ContactRequested, "bob")}
			},
			want: want{
				contacts:   []string{"bob online phone"},
				lastEvents: []string{},
			},
		},
		{
			name:   "an unknown change is ignored",
			inputs: func(w *world) []input { return []input{ev(client.ContactChange(99), "bob")} },
			want:   want{events: []string{}},
		},
		{
			name: "a device logs out: its addresses go",
			inputs: func(w *world) []input {
				return []input{push(online("bob", w.dev("phone"), w.dev("laptop"))), push(online("bob", w.dev("phone")))}
			},
			want: want{
				contacts:  []string{"bob online phone"},
				lastAddrs: []string{"gone laptop", "set phone 1 addrs"},
				lookup:    map[string]string{"bob": "phone"},
				owner:     map[string]string{"phone": "bob", "laptop": "-"},
			},
		},
		{
			name: "the latest device gets messages, every online device is the contact's",
			inputs: func(w *world) []input {
				return []input{login(nil, online("bob", w.dev("phone"), w.dev("laptop")))}
			},
			want: want{
				contacts: []string{"bob online laptop"},
				events:   []string{"presence bob online [phone laptop]"},
				addrs:    []string{"set phone 1 addrs", "set laptop 1 addrs"},
				lookup:   map[string]string{"bob": "laptop"},
				owner:    map[string]string{"phone": "bob", "laptop": "bob"},
			},
		},
		{
			name: "the contact goes offline: every address goes",
			inputs: func(w *world) []input {
				return []input{login(nil, online("bob", w.dev("phone"), w.dev("laptop"))), push(offline("bob"))}
			},
			want: want{
				contacts:   []string{"bob offline"},
				lastEvents: []string{"presence bob offline []"},
				lastAddrs:  []string{"gone phone", "gone laptop"},
				lookup:     map[string]string{"bob": ""},
				owner:      map[string]string{"phone": "-"},
			},
		},
		{
			name: "a device moves to another supernode",
			inputs: func(w *world) []input {
				return []input{push(online("bob", w.dev("phone", "r1"))), push(online("bob", w.dev("phone", "r2", "r3")))}
			},
			want: want{
				addrs:    []string{"set phone 2 addrs via r1", "set phone 3 addrs via r2,r3"},
				contacts: []string{"bob online phone"},
			},
		},
		{
			name: "the login snapshot replaces the book",
			inputs: func(w *world) []input {
				return []input{
					restore(client.Presence{Username: "bob", Peer: w.id("phone"), Devices: []peer.AddrInfo{w.dev("phone")}},
						client.Presence{Username: "carol", Peer: w.id("tablet"), Devices: []peer.AddrInfo{w.dev("tablet")}}),
					listing(client.ContactBook{Accepted: []client.Presence{offline("bob"), offline("carol")}, Outgoing: []string{"erin"}, Incoming: []string{"frank"}}),
					login([]string{"dave"}, online("bob", w.dev("laptop"))),
				}
			},
			want: want{
				contacts:   []string{"bob online laptop"},
				incoming:   []string{"dave"},
				outgoing:   []string{"erin"},
				lastEvents: []string{"presence bob online [laptop]", "contact dave requested"},
				lastAddrs:  []string{"gone tablet", "gone phone", "set laptop 1 addrs"},
				lookup:     map[string]string{"bob": "laptop", "carol": "-"},
			},
		},
		{
			name: "a request in the snapshot answers ours",
			inputs: func(w *world) []input {
				return []input{listing(client.ContactBook{Outgoing: []string{"dave"}}), login([]string{"dave"})}
			},
			want: want{incoming: []string{"dave"}},
		},
		{
			name: "restored contacts: last devices, until the server speaks",
			inputs: func(w *world) []input {
				return []input{restore(client.Presence{Username: "bob", Peer: w.id("laptop"), Devices: []peer.AddrInfo{w.dev("phone"), w.dev("laptop")}})}
			},
			want: want{
				contacts: []string{"bob offline"},
				events:   []string{},
				addrs:    []string{},
				lookup:   map[string]string{"bob": "laptop"},
				owner:    map[string]string{"phone": "bob", "laptop": "bob"},
			},
		},
		{
			name: "logout: offline, messages go to the last device",
			inputs: func(w *world) []input {
				return []input{login(nil, online("bob", w.dev("phone"), w.dev("laptop"))), {logout: true}}
			},
			want: want{
				contacts:   []string{"bob offline"},
				lastEvents: []string{},
				lastAddrs:  []string{},
				lookup:     map[string]string{"bob": "laptop"},
				owner:      map[string]string{"phone": "bob", "laptop": "bob"},
			},
		},
		{
			name: "forget: the account is gone",
			inputs: func(w *world) []input {
				return []input{
					login([]string{"dave"}, online("bob", w.dev("phone")), online("carol", w.dev("tablet"))),
					listing(client.ContactBook{Accepted: []client.Presence{online("bob", w.dev("phone")), online("carol", w.dev("tablet"))}, Blocked: []string{"eve"}, Outgoing: []string{"erin"}}),
					{forget: true},
					push(online("bob", w.dev("phone"))), // a late push: the book has no session
				}
			},
			want: want{
				contacts: []string{"bob online phone"},
				addrs:    []string{"set phone 1 addrs", "set tablet 1 addrs", "gone phone", "gone tablet", "set phone 1 addrs"},
				lookup:   map[string]string{"carol": "-", "bob": "phone"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			b := New()
			var allEvents, allAddrs, lastEvents, lastAddrs []string
			var gen uint64
			haveGen := false
			for i, in := range tt.inputs(w) {
				var u Update
				switch {
				case in.login != nil:
					u = b.Login(in.login.Contacts, in.login.Incoming)
				case in.restore != nil:
					b.Restore(in.restore)
				case in.presence != nil:
					u = b.Presence(*in.presence)
				case in.event != nil:
					u = b.ContactEvent(*in.event)
				case in.read:
					gen, haveGen = b.Gen(), true
					continue
				case in.listing != nil:
					if !haveGen {
						gen = b.Gen()
					}
					var ok bool
					u, ok = b.ApplyListing(*in.listing, gen)
					if ok == in.stale {
						t.Fatalf("input %d: listing applied: got %v, want %v", i, ok, !in.stale)
					}
					haveGen = false
				case in.logout:
					b.Logout()
				case in.forget:
					u = b.Forget()
				}
				lastEvents, lastAddrs = w.names.describe(u)
				allEvents = append(allEvents, lastEvents...)
				allAddrs = append(allAddrs, lastAddrs...)
			}
			l := b.Listing()
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"contacts", w.names.brief(l), tt.want.contacts},
				{"incoming", l.Incoming, tt.want.incoming},
				{"outgoing", l.Outgoing, tt.want.outgoing},
				{"blocked", l.Blocked, tt.want.blocked},
			} {
				if !equal(c.got, c.want) {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"events", allEvents, tt.want.events},
				{"address changes", allAddrs, tt.want.addrs},
				{"last input's events", lastEvents, tt.want.lastEvents},
				{"last input's address changes", lastAddrs, tt.want.lastAddrs},
			} {
				if c.want != nil && !equal(c.got, c.want) {
					t.Errorf("%s:\n got  %q\n want %q", c.what, c.got, c.want)
				}
			}
			for name, want := range tt.want.lookup {
				id, ok := b.Lookup(name)
				got := w.names[id]
				if !ok {
					got = "-"
				}
				if got != want {
					t.Errorf("Lookup(%s): got %q, want %q", name, got, want)
				}
			}
			for dev, want := range tt.want.owner {
				got, ok := b.UsernameOf(w.id(dev))
				if !ok {
					got = "-"
				}
				if got != want {
					t.Errorf("UsernameOf(%s): got %q, want %q", dev, got, want)
				}
			}
		})
	}
}

// equal compares string lists, nil and empty alike.
func equal(got, want []string) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// TestListingIsSortedAndComplete: the API's listing is sorted, with every
// list non-nil (JSON shows [] rather than null), and carries no path.
func TestListingIsSortedAndComplete(t *testing.T) {
	w := newWorld(t)
	b := New()
	b.Login([]client.Presence{online("carol", w.dev("tablet")), offline("bob")}, []string{"zed", "amy"})
	l := b.Listing()
	if l.Incoming == nil || l.Outgoing == nil || l.Blocked == nil {
		t.Errorf("nil lists: %#v", l)
	}
	if got := w.names.brief(l); !reflect.DeepEqual(got, []string{"bob offline", "carol online tablet"}) {
		t.Errorf("contacts: got %q", got)
	}
	if !reflect.DeepEqual(l.Incoming, []string{"amy", "zed"}) {
		t.Errorf("incoming: got %q", l.Incoming)
	}
	for _, c := range l.Contacts {
		if c.Path != "" {
			t.Errorf("%s: the book set path %q", c.Username, c.Path)
		}
	}
	if c := l.Contacts[1]; len(c.Addrs) != 1 || !reflect.DeepEqual(c.Devices, []string{w.id("tablet").String()}) {
		t.Errorf("carol: %+v", c)
	}
}
