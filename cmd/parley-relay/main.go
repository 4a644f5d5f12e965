// Command parley-relay is a headless Parley supernode: a circuit relay
// service announced to the rendezvous server's supernode directory.
package main

import "github.com/parleynet/parley/internal/command"

func main() { command.Main("parley-relay", run) }
