package rendezvous

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

// Store is the rendezvous server's persistent state. Implementations must be
// safe for concurrent use and must make every method atomic: a failed call
// leaves nothing half-written. Usernames passed in are already canonical.
//
// The same suite (package storetest) runs against every implementation.
type Store interface {
	// Register creates a user and enrols its first device in one
	// transaction. ErrUsernameTaken if the name exists, ErrDeviceTaken if
	// the device belongs to another user.
	Register(ctx context.Context, name string, passwordHash []byte, device peer.ID) (User, error)
	// UserByName returns ErrNotFound if there is no such user.
	UserByName(ctx context.Context, name string) (User, error)
	// EnrolDevice adds a device to a user. Enrolling a device the user
	// already has is a no-op; a device owned by another user is
	// ErrDeviceTaken.
	EnrolDevice(ctx context.Context, userID int64, device peer.ID) error
	// DeviceOwner returns the user a device is enrolled to, or ErrNotFound.
	DeviceOwner(ctx context.Context, device peer.ID) (User, error)
	// AddContact records that user `from` wants `to` as a contact. When `to`
	// had already added `from`, both directions become accepted and it
	// returns true. Adding oneself is ErrBadRequest.
	AddContact(ctx context.Context, from, to int64) (accepted bool, err error)
	// Contacts returns the accepted contacts of a user, sorted by name.
	Contacts(ctx context.Context, userID int64) ([]User, error)
	// SetLastSeen records when a user was last online.
	SetLastSeen(ctx context.Context, userID int64, t time.Time) error
	// Close releases the store.
	Close() error
}
