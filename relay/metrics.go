package relay

import "time"

// MetricsTracer receives a supernode's measurements (package relay/metrics
// implements it for Prometheus). Its methods are called from many
// goroutines at once and must not block.
type MetricsTracer interface {
	// Admitted counts a certificate accepted on AuthProtocol.
	Admitted()
	// Refused counts a refused presentation, reservation or circuit; reason
	// is one of the Reason constants.
	Refused(reason string)
	// ReservationsChanged adds delta to the live reservations.
	ReservationsChanged(delta int)
	// CircuitOpened and CircuitClosed track relayed connections.
	CircuitOpened()
	CircuitClosed(lifetime time.Duration)
	// BytesRelayed counts bytes copied through circuits.
	BytesRelayed(n int)
	// SpliceOpened and SpliceClosed track spliced connections (the relay
	// fast path, package relay/splice); BytesSpliced counts the bytes
	// copied through them.
	SpliceOpened()
	SpliceClosed(lifetime time.Duration)
	BytesSpliced(n int)
	// Active reports whether a directory holds the supernode active.
	Active(active bool)
}
