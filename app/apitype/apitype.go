// Package apitype holds the types of Parley's client API: the Client
// interface (everything a user can do), its request and response structs,
// its events and its error codes.
//
// The API has two homes that implement Client: the engine in-process
// (app.Engine) and the daemon's local HTTP API over the network (the Go
// client in app/api). The HTTP server, the Go client, the CLI and the web
// UI all use these types, so a field has one name everywhere; the JSON
// names are stable (scripts read them through `parley ... --json`).
//
// This package imports nothing of Parley's, so a program that only talks
// to a daemon links none of the engine.
package apitype

import (
	"context"
	"strings"
	"time"
)

// Client is everything a Parley user can do with their device. Errors
// from a Client unwrap to the sentinel errors of the package that owns the
// contract (rendezvous.ErrNotFound, chat.ErrNotAContact, …), whichever
// home the Client is; Code names them on the HTTP API.
type Client interface {
	// Status is a snapshot of the device: login, reachability,
	// supernodes, DHT, contacts with presence and connection paths.
	// Status.EventSeq is the last event published before the snapshot, so
	// Watch(ctx, s.EventSeq) misses nothing that happened after it.
	Status(ctx context.Context) (Status, error)

	// Register creates an account with this device and waits until it is
	// logged in.
	Register(ctx context.Context, username, password string) (Account, error)
	// Enrol adds this device to an existing account and waits until it is
	// logged in.
	Enrol(ctx context.Context, username, password string) (Account, error)
	// Devices lists the account's devices, oldest first, revoked ones
	// included.
	Devices(ctx context.Context) ([]Device, error)
	// RevokeDevice revokes one of the account's devices by peer ID.
	RevokeDevice(ctx context.Context, peer string) error
	// ChangePassword replaces the account's password.
	ChangePassword(ctx context.Context, oldPassword, newPassword string) error
	// DeleteAccount deletes the account, its devices and its contacts.
	DeleteAccount(ctx context.Context, password string) error

	// Contacts reads the contact book from the server and returns it with
	// each contact's presence and connection path.
	Contacts(ctx context.Context) (ContactBook, error)
	// RequestContact asks username to become a contact. Accepted is true
	// when the two are contacts now (username had asked too).
	RequestContact(ctx context.Context, username string) (ContactRequestResult, error)
	AcceptContact(ctx context.Context, username string) error  // accept username's request
	DeclineContact(ctx context.Context, username string) error // drop username's request; they are not told
	RemoveContact(ctx context.Context, username string) error  // end a contact or withdraw a request
	Block(ctx context.Context, username string) error          // remove username and ignore their requests
	Unblock(ctx context.Context, username string) error        // lift a block

	// Send sends a chat message. A contact who is offline or unreachable
	// gets it later: the message comes back queued and a message_state
	// event follows when it is delivered.
	Send(ctx context.Context, to, body string) (Message, error)
	// History returns messages exchanged with a contact, oldest first,
	// in the order every device of the user shows them (the sender's
	// clock, then the message id); q.Before pages back.
	History(ctx context.Context, q HistoryQuery) ([]Message, error)
	// Conversations lists the conversations, the one with the newest
	// message first, with their unread counts.
	Conversations(ctx context.Context) ([]Conversation, error)
	// MarkRead marks every message from contact read, on every device of
	// the user, and sends contact one read receipt for them; an unread
	// event follows.
	MarkRead(ctx context.Context, contact string) (ReadResult, error)
	// Probe streams size bytes to the device a contact is online on and
	// reports throughput, path and integrity.
	Probe(ctx context.Context, username string, size int64) (ProbeResult, error)

	// Publish shares the file or folder at path in place (nothing is
	// copied; a file changed afterwards is no longer served) and
	// announces its CID in the DHT, so that any member holding the link
	// can fetch it. Publishing the same unchanged content again returns
	// the same CID. path must be absolute.
	Publish(ctx context.Context, path string) (Published, error)
	// Unpublish stops announcing and serving the content cid (a CID that
	// is not one Parley makes is an invalid link). Unpublishing what is
	// not published is not an error; provider records already in the DHT
	// expire by themselves.
	Unpublish(ctx context.Context, cid string) error
	// Published lists the published content, oldest first. Downloads
	// that are seeded (see GetRequest.NoSeed) are in it too.
	Published(ctx context.Context) ([]Published, error)
	// Get starts downloading the content a link names and returns at
	// once; transfer events follow it until it is done, failed or
	// cancelled. Getting content that is already being downloaded into the
	// same folder returns that transfer. An invalid link's error unwraps
	// to the invalid link sentinel (code invalid_link).
	Get(ctx context.Context, req GetRequest) (Transfer, error)
	// Transfers lists the transfers of this daemon, oldest first,
	// including finished ones. Unfinished downloads survive a restart and
	// go on by themselves (paused ones stay paused).
	Transfers(ctx context.Context) ([]Transfer, error)
	// PauseTransfer stops a download, keeping its verified chunks;
	// ResumeTransfer goes on from them (also after a failure);
	// CancelTransfer stops it and deletes what was downloaded. An unknown
	// id's error unwraps to the no such transfer sentinel (code
	// no_such_transfer).
	PauseTransfer(ctx context.Context, id string) error
	ResumeTransfer(ctx context.Context, id string) error
	CancelTransfer(ctx context.Context, id string) error

	// Share offers the file or folder at req.Path (absolute) to the
	// contact req.To: it is shared in place, not announced, and served
	// only to the devices of that contact. The offer reaches the contact
	// now, or when they come online; offer events follow it (delivered,
	// accepted, declined). Sharing with someone who is not a contact
	// fails with the not a contact sentinel (code not_a_contact).
	Share(ctx context.Context, req ShareRequest) (Offer, error)
	// Offers lists the offers made and received, oldest first.
	Offers(ctx context.Context) ([]Offer, error)
	// AcceptOffer accepts an incoming offer: it starts downloading the
	// content from the device that offered it into req.Dir (absolute; ""
	// means the downloads folder), without seeding it, and tells the
	// sender. Accepting an accepted offer returns its transfer. An
	// unknown id's error unwraps to the no such offer sentinel (code
	// no_such_offer); an offer declined, cancelled or made by this device
	// to the offer not pending sentinel (code offer_not_pending).
	AcceptOffer(ctx context.Context, req AcceptOfferRequest) (Transfer, error)
	// DeclineOffer declines an incoming offer and tells the sender;
	// declining a declined offer is not an error.
	DeclineOffer(ctx context.Context, id string) error
	// CancelOffer withdraws an outgoing offer: the content is no longer
	// served to the recipient. A download already under way stops.
	CancelOffer(ctx context.Context, id string) error

	// Watch streams the events numbered after since, in order, until ctx
	// ends (the channel is closed then). since is the Seq of the last
	// event the caller saw, or Status.EventSeq for "from this snapshot
	// on". If events after since are no longer kept, the stream starts
	// with an EventGap event: re-read Status, then go on. A caller that
	// does not keep up is sent an EventGap too, rather than blocking the
	// engine.
	Watch(ctx context.Context, since uint64) (<-chan Event, error)
}

