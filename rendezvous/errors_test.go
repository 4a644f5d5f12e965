package rendezvous_test

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// TestErrorTableComplete: every sentinel declared in the package has one
// row, and every row is well formed.
func TestErrorTableComplete(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for _, name := range vs.Names {
				if regexp.MustCompile(`^Err[A-Z]`).MatchString(name.Name) {
					declared = append(declared, name.Name)
				}
			}
		}
		return true
	})
	rows := rendezvous.Errors()
	if len(rows) != len(declared) {
		t.Errorf("got %d rows, want one per sentinel declared in errors.go: %v", len(rows), declared)
	}
	codeRE := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seenErr := map[error]bool{}
	seenCode := map[string]bool{}
	for _, row := range rows {
		if row.Err == nil || seenErr[row.Err] {
			t.Errorf("row %q: sentinel %v is nil or in two rows", row.Code, row.Err)
		}
		seenErr[row.Err] = true
		if !codeRE.MatchString(row.Code) || seenCode[row.Code] {
			t.Errorf("row %v: code %q is not snake_case or in two rows", row.Err, row.Code)
		}
		seenCode[row.Code] = true
		if row.Status == pb.Status_STATUS_OK || row.Status == pb.Status_STATUS_UNSPECIFIED {
			t.Errorf("row %q: got status %v, want an error status", row.Code, row.Status)
		}
		if row.HTTP < 400 || row.HTTP > 599 {
			t.Errorf("row %q: got HTTP %d, want an error status", row.Code, row.HTTP)
		}
	}
}

// TestErrorTable checks both directions for every row: sentinel to row
// (also wrapped), code to row, and the wire round trip from the server's
// answer to the client's error.
func TestErrorTable(t *testing.T) {
	for _, row := range rendezvous.Errors() {
		t.Run(row.Code, func(t *testing.T) {
			if got := rendezvous.CodeOf(row.Err); got != row {
				t.Errorf("CodeOf(%v): got %+v, want %+v", row.Err, got, row)
			}
			wrapped := fmt.Errorf("step: %w", row.Err)
			if got := rendezvous.CodeOf(wrapped); got != row {
				t.Errorf("CodeOf(wrapped): got %+v, want %+v", got, row)
			}
			if got, ok := rendezvous.LookupCode(row.Code); !ok || got != row {
				t.Errorf("LookupCode(%q): got %+v, %v, want %+v", row.Code, got, ok, row)
			}
			se := &rendezvous.StatusError{Status: row.Status, Code: row.Code, Message: "m"}
			if !errors.Is(se, row.Err) {
				t.Errorf("StatusError{%v, %q}: got %v, want errors.Is %v", row.Status, row.Code, se.Unwrap(), row.Err)
			}
			if got := rendezvous.CodeOf(se); got != row {
				t.Errorf("CodeOf(StatusError): got %+v, want %+v", got, row)
			}

			// Server encodes, the frame crosses the wire, client decodes.
			resp := rendezvous.ErrorResponse(wrapped)
			if resp.GetStatus() != row.Status || resp.GetCode() != row.Code {
				t.Errorf("ErrorResponse: got %v %q, want %v %q", resp.GetStatus(), resp.GetCode(), row.Status, row.Code)
			}
			var buf bytes.Buffer
			if err := wire.Write(&buf, resp, rendezvous.MaxResponseSize); err != nil {
				t.Fatalf("write response: %v", err)
			}
			got := new(pb.Response)
			if err := wire.NewReader(&buf, rendezvous.MaxResponseSize).Read(got); err != nil {
				t.Fatalf("read response: %v", err)
			}
			err := rendezvous.ResponseError(got)
			if !errors.Is(err, row.Err) {
				t.Errorf("round trip: got %v, want errors.Is %v", err, row.Err)
			}
			var gotSE *rendezvous.StatusError
			if !errors.As(err, &gotSE) || gotSE.Status != row.Status || gotSE.Code != row.Code {
				t.Errorf("round trip: got %#v, want a StatusError %v %q", err, row.Status, row.Code)
			}
		})
	}
}

