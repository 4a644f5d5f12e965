package server

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// User is an account as the store keeps it.
type User struct {
	ID           int64
	Name         string // canonical (lower-case) username
	PasswordHash []byte // PHC-style argon2id string, see HashPassword
	Created      time.Time
	LastSeen     time.Time // zero if never logged in
}

// Device is an enrolled device key of a user.
type Device struct {
	Peer     peer.ID
	Enrolled time.Time
	Revoked  time.Time // zero while the device may log in
}

// DeviceKey is a device's mailbox key as published (signed by the
// device; see internal/seal).
type DeviceKey struct {
	Device    peer.ID
	Key       []byte
	Published time.Time
}

// MailCopy is a message sealed to one device.
type MailCopy struct {
	Device     peer.ID
	Ciphertext []byte
}

// Deposit is a message to leave in a user's mailbox. The server stores
// only these routing facts and the ciphertexts.
type Deposit struct {
	Recipient    int64
	Sender       int64
	SenderDevice peer.ID
	MessageID    string
	Copies       []MailCopy
	// Has are devices of the recipient that need no copy: they have the
	// message already (the depositing device itself, or devices it
	// reached directly).
	Has     []peer.ID
	At      time.Time // when deposited
	Expires time.Time // when it is deleted, delivered or not
}

// Size is the bytes of ciphertext the deposit holds, all copies.
func (d Deposit) Size() int64 {
	var n int64
	for _, c := range d.Copies {
		n += int64(len(c.Ciphertext))
	}
	return n
}

// MailQuota bounds one user's mailbox: messages, and bytes of ciphertext
// (all copies, as deposited), until the messages are gone.
type MailQuota struct {
	Messages int
	Bytes    int64
}

// DepositResult is what Deposit did.
type DepositResult struct {
	ID        int64 // the message's id
	Duplicate bool  // it was stored before; nothing changed
}

// Mail is a copy of a message waiting for a device.
type Mail struct {
	ID           int64
	Sender       string // username
	SenderDevice peer.ID
	MessageID    string
	Deposited    time.Time
	Ciphertext   []byte
}

// ContactLists is everything a user's contact book holds, each list sorted
// by name.
type ContactLists struct {
	Accepted []User // both sides accepted: they see each other's presence
	Incoming []User // asked this user and wait for an answer
	Outgoing []User // this user asked them; no answer yet
	Blocked  []User // blocked by this user
}

// SessionRecord is one live login: a device holding a presence stream on
// some replica. The store keeps them so that every replica sharing the
// database sees every online device.
type SessionRecord struct {
	Device  peer.ID
	UserID  int64
	Replica string   // ID of the replica the device is connected to
	Addrs   [][]byte // binary multiaddrs the device can be reached on
	Started time.Time
}

// RequestResult is what RequestContact did.
type RequestResult int

const (
	// Requested: a request from `from` to `to` now waits (or already
	// waited) for an answer.
	Requested RequestResult = iota + 1
	// Accepted: `to` had already asked `from`, or they already were
	// contacts; both directions are accepted now.
	Accepted
	// Ignored: `to` has blocked `from`. The server answers as for
	// Requested so that a blocked user learns nothing.
	Ignored
)