// Account is the account a device acts for after Register or Enrol.
type Account struct {
	Username string `json:"username"`
}

// Status is a snapshot of the client for the UI and the CLI.
type Status struct {
	// Peer is this device's peer ID.
	Peer string `json:"peer"`
	// Username is the account this device acts for; it stays set while a
	// lost session is being restored, and is "" when the device is not
	// enrolled or can no longer log in.
	Username string `json:"username,omitempty"`
	// LoggedIn is true while a rendezvous session is up.
	LoggedIn bool `json:"logged_in"`
	// Login says why the device is not logged in and what to do; nil
	// while it is logged in or still logging in for the first time.
	Login *LoginProblem `json:"login_problem,omitempty"`
	// Rendezvous is the rendezvous server's multiaddr (the network this
	// device is on); "" while no network is chosen (see Setup).
	Rendezvous string `json:"rendezvous,omitempty"`
	// Setup is set while the daemon waits for a network to be chosen
	// (POST /api/network); nil once it has one.
	Setup *NetworkSetup `json:"setup,omitempty"`
	// Reachability is "public", "private" or "unknown".
	Reachability string `json:"reachability"`
	// NAT is what libp2p learned of the NAT in front of this device.
	NAT NATStatus `json:"nat"`
	// PublicAddrs are the addresses AutoNAT v2 confirmed reachable from
	// the internet; empty behind a NAT.
	PublicAddrs []string `json:"public_addrs"`
	// PortMappings are the ports the home router forwards to this device
	// (UPnP IGD or NAT-PMP): only mappings the router granted and that are
	// in force now; empty when it has none, refused or has no such service.
	PortMappings []PortMapping `json:"port_mappings"`
	// QUICBuffers, when not empty, says that the system's UDP socket
	// buffer limits keep QUIC below the buffers it wants (it then drops
	// packets at high rates) and the command that raises them.
	QUICBuffers string `json:"quic_buffers,omitempty"`
	// Addrs are what contacts are told: direct and circuit addresses.
	Addrs []string `json:"addrs"`
	// Supernodes are the supernodes holding a relay slot for us.
	Supernodes []string `json:"supernodes"`
	// SupernodeRTTs are the round trips to them in milliseconds, as
	// libp2p's pings measured them (a moving average); a supernode not
	// measured yet is missing.
	SupernodeRTTs map[string]float64 `json:"supernode_rtt_ms"`
	// Supernode says whether this device serves others as a supernode.
	Supernode SupernodeState  `json:"supernode"`
	DHT       DHTStatus       `json:"dht"`
	Contacts  []ContactStatus `json:"contacts"`
	// Incoming are the users asking to become contacts (accept or
	// decline them); Outgoing the users this account asked.
	Incoming []string `json:"incoming"`
	Outgoing []string `json:"outgoing"`
	// EventSeq is the Seq of the last event published before this
	// snapshot was taken (see Client.Watch).
	EventSeq uint64 `json:"event_seq"`
}

