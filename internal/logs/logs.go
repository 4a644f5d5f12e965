// Package logs routes every logger of a Parley binary (go-log, slog and
// go-libp2p's) into go-log, whose per-subsystem levels come from
// GOLOG_LOG_LEVEL, for example GOLOG_LOG_LEVEL="error,parley/relay=debug".
package logs

import (
	"log/slog"
	"os"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// Setup installs the handlers. When GOLOG_LOG_LEVEL is unset, Parley's own
// subsystems log at parleyLevel and everything else at error.
func Setup(parleyLevel string) {
	slog.SetDefault(slog.New(golog.SlogHandler()))
	gologshim.SetDefaultHandler(golog.SlogHandler())
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		_ = golog.SetLogLevelRegex("parley/.*", parleyLevel)
	}
}