// Store is the rendezvous server's persistent state. Implementations must be
// safe for concurrent use and must make every method atomic: a failed call
// leaves nothing half-written. Usernames passed in are already canonical.
// Lookups of a missing row return an error wrapping ErrNotFound.
//
// The same suite (package storetest) runs against every implementation.
type Store interface {
	// Register creates a user and enrols its first device in one
	// transaction. ErrUsernameTaken if the name exists, ErrDeviceTaken if
	// the device belongs to any user or was revoked.
	Register(ctx context.Context, name string, passwordHash []byte, device peer.ID) (User, error)
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// SetPasswordHash replaces a user's password hash.
	SetPasswordHash(ctx context.Context, userID int64, hash []byte) error
	// DeleteUser removes a user with its devices, contact rows (in both
	// directions), blocks, sessions, device keys and mail (received and
	// sent, delivered or not). The name becomes free again.
	DeleteUser(ctx context.Context, userID int64) error

	// EnrolDevice adds a device to a user. Enrolling a device the user
	// already has is a no-op; a device owned by another user is
	// ErrDeviceTaken; a revoked device of this user is ErrDeviceRevoked.
	EnrolDevice(ctx context.Context, userID int64, device peer.ID) error
	// DeviceOwner returns the user a device is enrolled to: ErrNotFound if
	// none, ErrDeviceRevoked if the device was revoked.
	DeviceOwner(ctx context.Context, device peer.ID) (User, error)
	// Devices lists a user's devices, revoked ones included, oldest first.
	Devices(ctx context.Context, userID int64) ([]Device, error)
	// RevokeDevice marks a device of the user as revoked (it stays listed
	// and can never log in or be enrolled again) and deletes its
	// sessions, its mailbox key and its copies of pending mail (a message
	// no other device still waits for is gone). ErrNotFound if the user
	// has no such device; revoking twice is a no-op.
	RevokeDevice(ctx context.Context, userID int64, device peer.ID) error

	// RequestContact records that `from` wants `to` as a contact; see
	// RequestResult. Requesting oneself is ErrBadRequest. A request to a
	// user that `from` has blocked lifts that block.
	RequestContact(ctx context.Context, from, to int64) (RequestResult, error)
	// AcceptContact accepts the pending request from `from` to `me`: both
	// directions become accepted. ErrNotFound if there is no such request.
	AcceptContact(ctx context.Context, me, from int64) error
	// DeclineContact deletes the pending request from `from` to `me`.
	// ErrNotFound if there is no such request.
	DeclineContact(ctx context.Context, me, from int64) error
	// RemoveContact ends an accepted contact in both directions, or
	// withdraws a request `me` made. ErrNotFound if there was neither.
	RemoveContact(ctx context.Context, me, other int64) error
	// Block deletes every contact row between the two users and records
	// that `me` blocks `other`. Blocking twice is a no-op; blocking
	// oneself is ErrBadRequest.
	Block(ctx context.Context, me, other int64) error
	// Unblock lifts a block. ErrNotFound if `me` had not blocked `other`.
	Unblock(ctx context.Context, me, other int64) error
	// Contacts returns the accepted contacts of a user, sorted by name.
	Contacts(ctx context.Context, userID int64) ([]User, error)
	// ContactLists returns all of a user's contact book.
	ContactLists(ctx context.Context, userID int64) (ContactLists, error)
	// SetLastSeen records when a user was last online.
	SetLastSeen(ctx context.Context, userID int64, t time.Time) error
	// AreContacts reports whether two users are accepted contacts.
	AreContacts(ctx context.Context, a, b int64) (bool, error)

	// PutDeviceKey stores or replaces a device's mailbox key (already
	// verified by the caller). ErrNotFound unless the device is the
	// user's; ErrDeviceRevoked if it was revoked.
	PutDeviceKey(ctx context.Context, userID int64, device peer.ID, key []byte, at time.Time) error
	// DeviceKeys returns the keys of the user's active devices that
	// published one, in enrolment order.
	DeviceKeys(ctx context.Context, userID int64) ([]DeviceKey, error)
	// Deposit stores a message in the recipient's mailbox, one copy per
	// device, in one transaction. A message with the same sender,
	// recipient and message ID already stored is not stored again
	// (Duplicate). The copies must be exactly one for each active device
	// of the recipient with a key, else ErrDeviceKeysChanged. A mailbox
	// that would go over q (counting unexpired messages at d.At) is
	// ErrMailboxFull.
	Deposit(ctx context.Context, d Deposit, q MailQuota) (DepositResult, error)
	// FetchMail returns up to max copies waiting for the device that have
	// not expired at now, oldest first.
	FetchMail(ctx context.Context, device peer.ID, now time.Time, max int) ([]Mail, error)
	// CountMail counts the device's unexpired copies at now.
	CountMail(ctx context.Context, device peer.ID, now time.Time) (int, error)
	// AckMail deletes the device's copies of the given messages and the
	// messages no device waits for any more. It returns the number of
	// copies deleted; ids that are not the device's are ignored.
	AckMail(ctx context.Context, device peer.ID, ids []int64) (int, error)
	// ExpireMail deletes the messages whose expiry is at or before now,
	// with their copies, and returns how many.
	ExpireMail(ctx context.Context, now time.Time) (int, error)

	// HeartbeatReplica records that a replica is alive at t, creating its
	// row on first call.
	HeartbeatReplica(ctx context.Context, replica string, t time.Time) error
	// PutSession stores or replaces (by device) a live session. The
	// replica must have a row (HeartbeatReplica first; a reaped replica
	// must beat again) and the device must be one of UserID's: otherwise
	// ErrNotFound; ErrDeviceRevoked if it was revoked.
	PutSession(ctx context.Context, s SessionRecord) error
	// DeleteSession deletes the session of a device on a replica; a
	// session of the same device on another replica is left alone. No
	// such session is not an error.
	DeleteSession(ctx context.Context, device peer.ID, replica string) error
	// Sessions returns the live sessions of the given users: those on
	// replicas whose last heartbeat is after aliveSince, oldest first.
	Sessions(ctx context.Context, aliveSince time.Time, userIDs ...int64) ([]SessionRecord, error)
	// ReapReplicas deletes replicas whose last heartbeat is before
	// deadBefore, and their sessions. It returns the users that had
	// sessions there (each once), so their contacts can be told.
	ReapReplicas(ctx context.Context, deadBefore time.Time) ([]int64, error)
	// DeleteReplica deletes one replica and its sessions (a clean
	// shutdown) and returns the users that had sessions there. An unknown
	// replica (say, one already reaped) is not an error.
	DeleteReplica(ctx context.Context, replica string) ([]int64, error)

	// Publish sends an event to every subscriber of every store sharing
	// the same database, this one included.
	Publish(ctx context.Context, ev Event) error
	// Subscribe returns the events published from now on, in the order
	// published, until ctx ends; the channel is then closed. A subscriber
	// must keep reading: publishers may block while it does not.
	Subscribe(ctx context.Context) (<-chan Event, error)

	// Ping checks that the database answers (for /healthz).
	Ping(ctx context.Context) error
	// Close releases the store and closes subscription channels.
	Close() error
}