// TestStatusErrorWithoutCode: a response from a server that predates
// codes, or with a code this client does not know, or one that does not
// belong to its status, stands for the status's default sentinel.
func TestStatusErrorWithoutCode(t *testing.T) {
	tests := []struct {
		name   string
		status pb.Status
		code   string
		want   error
	}{
		{"bad request", pb.Status_STATUS_BAD_REQUEST, "", rendezvous.ErrBadRequest},
		{"unauthenticated", pb.Status_STATUS_UNAUTHENTICATED, "", rendezvous.ErrBadCredentials},
		{"already exists", pb.Status_STATUS_ALREADY_EXISTS, "", rendezvous.ErrUsernameTaken},
		{"not found", pb.Status_STATUS_NOT_FOUND, "", rendezvous.ErrNotFound},
		{"rate limited", pb.Status_STATUS_RATE_LIMITED, "", rendezvous.ErrRateLimited},
		{"permission denied", pb.Status_STATUS_PERMISSION_DENIED, "", rendezvous.ErrDeviceRevoked},
		{"unavailable", pb.Status_STATUS_UNAVAILABLE, "", rendezvous.ErrUnavailable},
		{"internal", pb.Status_STATUS_INTERNAL, "", rendezvous.ErrInternal},
		{"unspecified", pb.Status_STATUS_UNSPECIFIED, "", rendezvous.ErrInternal},
		{"unknown status", pb.Status(99), "", rendezvous.ErrInternal},
		{"unknown code", pb.Status_STATUS_UNAUTHENTICATED, "from_the_future", rendezvous.ErrBadCredentials},
		{"code of another status", pb.Status_STATUS_NOT_FOUND, "device_revoked", rendezvous.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every response carries ErrAccountDeleted's message: the
			// message never decides, only the code and the status.
			err := rendezvous.ResponseError(&pb.Response{Status: tt.status, Code: tt.code, Message: rendezvous.ErrAccountDeleted.Error()})
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v (unwraps to %v), want errors.Is %v", err, errors.Unwrap(err), tt.want)
			}
		})
	}
}

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    pb.Status
		code      string
		msg       string
		retryMs   uint64
		wantIsErr error
	}{
		{"bad request keeps the rule", fmt.Errorf("%w: a username has 3 to 32 letters", rendezvous.ErrBadRequest),
			pb.Status_STATUS_BAD_REQUEST, "invalid_request", "bad request: a username has 3 to 32 letters", 0, rendezvous.ErrBadRequest},
		{"sentinel hides detail", fmt.Errorf("look up alice in row 7: %w", rendezvous.ErrNotFound),
			pb.Status_STATUS_NOT_FOUND, "not_found", "not found", 0, rendezvous.ErrNotFound},
		{"unknown is internal", errors.New("disk on fire"),
			pb.Status_STATUS_INTERNAL, "server_internal", rendezvous.ErrInternal.Error(), 0, rendezvous.ErrInternal},
		{"status error keeps its message and retry", &rendezvous.StatusError{Status: pb.Status_STATUS_RATE_LIMITED, Message: "too many login attempts; retry in 2s", RetryAfter: 1500*time.Millisecond + 1},
			pb.Status_STATUS_RATE_LIMITED, "rate_limited", "too many login attempts; retry in 2s", 1501, rendezvous.ErrRateLimited},
		{"status error with a code", fmt.Errorf("session: %w", &rendezvous.StatusError{Status: pb.Status_STATUS_PERMISSION_DENIED, Code: "not_trusted", Message: "no"}),
			pb.Status_STATUS_PERMISSION_DENIED, "not_trusted", "no", 0, rendezvous.ErrNotTrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rendezvous.ErrorResponse(tt.err)
			if resp.GetStatus() != tt.status || resp.GetCode() != tt.code || resp.GetMessage() != tt.msg || resp.GetRetryAfterMs() != tt.retryMs {
				t.Errorf("got %v %q %q %d, want %v %q %q %d", resp.GetStatus(), resp.GetCode(), resp.GetMessage(), resp.GetRetryAfterMs(),
					tt.status, tt.code, tt.msg, tt.retryMs)
			}
			if err := rendezvous.ResponseError(resp); !errors.Is(err, tt.wantIsErr) {
				t.Errorf("decoded: got %v, want errors.Is %v", err, tt.wantIsErr)
			}
		})
	}
	if err := rendezvous.ResponseError(&pb.Response{Status: pb.Status_STATUS_OK}); err != nil {
		t.Errorf("OK: got %v, want nil", err)
	}
	if got := rendezvous.CodeOf(nil); got != (rendezvous.ErrorCode{}) {
		t.Errorf("CodeOf(nil): got %+v, want the zero ErrorCode", got)
	}
}