// NetworkSetup is what a daemon without a network suggests.
type NetworkSetup struct {
	// Suggested is a rendezvous address to offer ("" when none is
	// known), and SuggestedFrom where it comes from, for people (such as
	// "the local testnet in /tmp/parley-testnet-123, running").
	Suggested     string `json:"suggested,omitempty"`
	SuggestedFrom string `json:"suggested_from,omitempty"`
}

// NATType is the kind of NAT libp2p's observed addresses show, per
// transport.
type NATType string

const (
	// NATUnknown: libp2p has not determined it (too few observations, or
	// no NAT at all: a public address is not behind one).
	NATUnknown NATType = "unknown"
	// NATEndpointIndependent: the NAT maps a local port to the same
	// public port whoever the peer is (cone-like); hole punching works.
	NATEndpointIndependent NATType = "endpoint_independent"
	// NATEndpointDependent: the NAT picks a new public port per peer
	// (symmetric); hole punching rarely works, a relay carries the
	// connection.
	NATEndpointDependent NATType = "endpoint_dependent"
)

// NATStatus is the NAT type per transport, as libp2p's host determined
// it from the addresses peers observe (event.EvtNATDeviceTypeChanged).
type NATStatus struct {
	TCP NATType `json:"tcp"`
	UDP NATType `json:"udp"` // QUIC
}

// PortMapping is a port the router forwards to this device.
type PortMapping struct {
	// External is the router's public address and mapped port, as a
	// multiaddr (/ip4/203.0.113.5/tcp/41234); peers dial it directly.
	External string `json:"external"`
	// Listen is the device's own listen address it leads to.
	Listen string `json:"listen"`
}

// LoginReason says why a device is not logged in.
type LoginReason string

