package rendezvous

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalUsername(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "alice", want: "alice"},
		{in: "Alice", want: "alice"},
		{in: "BoB_Smith-2.0", want: "bob_smith-2.0"},
		{in: "ABC", want: "abc"},
		{in: "7up", want: "7up"},
		{in: strings.Repeat("Z", 32), want: strings.Repeat("z", 32)},
		{in: "", wantErr: true},
		{in: "ab", wantErr: true},
		{in: strings.Repeat("a", 33), wantErr: true},
		{in: "_alice", wantErr: true},
		{in: ".alice", wantErr: true},
		{in: "-alice", wantErr: true},
		{in: "al ice", wantErr: true},
		{in: "alice@example", wantErr: true},
		{in: "alice+1", wantErr: true},
		{in: "al/ice", wantErr: true},
		{in: "alice\n", wantErr: true},
		{in: " alice", wantErr: true},
		{in: "ålice", wantErr: true},
		{in: "aliсe", wantErr: true}, // Cyrillic 'с'
		{in: "ünïcødé", wantErr: true},
		{in: "名前です", wantErr: true},
		// Documents current behaviour: strings.ToLower folds a few
		// non-ASCII letters to ASCII ones (U+0130 'İ' to 'i', U+212A
		// KELVIN SIGN to 'k'), so these are accepted as the ASCII name.
		// Harmless, as accounts are keyed by the canonical name.
		{in: "İstanbul", want: "istanbul"},
		{in: "\u212Aate", want: "kate"},
		{in: "ali\x00ce", wantErr: true},
		{in: "\xff\xfe\xfd", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalUsername(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("CanonicalUsername(%q): got %q, %v, want ErrBadRequest", tt.in, got, err)
				}
				if got != "" {
					t.Errorf("CanonicalUsername(%q): got name %q with error, want empty", tt.in, got)
				}
				if !strings.Contains(err.Error(), "3 to 32") {
					t.Errorf("CanonicalUsername(%q): got message %q, want it to explain the rule", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CanonicalUsername(%q): got error %v, want nil", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("CanonicalUsername(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		wantErr bool
	}{
		{"empty", "", true},
		{"7 bytes", strings.Repeat("a", 7), true},
		{"8 bytes", strings.Repeat("a", 8), false},
		{"256 bytes", strings.Repeat("a", 256), false},
		{"257 bytes", strings.Repeat("a", 257), true},
		{"4 two-byte runes (8 bytes)", "éééé", false},
		{"129 two-byte runes (258 bytes)", strings.Repeat("é", 129), true}, // 258 bytes
		{"3 two-byte runes (6 bytes)", "ééé", true},
		{"invalid UTF-8", strings.Repeat("\xff", 8), true},
		{"invalid UTF-8 tail", "password\xc3", true},
		{"NUL bytes", strings.Repeat("\x00", 8), false}, // valid UTF-8
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword(tt.pw)
			if tt.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("CheckPassword(%d bytes): got %v, want ErrBadRequest", len(tt.pw), err)
				}
				if !strings.Contains(err.Error(), "8 to 256") {
					t.Errorf("CheckPassword: got message %q, want it to state the bounds", err)
				}
				return
			}
			if err != nil {
				t.Errorf("CheckPassword(%d bytes): got %v, want nil", len(tt.pw), err)
			}
		})
	}
}
