// Command parley-rendezvous is the Parley rendezvous server: accounts,
// devices, contacts, presence and the supernode directory.
package main

import "github.com/parleynet/parley/internal/command"

func main() { command.Main("parley-rendezvous", run) }
