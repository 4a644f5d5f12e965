package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parleynet/parley/app/contacts"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/rendezvous/client"
)

// sessionFile keeps what the last session said, for a device that starts
// while the rendezvous server is down: the account, the certificate that
// supernodes admit it with (until it expires), and the contacts with the
// devices they had. The next login's snapshot replaces it.
const sessionFile = datadir.SessionFile

type savedSession struct {
	Username    string         `json:"username"`
	Certificate []byte         `json:"certificate,omitempty"`
	Contacts    []savedContact `json:"contacts"`
}

type savedContact struct {
	Username string      `json:"username"`
	Devices  []savedPeer `json:"devices,omitempty"` // the most recent last
}

// saveSession writes what the device knows of its account now. Call it
// when a session ends.
func (e *Engine) saveSession() {
	username, cert := e.sess.account()
	s := savedSession{Username: username, Certificate: cert, Contacts: []savedContact{}}
	for _, p := range e.contacts.known() {
		s.Contacts = append(s.Contacts, savedContact{Username: p.Username, Devices: savePeers(contacts.DevicesOf(p))})
	}
	if s.Username == "" {
		return
	}
	if err := writeJSON(filepath.Join(e.cfg.DataDir, sessionFile), s); err != nil {
		log.Warnw("remember the session", "err", err)
	}
}

// forgetSession removes the saved session: the device no longer acts for
// the account.
func (e *Engine) forgetSession() {
	if err := os.Remove(filepath.Join(e.cfg.DataDir, sessionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warnw("forget the session", "err", err)
	}
}

// restoreSession starts the engine from the saved session: the device
// acts for the account and knows its contacts (offline until the server
// says otherwise) before it can log in.
func (e *Engine) restoreSession() error {
	path := filepath.Join(e.cfg.DataDir, sessionFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s savedSession
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	e.sess.restore(s.Username, s.Certificate)
	restored := make([]client.Presence, 0, len(s.Contacts))
	for _, c := range s.Contacts {
		p := client.Presence{Username: c.Username, Devices: loadPeers(c.Devices)}
		if n := len(p.Devices); n > 0 {
			p.Peer = p.Devices[n-1].ID
		}
		restored = append(restored, p)
	}
	e.contacts.restore(restored)
	return nil
}