// EventKind is what an Event announces.
type EventKind int

const (
	// EventPresence: the presence of UserID may have changed (a login,
	// logout, address update, or a contact accepted). Every replica pushes
	// the user's fresh presence to the user's online contacts.
	EventPresence EventKind = iota + 1
	// EventContact: UserID's contact book changed because of Other (a
	// user name); Change says how. Replicas push it to UserID's sessions.
	EventContact
	// EventKick: close the sessions of UserID; only Device's when Device
	// is set (a revoked device), all of them otherwise (account deleted).
	EventKick
	// EventMail: mail was deposited for Device, a device of UserID. The
	// replica holding its session tells it to fetch.
	EventMail
)

// ContactChange is the kind of an EventContact.
type ContactChange int

const (
	ContactRequested ContactChange = iota + 1 // Other asked UserID
	ContactAccepted                           // Other and UserID are now contacts
	ContactRemoved                            // Other is no longer UserID's contact
)

// Event is a change that every replica must act on. It is small: receivers
// read the current state from the store.
type Event struct {
	Kind   EventKind     `json:"k"`
	UserID int64         `json:"u"`
	Other  string        `json:"o,omitempty"`
	Change ContactChange `json:"c,omitempty"`
	Device peer.ID       `json:"d,omitempty"`
	// At is when the event was published, in Unix microseconds; receivers
	// use it to measure fan-out latency.
	At int64 `json:"t,omitempty"`
}
