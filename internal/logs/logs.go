// Package logs routes every logger of a Parley binary (go-log, slog and
// go-libp2p's) into go-log, whose per-subsystem levels come from
// GOLOG_LOG_LEVEL, for example GOLOG_LOG_LEVEL="error,parley/relay=debug".
package logs

import (
	"fmt"
	"log"
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

// ToFile sends every log line (go-log, slog, go-libp2p's, and the standard
// library's log package, which some dependencies print with) to the file
// at path, appended, instead of standard error. Call it before Setup.
func ToFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the log file: %w", err)
	}
	cfg := golog.GetConfig()
	cfg.Stderr, cfg.Stdout, cfg.URL = false, false, ""
	cfg.File = path
	cfg.Format = golog.PlaintextOutput
	golog.SetupLogging(cfg)
	log.SetOutput(f)
	return nil
}
