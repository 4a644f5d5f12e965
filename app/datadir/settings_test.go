package datadir

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// defaults are the daemon's flag defaults, as the command line gives them
// when no flag is set.
var defaults = Settings{API: "127.0.0.1:0", Supernode: "auto", SupernodeUptime: Duration(10 * time.Minute), SupernodeMaxLoad: 1.5}

func TestMerge(t *testing.T) {
	saved := Settings{
		Rendezvous: "/ip4/10.0.0.1/tcp/4001/p2p/saved", API: "127.0.0.1:5000",
		Listen: []string{"/ip4/0.0.0.0/tcp/4002"}, Bootstrap: []string{"/ip4/10.0.0.2/tcp/4001/p2p/boot"},
		Private: true, NATImitation: true, Supernode: "never", SupernodeUptime: Duration(time.Hour), SupernodeMaxLoad: 0.5,
		UploadLimit: "20MiB",
	}
	with := func(f func(*Settings)) Settings {
		s := saved
		f(&s)
		return s
	}
	flagsWith := func(f func(*Settings)) Settings {
		s := defaults
		f(&s)
		return s
	}
	tests := []struct {
		name  string
		saved Settings
		flags Settings
		given []string
		want  Settings
	}{
		{"first start takes the command line", defaults, flagsWith(func(s *Settings) { s.Rendezvous = "/r" }), []string{"rendezvous"},
			flagsWith(func(s *Settings) { s.Rendezvous = "/r" })},
		{"no flags restarts with the saved network", saved, defaults, nil, saved},
		{"rendezvous given", saved, flagsWith(func(s *Settings) { s.Rendezvous = "/new" }), []string{"rendezvous"},
			with(func(s *Settings) { s.Rendezvous = "/new" })},
		{"api given", saved, flagsWith(func(s *Settings) { s.API = "127.0.0.1:6000" }), []string{"api"},
			with(func(s *Settings) { s.API = "127.0.0.1:6000" })},
		{"listen given replaces the saved list", saved, flagsWith(func(s *Settings) { s.Listen = []string{"/a", "/b"} }), []string{"listen"},
			with(func(s *Settings) { s.Listen = []string{"/a", "/b"} })},
		{"bootstrap given", saved, flagsWith(func(s *Settings) { s.Bootstrap = []string{"/c"} }), []string{"bootstrap"},
			with(func(s *Settings) { s.Bootstrap = []string{"/c"} })},
		{"private=false given turns it off", saved, defaults, []string{"private"},
			with(func(s *Settings) { s.Private = false })},
		{"nat-imitation=false given turns it off", saved, defaults, []string{"nat-imitation"},
			with(func(s *Settings) { s.NATImitation = false })},
		{"supernode given", saved, flagsWith(func(s *Settings) { s.Supernode = "always" }), []string{"supernode"},
			with(func(s *Settings) { s.Supernode = "always" })},
		{"supernode-uptime 0 given", saved, flagsWith(func(s *Settings) { s.SupernodeUptime = 0 }), []string{"supernode-uptime"},
			with(func(s *Settings) { s.SupernodeUptime = 0 })},
		{"supernode-max-load given", saved, flagsWith(func(s *Settings) { s.SupernodeMaxLoad = 3 }), []string{"supernode-max-load"},
			with(func(s *Settings) { s.SupernodeMaxLoad = 3 })},
		{"upload-limit 0 given removes the limit", saved, flagsWith(func(s *Settings) { s.UploadLimit = "0" }), []string{"upload-limit"},
			with(func(s *Settings) { s.UploadLimit = "0" })},
		{"a flag given at its default still overrides", saved, defaults, []string{"supernode"},
			with(func(s *Settings) { s.Supernode = "auto" })},
		{"other flags are not settings", saved, defaults, []string{"json"}, saved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Merge(tc.saved, tc.flags, func(name string) bool { return slices.Contains(tc.given, name) })
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestMergeKnowsEveryField guards against a setting added to Settings but
// not to Merge: given alone, each field's flag must take the flags' value.
func TestMergeKnowsEveryField(t *testing.T) {
	var saved, flags Settings
	typ := reflect.TypeFor[Settings]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		v := reflect.ValueOf(&flags).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int64:
			v.SetInt(1)
		case reflect.Float64:
			v.SetFloat(1)
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"x"}))
		default:
			t.Fatalf("field %s: kind %v not covered by this test", f.Name, v.Kind())
		}
		got := Merge(saved, flags, func(flag string) bool { return flag == name })
		if !reflect.DeepEqual(reflect.ValueOf(got).Field(i).Interface(), v.Interface()) {
			t.Errorf("field %s (flag --%s): Merge does not take it from the command line", f.Name, name)
		}
		v.SetZero()
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := defaults
	if ok, err := d.LoadSettings(&s); ok || err != nil || !reflect.DeepEqual(s, defaults) {
		t.Fatalf("before any save: got %v, %v, %+v; want false, nil and s untouched", ok, err, s)
	}
	want := Settings{Rendezvous: "/r", API: "127.0.0.1:1", Listen: []string{"/l"}, Bootstrap: []string{"/b"},
		Private: true, NATImitation: true, Supernode: "never", SupernodeUptime: Duration(90 * time.Second), SupernodeMaxLoad: 2.5,
		UploadLimit: "20MiB"}
	if err := d.SaveSettings(want); err != nil {
		t.Fatal(err)
	}
	got := defaults
	if ok, err := d.LoadSettings(&got); !ok || err != nil {
		t.Fatalf("load: got %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	data, _ := os.ReadFile(filepath.Join(d.Path(), SettingsFile))
	if !strings.Contains(string(data), `"supernode-uptime": "1m30s"`) {
		t.Errorf("durations are written for people to read; got\n%s", data)
	}
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    Settings
		wantErr string // empty: no error
	}{
		{"a field the file lacks keeps the default", `{"rendezvous": "/r"}`,
			Settings{Rendezvous: "/r", API: "127.0.0.1:0", Supernode: "auto", SupernodeUptime: Duration(10 * time.Minute), SupernodeMaxLoad: 1.5}, ""},
		{"unknown field", `{"rendezvous": "/r", "rendevous": "/typo"}`, defaults, `unknown field "rendevous"`},
		{"damaged", `{"rendezvous": "/r"`, defaults, "unexpected EOF"},
		{"bad duration", `{"supernode-uptime": "ten minutes"}`, defaults, "time: invalid duration"},
		{"wrong type", `{"listen": "/l"}`, defaults, "cannot unmarshal"},
		{"two objects", `{} {}`, defaults, "data after the settings object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			path := filepath.Join(d.Path(), SettingsFile)
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got := defaults
			_, err = d.LoadSettings(&got)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one with %q", err, tc.wantErr)
				}
				for _, part := range []string{path, "delete it", "--rendezvous"} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not say %q", err, part)
					}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestLoadSettingsLeavesFlagsAlone: the daemon loads over a copy of its
// flag values; decoding must not write into their slices.
func TestLoadSettingsLeavesFlagsAlone(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SaveSettings(Settings{Listen: []string{"/saved"}}); err != nil {
		t.Fatal(err)
	}
	flags := Settings{Listen: make([]string, 1, 4)}
	flags.Listen[0] = "/given"
	s := flags
	if _, err := d.LoadSettings(&s); err != nil {
		t.Fatal(err)
	}
	if flags.Listen[0] != "/given" || s.Listen[0] != "/saved" {
		t.Errorf("got flags %q and loaded %q, want [/given] and [/saved]", flags.Listen, s.Listen)
	}
}
