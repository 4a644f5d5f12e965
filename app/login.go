package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// LoginProblem says why the device is not logged in and what happens
// next: what the API shows, and what the session loop acts on.
type LoginProblem struct {
	apitype.LoginProblem

	err      error
	mandated bool // RetryAt comes from the server; a kick does not shorten the wait
}

// Err is the error behind the problem.
func (p *LoginProblem) Err() error { return p.err }

// public is what the API shows of p (nil for nil).
func (p *LoginProblem) public() *apitype.LoginProblem {
	if p == nil {
		return nil
	}
	return ptr(p.LoginProblem)
}

// loginProblem classifies why a login failed or a session ended, and
// decides what the session loop does next.
func (e *Engine) loginProblem(err error) *LoginProblem {
	p := &LoginProblem{LoginProblem: apitype.LoginProblem{Error: err.Error()}, err: err}
	wait := e.cfg.RetryInterval
	var goAway *client.GoAwayError
	var status *rendezvous.StatusError
	switch {
	case errors.Is(err, rendezvous.ErrDeviceRevoked):
		p.Reason, p.Stopped = apitype.LoginRevoked, true
		p.Error = "this device was revoked by its owner and can no longer log in"
		p.Hint = e.revokedHint()
	case errors.Is(err, rendezvous.ErrAccountDeleted):
		p.Reason, p.Stopped = apitype.LoginAccountDeleted, true
		p.Error = "the account was deleted, with its contacts; this device is logged out"
		p.Hint = "to go on, create a new account with: parley register USER"
	case errors.Is(err, rendezvous.ErrDeviceNotEnrolled):
		p.Reason, p.Stopped = apitype.LoginNotEnrolled, true
		p.Error = "this device is not enrolled in an account"
		p.Hint = "create an account with: parley register USER, or add this device to yours with: parley enrol USER"
	case errors.As(err, &goAway):
		p.Reason, p.mandated = apitype.LoginServerLeaving, true
		wait = goAway.RetryAfter
		p.Hint = "the rendezvous server is restarting; logging in again by itself"
	case errors.Is(err, rendezvous.ErrRateLimited):
		p.Reason, p.mandated = apitype.LoginRateLimited, true
		if errors.As(err, &status) {
			wait = max(wait, status.RetryAfter)
		}
		p.Hint = "the rendezvous server asked to wait; logging in again by itself"
	default:
		p.Reason = apitype.LoginFailed
		if errors.As(err, &status) && status.RetryAfter > 0 {
			wait, p.mandated = max(wait, status.RetryAfter), true
		}
		p.Hint = "logging in again by itself; if this goes on, check the network and the daemon's --rendezvous address"
	}
	if !p.Stopped {
		p.RetryAt = time.Now().Add(wait)
	}
	return p
}

// revokedHint says how to use this computer again after its device was
// revoked.
func (e *Engine) revokedHint() string {
	return fmt.Sprintf("to use this computer again, stop the daemon, move %s away (a new device key is made at the next start), "+
		"start the daemon and run: parley enrol USER", filepath.Join(e.cfg.DataDir, IdentityFile))
}

// LoginProblem is why the device is not logged in, or nil while it is
// (and before the first login attempt has ended).
func (e *Engine) LoginProblem() *LoginProblem {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.problem
}

// AwaitLogin asks for a login now and waits until a session is up. It
// fails early when a login attempt made after the call stops the engine
// (the device is revoked, say).
func (e *Engine) AwaitLogin(ctx context.Context) error {
	// Only an attempt begun after this call counts: one that was under
	// way may have been answered before a registration, say.
	e.mu.Lock()
	since := e.begun
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	for {
		e.mu.Lock()
		loggedIn, changed, problemOf, p := e.loggedIn, e.changed, e.problemOf, e.problem
		e.mu.Unlock()
		if problemOf > since && p != nil && p.Stopped {
			return fmt.Errorf("log in: %s; %s", p.Error, p.Hint)
		}
		select {
		case <-loggedIn:
			return nil
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for login: %w", ctx.Err())
		}
	}
}

