package datadir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parleynet/parley/internal/atomicfile"
)

// Settings are what `parley daemon` remembers of its command line: its
// network and its role in it. The JSON name of each field is the daemon's
// flag that sets it; Merge tells the flags given apart by these names.
//
// Settings hold values as the flags give them; the daemon parses and
// checks them (a multiaddr, a supernode mode) before it saves them.
type Settings struct {
	Rendezvous       string   `json:"rendezvous"`         // the rendezvous server's multiaddr, ending in /p2p/<peer ID>
	API              string   `json:"api"`                // the local API's loopback host:port
	Listen           []string `json:"listen"`             // listen multiaddrs; none: the node's default
	Bootstrap        []string `json:"bootstrap"`          // DHT peers' multiaddrs, ending in /p2p/<peer ID>
	Private          bool     `json:"private"`            // declared behind a NAT
	NATImitation     bool     `json:"nat-imitation"`      // refuses unsolicited inbound connections
	Supernode        string   `json:"supernode"`          // auto, always or never
	SupernodeUptime  Duration `json:"supernode-uptime"`   // with supernode auto, the uptime needed first
	SupernodeMaxLoad float64  `json:"supernode-max-load"` // with supernode auto, the load per core above which it does not serve
	UploadLimit      string   `json:"upload-limit"`       // bytes a second sent to those fetching files, as a size such as 20MiB; "" or 0: no limit
}

// Duration is a time.Duration written in JSON as a string such as "10m0s".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Merge returns the settings to run with and to save: for each setting,
// the command line's value in flags if given reports its flag (by name)
// as set on the command line, and otherwise saved's.
func Merge(saved, flags Settings, given func(flag string) bool) Settings {
	s := saved
	if given("rendezvous") {
		s.Rendezvous = flags.Rendezvous
	}
	if given("api") {
		s.API = flags.API
	}
	if given("listen") {
		s.Listen = flags.Listen
	}
	if given("bootstrap") {
		s.Bootstrap = flags.Bootstrap
	}
	if given("private") {
		s.Private = flags.Private
	}
	if given("nat-imitation") {
		s.NATImitation = flags.NATImitation
	}
	if given("supernode") {
		s.Supernode = flags.Supernode
	}
	if given("supernode-uptime") {
		s.SupernodeUptime = flags.SupernodeUptime
	}
	if given("supernode-max-load") {
		s.SupernodeMaxLoad = flags.SupernodeMaxLoad
	}
	if given("upload-limit") {
		s.UploadLimit = flags.UploadLimit
	}
	return s
}

// LoadSettings reads the saved settings over *s: a setting the file does
// not name (one added to Parley after the file was written) keeps its
// value in *s, so pass the flags' defaults in. It reports false, and leaves
// *s alone, if no settings are saved. A damaged file, or one with a field
// this build does not know, is an error that names the file.
func (d *Dir) LoadSettings(s *Settings) (bool, error) {
	path := filepath.Join(d.path, SettingsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read saved settings: %w", err)
	}
	loaded := *s
	// Decoding reuses a slice's array; the caller's stays untouched.
	loaded.Listen, loaded.Bootstrap = slices.Clone(s.Listen), slices.Clone(s.Bootstrap)
	if err := decodeSettings(data, &loaded); err != nil {
		return false, fmt.Errorf("saved settings %s are damaged: %w; correct the file, or delete it and start the daemon with --rendezvous ADDR (and your other flags)", path, err)
	}
	*s = loaded
	return true, nil
}

// decodeSettings decodes data over *s, strictly: one JSON object with
// known fields only.
func decodeSettings(data []byte, s *Settings) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the settings object")
	}
	return nil
}

// SaveSettings replaces the saved settings with s, atomically, mode 0600.
func (d *Dir) SaveSettings(s Settings) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(d.path, SettingsFile), append(data, '\n')); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}
