package api

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
)

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		want    []uint64 // the Seqs yielded
		wantErr error    // nil: any error but io.ErrUnexpectedEOF fails
	}{
		{"events and comments", ": parley events\n\nid: 1\nevent: login\ndata: {\"seq\":1,\"kind\":\"login\"}\n\n: keepalive\n\nid: 2\nevent: gap\ndata: {\"seq\":2,\"kind\":\"gap\"}\n\n", []uint64{1, 2}, io.ErrUnexpectedEOF},
		{"data on several lines", "id: 3\ndata: {\"seq\":3,\ndata: \"kind\":\"message\"}\n\n", []uint64{3}, io.ErrUnexpectedEOF},
		{"data without a space", "data:{\"seq\":4}\n\n", []uint64{4}, io.ErrUnexpectedEOF},
		{"CRLF lines", "id: 5\r\ndata: {\"seq\":5}\r\n\r\n", []uint64{5}, io.ErrUnexpectedEOF},
		{"cut mid-event", "id: 6\ndata: {\"seq\":6}\n\nid: 7\ndata: {\"seq\":", []uint64{6}, io.ErrUnexpectedEOF},
		{"bad JSON", "data: {\"seq\":\n\n", nil, nil},
		{"empty", "", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			err := readEvents(context.Background(), strings.NewReader(tt.stream), func(ev apitype.Event) bool {
				got = append(got, ev.Seq)
				return true
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("events: got %v, want %v", got, tt.want)
			}
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error: got %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)):
				t.Errorf("error: got %v, want a decoding error", err)
			}
		})
	}
}

func FuzzReadEventsNoPanic(f *testing.F) {
	f.Add("id: 1\nevent: login\ndata: {\"seq\":1,\"kind\":\"login\"}\n\n")
	f.Add(": keepalive\n\ndata: {\ndata: }\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		_ = readEvents(context.Background(), strings.NewReader(stream), func(apitype.Event) bool { return true })
	})
}
