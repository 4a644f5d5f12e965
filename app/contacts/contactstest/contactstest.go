// Package contactstest is a contact list for the tests of services that
// look contacts up by name and by device (chat, offers).
package contactstest

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Book maps contacts to their online device; a contact whose device is ""
// is offline. It is safe for concurrent use.
type Book struct {
	mu      sync.Mutex
	devices map[string]peer.ID
}

// New returns a book of the given contacts (nil: none).
func New(devices map[string]peer.ID) *Book {
	if devices == nil {
		devices = make(map[string]peer.ID)
	}
	return &Book{devices: devices}
}

// Set makes name a contact whose device is p ("" for offline).
func (b *Book) Set(name string, p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devices[name] = p
}

// Lookup reports whether name is a contact, and its device.
func (b *Book) Lookup(name string) (peer.ID, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.devices[name]
	return p, ok
}

// UsernameOf returns the contact whose online device is id.
func (b *Book) UsernameOf(id peer.ID) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, p := range b.devices {
		if p == id && p != "" {
			return name, true
		}
	}
	return "", false
}
