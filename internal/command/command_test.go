package command

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	notFound := &ExitError{Code: 3, Err: errors.New("not found")}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"plain error", errors.New("boom"), 1},
		{"exit error", notFound, 3},
		{"wrapped exit error", fmt.Errorf("lookup: %w", notFound), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
	if notFound.Error() != "not found" || !errors.Is(notFound, notFound.Err) {
		t.Fatal("ExitError does not show or unwrap its error")
	}
}