const (
	// LoginNotEnrolled: the device belongs to no account yet. The engine
	// waits for Register or Enrol.
	LoginNotEnrolled LoginReason = "not_enrolled"
	// LoginRevoked: the account's owner revoked this device; its key can
	// never log in again. The engine stops logging in.
	LoginRevoked LoginReason = "revoked"
	// LoginAccountDeleted: the account was deleted. The engine stops
	// logging in until the device is registered again.
	LoginAccountDeleted LoginReason = "account_deleted"
	// LoginRateLimited: the server refused too many logins; the engine
	// logs in again when the server allows it.
	LoginRateLimited LoginReason = "rate_limited"
	// LoginServerLeaving: the server is shutting down; the engine logs in
	// again when the server said to.
	LoginServerLeaving LoginReason = "server_going_away"
	// LoginFailed: the server is unreachable or the session broke; the
	// engine retries by itself.
	LoginFailed LoginReason = "failed"
)

// LoginProblem says why the device is not logged in and what happens
// next.
type LoginProblem struct {
	Reason LoginReason `json:"reason"`
	// Error is what went wrong, for people.
	Error string `json:"error"`
	// Hint says what to do, or what the engine does about it by itself.
	Hint string `json:"hint"`
	// Stopped means the engine does not log in again by itself: the user
	// has to act (see Hint).
	Stopped bool `json:"stopped"`
	// RetryAt is when the engine logs in again; zero when Stopped.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// SupernodeState says whether a device serves others as a supernode.
type SupernodeState struct {
	// Mode is "auto", "always" or "never".
	Mode    string `json:"mode"`
	Serving bool   `json:"serving"`
	// Active: the directory hands this device out to clients.
	Active bool `json:"active"`
	// Reason says why the device does not serve.
	Reason       string `json:"reason,omitempty"`
	Reservations int    `json:"reservations"`
	Circuits     int    `json:"circuits"`
}

// DHTStatus is the device's view of the DHT.
type DHTStatus struct {
	// Mode is "server" while the device answers DHT queries, else "client".
	Mode string `json:"mode"`
	// Peers is the size of the routing table.
	Peers int `json:"peers"`
	// RecordSeq is the sequence number of the address record published
	// last (0: none yet).
	RecordSeq uint64 `json:"record_seq,omitempty"`
	// RecordExpires is when that record expires.
	RecordExpires time.Time `json:"record_expires,omitzero"`
}

// ContactStatus is a contact's presence and how we are connected to them.
type ContactStatus struct {
	Username string `json:"username"`
	Online   bool   `json:"online"`
	// Peer is the device that logged in last: messages go there.
	Peer  string   `json:"peer,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// Devices are all the contact's online devices, oldest login first;
	// messages are accepted from each of them.
	Devices  []string  `json:"devices,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Path is how this device is connected to Peer: "direct",
	// "holepunched", "relayed via <supernode>" or "not connected".
	Path string `json:"path"`
	// Transport is what that connection runs on: "tcp" or "quic" (for a
	// relayed one, the hop to the supernode); empty when not connected.
	// PathLabel(Path, Transport) is the label users see.
	Transport string `json:"transport,omitempty"`
}

// ContactBook is the account's contact book.
type ContactBook struct {
	Contacts []ContactStatus `json:"contacts"` // accepted contacts, with presence
	Incoming []string        `json:"incoming"` // users asking to become contacts
	Outgoing []string        `json:"outgoing"` // users this account asked, no answer yet
	Blocked  []string        `json:"blocked"`
}

// ContactRequestResult is the answer to a contact request.
type ContactRequestResult struct {
	// Accepted is true when the two users are contacts now (the other
	// had asked too); false while the request waits for an answer.
	Accepted bool `json:"accepted"`
}

// Device is one of the account's devices.
type Device struct {
	Peer     string    `json:"peer"`
	Enrolled time.Time `json:"enrolled"`
	Revoked  time.Time `json:"revoked,omitzero"` // zero while the device may log in
	Online   bool      `json:"online"`
	This     bool      `json:"this_device,omitempty"` // the device that answers
}

// MessageState is where a message stands.
type MessageState string

const (
	MessageReceived  MessageState = "received"  // incoming, stored and acknowledged
	MessageDelivered MessageState = "delivered" // outgoing, acknowledged by the recipient
	MessageQueued    MessageState = "queued"    // outgoing, waiting for the recipient
	MessageFailed    MessageState = "failed"    // outgoing, refused by the recipient; see Error
	// MessageSent: outgoing, out of this device's hands but not known to
	// be delivered: the recipient was offline and a copy sealed end to
	// end to each of their devices waits in their mailbox on the
	// rendezvous server (the device keeps trying directly too), or
	// another device of the user sent it. Their delivery receipt turns it
	// delivered.
	MessageSent MessageState = "sent"
	// MessageRead: outgoing, the recipient read it (on one of their
	// devices); incoming, read on one of this user's devices.
	MessageRead MessageState = "read"
)

// Message is one chat message. Body is the text exactly as sent: render
// it as text, never as markup or terminal control sequences.
type Message struct {
	ID       string       `json:"id"`
	From     string       `json:"from"`
	To       string       `json:"to"`
	Sent     time.Time    `json:"sent"`
	Body     string       `json:"body"`
	Incoming bool         `json:"incoming"`
	State    MessageState `json:"state"`
	Error    string       `json:"error,omitempty"` // why, when failed
	// Path is how the message travelled: "direct", "holepunched",
	// "relayed via <supernode>", or "mailbox" for an incoming message
	// fetched from the offline mailbox; empty while queued or on_server.
	Path string `json:"path"`
	// Transport is what the connection of the message's stream ran on:
	// "tcp" or "quic" (for a relayed one, the hop to the supernode);
	// empty when Path is, for "mailbox", and for messages stored before
	// transports were recorded (and copies another device reported).
	Transport string `json:"transport,omitempty"`
}

// HistoryQuery selects messages exchanged with a contact.
type HistoryQuery struct {
	Contact string `json:"contact"`
	// Limit is the number of most recent messages; zero means
	// DefaultHistoryLimit, at most MaxHistoryLimit.
	Limit int `json:"limit,omitempty"`
	// Before, a message id, pages back: the messages before it.
	Before string `json:"before,omitempty"`
}

// Conversation is the summary of the messages with one contact.
type Conversation struct {
	Contact string   `json:"contact"`
	Unread  int      `json:"unread"` // incoming messages read on no device of the user
	Last    *Message `json:"last"`   // the newest message
}

// ReadRequest names the conversation to mark read.
type ReadRequest struct {
	Contact string `json:"contact"`
}

// ReadResult is what MarkRead did.
type ReadResult struct {
	Marked int `json:"marked"` // messages that were unread
}

// Unread is a conversation's unread count.
type Unread struct {
	Contact string `json:"contact"`
	Count   int    `json:"count"`
}

// Limits of history queries.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
)