// stateChangedLocked wakes whoever waits for the login state to change.
// Call with e.mu held.
func (e *Engine) stateChangedLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// endSession ends the live session for a reason the engine already knows
// (it revoked its own device or deleted its account), so that the session
// loop stops with that reason instead of retrying.
func (e *Engine) endSession(reason error) {
	e.mu.Lock()
	e.forced = reason
	sess := e.session
	e.mu.Unlock()
	if sess != nil {
		sess.Close()
		return
	}
	// Between sessions: let the next login attempt find out now.
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// sessionLoop logs in and serves the session until the engine closes. When
// the session is lost it logs in again, after the wait the reason calls
// for; it stops, until kicked, when the device cannot log in at all.
func (e *Engine) sessionLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		e.begun++
		attempt := e.begun
		e.mu.Unlock()
		sess, err := e.rdv.Login(ctx, e.advertisedAddrs())
		if ctx.Err() != nil {
			if sess != nil {
				sess.Close()
			}
			return
		}
		hadSession := err == nil
		if hadSession {
			err = e.serveSession(ctx, sess)
			e.saveSession()
			if ctx.Err() != nil {
				return
			}
		}
		p := e.loginFailed(err, attempt)
		switch {
		case p.Reason == apitype.LoginNotEnrolled:
			log.Infow("device not enrolled; waiting for register or enrol", "peer", e.node.ID())
		case p.Stopped:
			log.Warnw("login stopped", "reason", p.Reason, "err", err, "hint", p.Hint)
		case hadSession:
			log.Warnw("rendezvous session lost; logging in again", "err", err, "at", p.RetryAt)
		default:
			log.Warnw("login failed; retrying", "err", err, "at", p.RetryAt)
		}
		if hadSession {
			e.emit(apitype.Event{Kind: apitype.EventLogout, Login: p.public()})
		}
		if p.Stopped {
			e.emit(apitype.Event{Kind: apitype.EventLoginStopped, Login: p.public()})
			select {
			case <-ctx.Done():
				return
			case <-e.kick:
			}
			continue
		}
		kick := e.kick
		if p.mandated {
			kick = nil
		}
		t := time.NewTimer(time.Until(p.RetryAt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// loginFailed records why the device is not logged in after attempt
// failed or its session was lost.
func (e *Engine) loginFailed(err error, attempt uint64) *LoginProblem {
	e.mu.Lock()
	if e.forced != nil {
		err, e.forced = e.forced, nil
		// The kick endSession gave to reach this attempt is answered; one
		// still pending would log in again and say "not enrolled" instead
		// of why (revoked, deleted).
		select {
		case <-e.kick:
		default:
		}
	}
	p := e.loginProblem(err)
	e.problem, e.problemOf = p, attempt
	if p.Stopped {
		// The device no longer acts for the account, and nobody keeps its
		// view of the account current.
		e.username = ""
		e.forgetBookLocked()
		if p.Reason != apitype.LoginNotEnrolled {
			e.cert = nil // the server no longer vouches for this device
		}
	}
	e.stateChangedLocked()
	e.mu.Unlock()
	if p.Stopped {
		e.forgetSession()
	}
	return p
}

// serveSession makes sess the engine's session, applies its pushes until
// it ends, and returns why it ended.
func (e *Engine) serveSession(ctx context.Context, sess *client.Session) error {
	e.mu.Lock()
	e.session = sess
	e.username = sess.Username
	e.problem = nil
	e.forced = nil
	snapshot := e.resetBookLocked(sess)
	close(e.loggedIn)
	e.stateChangedLocked()
	e.mu.Unlock()
	// A kick that arrived while logging in has been answered.
	select {
	case <-e.kick:
	default:
	}
	log.Infow("logged in", "user", sess.Username, "peer", e.node.ID())
	e.emit(apitype.Event{Kind: apitype.EventLogin, Username: sess.Username})
	e.emitAll(snapshot)
	e.flushSoon()
	e.refreshSoon() // the login snapshot lacks outgoing requests and blocks
	if e.reserver != nil {
		e.reserver.Refresh() // the certificate supernodes admit us with is here
	}
	e.volunteer.Recheck() // it waits for a login

	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	for u := range sess.Updates() {
		var evs []apitype.Event
		e.mu.Lock()
		switch {
		case u.Presence != nil:
			evs = e.presenceLocked(*u.Presence)
		case u.Contact != nil:
			evs = e.contactEventLocked(*u.Contact)
		}
		e.mu.Unlock()
		e.emitAll(evs)
		for _, ev := range evs {
			switch {
			case ev.Kind == apitype.EventPresence && ev.Contact.Online:
				e.flushSoon()
			case ev.Kind == apitype.EventContact:
				e.refreshSoon()
			}
		}
	}
	err := sess.Err()
	// Without a session nobody tells us about contacts: show them offline
	// (not last seen) until the next login's snapshot.
	e.mu.Lock()
	e.session = nil
	e.cert = sess.Certificate()
	e.loggedIn = make(chan struct{})
	e.markOfflineLocked()
	e.mu.Unlock()
	return err
}
