// Command parley-rendezvous is the Parley rendezvous server: accounts,
// devices, contacts, presence and the supernode directory.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "parley-rendezvous:", err)
		os.Exit(1)
	}
}
