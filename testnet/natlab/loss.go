package natlab

import (
	"context"
	"fmt"
)

// setLossLocked changes a public link's drop probability.
func (l *Lab) setLossLocked(ctx context.Context, lk *link, p float64) error {
	if !(p >= 0 && p < 1) {
		return fmt.Errorf("set loss of %s: %v, want a probability from 0 up to (not including) 1", lk.owner, p)
	}
	if l.closed {
		return ErrClosed
	}
	old := lk.loss
	lk.loss = p
	if err := l.applyDelaysLocked(ctx); err != nil {
		lk.loss = old
		return fmt.Errorf("set loss of %s to %v: %w", lk.owner, p, err)
	}
	if p != old {
		log.Debugw("link loss", "lab", l.ID, "link", lk.owner, "loss", p)
	}
	return nil
}

// SetLoss makes the host's public link drop each packet crossing it, in
// either direction, with probability p (0 for none), like a lossy line.
// Config.LossSeed makes the drops repeatable. A packet is what the
// kernel queues: a GSO burst of TCP segments is dropped whole, as one.
// Hosts behind a NAT have no public link: set the NAT's.
func (h *Host) SetLoss(p float64) error {
	if h.link == nil {
		return fmt.Errorf("host %s is behind NAT %s: set the NAT's loss", h.Name, h.NAT.Name)
	}
	ctx, cancel := opContext()
	defer cancel()
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return h.lab.setLossLocked(ctx, h.link, p)
}

// SetLoss makes the NAT's public link drop packets, as Host.SetLoss does.
func (n *NAT) SetLoss(p float64) error {
	ctx, cancel := opContext()
	defer cancel()
	n.lab.mu.Lock()
	defer n.lab.mu.Unlock()
	return n.lab.setLossLocked(ctx, n.link, p)
}