// ProbeResult is what a probe of the connection to a contact measured.
type ProbeResult struct {
	Device string `json:"device"`
	Bytes  int64  `json:"bytes"`
	// Duration is from the first byte sent to the responder's answer.
	Duration time.Duration `json:"duration_ns"`
	// MBPerSecond is the throughput in megabytes (10⁶ bytes) per second.
	MBPerSecond float64 `json:"mb_per_s"`
	// Path is how the stream went: "direct", "holepunched" or "relayed
	// via <supernode>".
	Path string `json:"path"`
	// Transport is what the stream's connection ran on: "tcp" or "quic"
	// (for a relayed one, the hop to the supernode).
	Transport string `json:"transport,omitempty"`
	// Intact is true when the responder received every byte and its
	// digest matches what was sent.
	Intact bool `json:"intact"`
}

// EventKind says what an Event is about.
type EventKind string

const (
	// EventGap: events were lost to this watcher (it fell behind, or
	// asked for events no longer kept). Re-read Status, then go on.
	EventGap   EventKind = "gap"
	EventLogin EventKind = "login" // Username is set
	// EventLogout: the session was lost or closed; Login says why and
	// what happens next.
	EventLogout EventKind = "logout"
	// EventLoginStopped: the engine stopped logging in (the device was
	// revoked, the account deleted, or the device is not enrolled); Login
	// says why and what the user can do.
	EventLoginStopped EventKind = "login_stopped"
	EventPresence     EventKind = "presence" // Contact is set
	// EventContact: the contact book changed. Username is the other user;
	// Change is "requested" (they ask to become a contact), "accepted"
	// (they are a contact now) or "removed" (no longer a contact or
	// request).
	EventContact EventKind = "contact"
	// EventMessage: a message arrived. Message is set.
	EventMessage EventKind = "message"
	// EventMessageState: a message changed state (an outgoing one was
	// sent, delivered, read or failed; an incoming one was read on
	// another device). Message is set.
	EventMessageState EventKind = "message_state"
	// EventUnread: a conversation's unread count changed. Unread is set.
	EventUnread EventKind = "unread"
	// EventPath: the connection to a contact's device changed (connected,
	// relayed → holepunched, disconnected). Contact is set, with Path.
	EventPath       EventKind = "path"
	EventSupernodes EventKind = "supernodes" // Supernodes is set
	// EventTransfer: a transfer changed state or made progress. Transfer
	// is set. Every state change is an event; progress is reported at most
	// TransferEventsPerSecond times a second per transfer.
	EventTransfer EventKind = "transfer"
	// EventOffer: an offer arrived, or one changed (delivered, accepted,
	// declined, cancelled, refused). Offer is set.
	EventOffer EventKind = "offer"
)

