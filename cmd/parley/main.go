// Command parley is the Parley desktop client: `parley daemon` runs the
// client engine with its local API, and the other subcommands talk to the
// running daemon.
package main

import "github.com/parleynet/parley/internal/command"

func main() { command.Main("parley", run) }
