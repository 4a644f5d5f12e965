package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/node"
)

func peerIDOf(t *testing.T, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLoadOrCreateIdentityCreatesThenLoads(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state", "parley")
	path := filepath.Join(dir, "identity.key")

	k1, err := node.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if k1.Type() != crypto.Ed25519 {
		t.Errorf("key type %v, want Ed25519", k1.Type())
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	if !info.Mode().IsRegular() {
		t.Errorf("key file mode %v, want a regular file", info.Mode())
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}
	dinfo, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("parent directory not created: %v", err)
	}
	if !dinfo.IsDir() {
		t.Fatalf("%s is not a directory", dir)
	}
	if perm := dinfo.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("parent directory mode %v, want no group/other access", perm)
	}
	// The temporary file used for the atomic write must be gone.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "identity.key" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only identity.key", names)
	}

	k2, err := node.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if !k1.Equals(k2) {
		t.Error("second call returned a different key")
	}
	if id1, id2 := peerIDOf(t, k1), peerIDOf(t, k2); id1 != id2 {
		t.Errorf("peer IDs differ: %s then %s", id1, id2)
	}
}

func TestLoadOrCreateIdentityRefusesReadableKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if _, err := node.LoadOrCreateIdentity(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := node.LoadOrCreateIdentity(path)
	if err == nil {
		t.Fatalf("mode 0644 key accepted (key %v)", k)
	}
	if !strings.Contains(err.Error(), "chmod") {
		t.Errorf("error %q does not mention chmod", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	// The refused file must be left as it was, not replaced by a new key.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("mode changed to %v", perm)
	}
}

func TestLoadOrCreateIdentityCorruptFile(t *testing.T) {
	k, err := node.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "valid.key"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string][]byte{
		"garbage":   []byte("this is not a protobuf private key\x00\xff\xfe"),
		"empty":     {},
		"truncated": good[:len(good)/2],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.key")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := node.LoadOrCreateIdentity(path)
			if err == nil {
				t.Fatalf("corrupt key file accepted (key %v)", k)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path %s", err, path)
			}
			// The corrupt file must not be overwritten by a fresh key.
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(data) {
				t.Error("corrupt key file was modified")
			}
		})
	}
}

func TestWithIdentitySamePathSamePeerID(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "id", "identity.key")

	n1, err := node.New(node.WithIdentity(path), node.WithListenAddrs(node.LoopbackListenAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n1.Close() })
	id1 := n1.ID()
	if err := n1.Close(); err != nil {
		t.Fatalf("close first node: %v", err)
	}

	n2, err := node.New(node.WithIdentity(path), node.WithListenAddrs(node.LoopbackListenAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	if n2.ID() != id1 {
		t.Errorf("second node has peer ID %s, first had %s", n2.ID(), id1)
	}

	k, err := node.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := peerIDOf(t, k); got != id1 {
		t.Errorf("key file holds peer ID %s, node ran as %s", got, id1)
	}
}