// The codes of a failed transfer (Transfer.ErrorCode).
const (
	// TransferNoSpace: the disk filled up; the verified bytes are kept
	// and the transfer goes on when resumed after space is freed.
	TransferNoSpace = "no_space"
	// TransferNotAdmitted: the providers refused us this content (not a
	// member, or not the recipient it was offered to).
	TransferNotAdmitted = "not_admitted"
	// TransferNoProviders: no provider was found or none could serve it.
	TransferNoProviders = "no_providers"
)

// TransferEventsPerSecond bounds the progress events of one transfer.
const TransferEventsPerSecond = 4

// Event is something that happened on the device.
type Event struct {
	// Seq numbers the events of one daemon run from 1, without gaps.
	Seq        uint64         `json:"seq"`
	Time       time.Time      `json:"time"`
	Kind       EventKind      `json:"kind"`
	Username   string         `json:"username,omitempty"`
	Change     string         `json:"change,omitempty"`
	Login      *LoginProblem  `json:"login,omitempty"`
	Contact    *ContactStatus `json:"contact,omitempty"`
	Message    *Message       `json:"message,omitempty"`
	Supernodes []string       `json:"supernodes,omitempty"`
	Transfer   *Transfer      `json:"transfer,omitempty"`
	Offer      *Offer         `json:"offer,omitempty"`
	Unread     *Unread        `json:"unread,omitempty"`
}

// Published is content this device publishes.
type Published struct {
	// CID names the content (CIDv1, raw codec, BLAKE3 multihash, in
	// base32: "bafk…").
	CID string `json:"cid"`
	// Name is the file's or folder's name, as downloads will get it.
	Name string `json:"name"`
	// Size is the content's total bytes.
	Size int64 `json:"size"`
	// Path is where the content is on this device.
	Path string `json:"path"`
	// Link is what to hand to others for Get:
	// parley://<cid>?name=<name>&size=<size>&from=<this device's peer ID>.
	Link string `json:"link"`
}

// TransferState is where a transfer stands.
type TransferState string

const (
	TransferFindingProviders TransferState = "finding_providers" // asking the DHT who has the content
	TransferRunning          TransferState = "running"           // fetching chunks
	TransferPaused           TransferState = "paused"            // stopped by the user; the verified chunks stay
	TransferDone             TransferState = "done"              // complete and verified, at Path
	TransferFailed           TransferState = "failed"            // see Error; ResumeTransfer retries
	TransferCancelled        TransferState = "cancelled"         // stopped by the user; the partial data is deleted
)

