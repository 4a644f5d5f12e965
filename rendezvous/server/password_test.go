package server

import (
	"bytes"
	"strings"
	"testing"
)

func TestHashVerifyRoundTrip(t *testing.T) {
	const pw = "correct horse battery staple"
	hash, err := HashPassword(pw, LocalArgon2)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if prefix := "$argon2id$v=19$m=8192,t=1,p=1$"; !bytes.HasPrefix(hash, []byte(prefix)) {
		t.Errorf("hash %q: got no prefix %q", hash, prefix)
	}

	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"correct", pw, true},
		{"wrong", "correct horse battery stapler", false},
		{"case differs", strings.ToUpper(pw), false},
		{"empty", "", false},
		{"prefix", pw[:len(pw)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyPassword(tt.pw, hash)
			if err != nil {
				t.Fatalf("VerifyPassword: got error %v, want nil", err)
			}
			if got != tt.want {
				t.Errorf("VerifyPassword(%q): got %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
}

func TestHashPasswordSalted(t *testing.T) {
	const pw = "same password twice"
	a, err := HashPassword(pw, LocalArgon2)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	b, err := HashPassword(pw, LocalArgon2)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if bytes.Equal(a, b) {
		t.Fatalf("two hashes of the same password: got equal %q, want different (random salt)", a)
	}
	saltOf := func(h []byte) string { return strings.Split(string(h), "$")[4] }
	if saltOf(a) == saltOf(b) {
		t.Errorf("salts: got equal %q, want different", saltOf(a))
	}
	for _, h := range [][]byte{a, b} {
		if ok, err := VerifyPassword(pw, h); err != nil || !ok {
			t.Errorf("VerifyPassword(%q): got %v, %v, want true, nil", h, ok, err)
		}
	}
}

// TestHashRecordsParams checks that a hash made with other parameters still
// verifies: the parameters come from the hash, not from the caller.
func TestHashRecordsParams(t *testing.T) {
	p := Argon2Params{Time: 2, Memory: 1024, Threads: 2}
	hash, err := HashPassword("password1", p)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if want := "$m=1024,t=2,p=2$"; !bytes.Contains(hash, []byte(want)) {
		t.Errorf("hash %q: got no %q", hash, want)
	}
	if ok, err := VerifyPassword("password1", hash); err != nil || !ok {
		t.Errorf("VerifyPassword: got %v, %v, want true, nil", ok, err)
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPassword("password1", LocalArgon2)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	parts := strings.Split(string(good), "$") // "", argon2id, v=19, m=..., salt, key
	salt, key := parts[4], parts[5]
	join := func(p ...string) []byte { return []byte(strings.Join(p, "$")) }

	tests := []struct {
		name string
		hash []byte
	}{
		{name: "nil", hash: nil},
		{name: "empty", hash: []byte("")},
		{name: "plain text", hash: []byte("password1")},
		{name: "bcrypt", hash: []byte("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")},
		{name: "too few parts", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", salt)},
		{name: "too many parts", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", salt, key, "x")},
		{name: "argon2i", hash: join("", "argon2i", "v=19", "m=8192,t=1,p=1", salt, key)},
		{name: "no leading dollar", hash: join("argon2id", "v=19", "m=8192,t=1,p=1", salt, key)},
		{name: "wrong version", hash: join("", "argon2id", "v=16", "m=8192,t=1,p=1", salt, key)},
		{name: "version not a number", hash: join("", "argon2id", "v=x", "m=8192,t=1,p=1", salt, key)},
		{name: "params garbled", hash: join("", "argon2id", "v=19", "t=1,m=8192,p=1", salt, key)},
		{name: "params not numbers", hash: join("", "argon2id", "v=19", "m=a,t=b,p=c", salt, key)},
		{name: "params missing", hash: join("", "argon2id", "v=19", "", salt, key)},
		{name: "threads overflow uint8", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=256", salt, key)},
		{name: "negative memory", hash: join("", "argon2id", "v=19", "m=-1,t=1,p=1", salt, key)},
		{name: "salt not base64", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", "!!!!", key)},
		{name: "key not base64", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", salt, "!!!!")},
		{name: "key padded base64", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", salt, key+"=")},
		{name: "empty key", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=1", salt, "")},
		{name: "zero time", hash: join("", "argon2id", "v=19", "m=8192,t=0,p=1", salt, key)},
		{name: "zero threads", hash: join("", "argon2id", "v=19", "m=8192,t=1,p=0", salt, key)},
		{name: "memory below 8 KiB per thread", hash: join("", "argon2id", "v=19", "m=8,t=1,p=2", salt, key)},
		{name: "absurd memory", hash: join("", "argon2id", "v=19", "m=4294967295,t=1,p=1", salt, key)},
		{name: "absurd time", hash: join("", "argon2id", "v=19", "m=8192,t=4294967295,p=1", salt, key)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				ok  bool
				err error
			)
			panicked := func() (p any) {
				defer func() { p = recover() }()
				ok, err = VerifyPassword("password1", tt.hash)
				return nil
			}()
			if panicked != nil {
				t.Fatalf("VerifyPassword(%q): got panic %v, want an error", tt.hash, panicked)
			}
			if err == nil {
				t.Errorf("VerifyPassword(%q): got nil error, want an error", tt.hash)
			}
			if ok {
				t.Errorf("VerifyPassword(%q): got true, want false", tt.hash)
			}
		})
	}
}
