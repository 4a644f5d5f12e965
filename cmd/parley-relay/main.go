// Command parley-relay is a headless Parley supernode: a circuit relay
// service announced to the rendezvous server's supernode directory.
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
		fmt.Fprintln(os.Stderr, "parley-relay:", err)
		os.Exit(1)
	}
}