// Transfer is one download.
type Transfer struct {
	ID   string `json:"id"`
	CID  string `json:"cid"`
	Name string `json:"name"` // from the link; the manifest's name once known
	// Direction is "download".
	Direction string        `json:"direction"`
	State     TransferState `json:"state"`
	// BytesDone are the bytes verified on disk against the content's
	// hashes (including those of earlier runs); BytesTotal is the
	// content's size (from the link until the manifest is known).
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
	// Rate is bytes per second received in the current run.
	Rate float64 `json:"rate"`
	// Peers is the number of providers fetching from now.
	Peers int `json:"peers"`
	// Error says why the transfer failed, for people; ErrorCode says it
	// for programs: TransferNoSpace, TransferNotAdmitted,
	// TransferNoProviders, or "" for other failures.
	Error     string `json:"error,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	// Dir is the folder the content goes into; Path is the downloaded
	// file or folder once done.
	Dir  string `json:"dir"`
	Path string `json:"path,omitempty"`
}

// OfferState is where an offer stands.
type OfferState string

const (
	OfferPending   OfferState = "pending"   // waiting for the recipient's answer
	OfferAccepted  OfferState = "accepted"  // the recipient downloads it
	OfferDeclined  OfferState = "declined"  // the recipient said no
	OfferCancelled OfferState = "cancelled" // the sender withdrew it
	OfferRefused   OfferState = "refused"   // the recipient's device refused it; see Error
)

// Offer is content offered to one contact (Share): outgoing ones this
// device made, incoming ones it received. Name, From and Error come from
// the network: render them as text, never as markup or terminal control
// sequences.
type Offer struct {
	ID string `json:"id"`
	// Direction is "out" (made here) or "in" (received).
	Direction string `json:"direction"`
	From      string `json:"from"`
	To        string `json:"to"`
	// Name is the file's or folder's name; Size its total bytes; Files
	// the number of files in it.
	Name  string     `json:"name"`
	Size  int64      `json:"size"`
	Files int        `json:"files"`
	CID   string     `json:"cid"`
	State OfferState `json:"state"`
	// Delivered: the recipient has the offer. An outgoing offer is
	// delivered when the recipient is online; incoming ones always are.
	Delivered bool `json:"delivered"`
	// Path is where outgoing content is on this device.
	Path string `json:"path,omitempty"`
	// TransferID is the download of an accepted incoming offer.
	TransferID string `json:"transfer_id,omitempty"`
	// BytesSent, on an outgoing offer, is how many bytes of the content
	// this device sent to the recipient's devices since the daemon
	// started (chunks written to their streams; one sent twice counts
	// twice, so it may pass Size). Offer events report it as it grows,
	// at most TransferEventsPerSecond times a second.
	BytesSent int64 `json:"bytes_sent,omitempty"`
	// Error says why the recipient's device refused the offer.
	Error string `json:"error,omitempty"`
	// Created is when the offer was made (outgoing) or received
	// (incoming).
	Created time.Time `json:"created"`
}

// ErrorResponse is the body of every failed HTTP API call.
type ErrorResponse struct {
	// Error is what went wrong, for people.
	Error string `json:"error"`
	// Code names the error for programs (see the error table in package
	// app/api); "" for an internal fault.
	Code string `json:"code,omitempty"`
}

// PathLabel is the label users see for a path and its transport:
// "direct/quic", "holepunched/quic", "relayed/tcp via <supernode>"; path
// alone when transport is empty or path is no connection ("mailbox",
// "not connected").
func PathLabel(path, transport string) string {
	if transport == "" {
		return path
	}
	if via, ok := strings.CutPrefix(path, "relayed via "); ok {
		return "relayed/" + transport + " via " + via
	}
	switch path {
	case "direct", "holepunched":
		return path + "/" + transport
	}
	return path
}
