package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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

// sessionKeeper logs the device in to the rendezvous server and keeps it
// logged in: when a login fails or the session is lost it logs in again,
// after the wait the reason calls for (see loginProblem), and it stops,
// until asked again (kicked), when the device cannot log in at all
// (revoked, account deleted, not enrolled). It keeps the login state the
// API shows (user, certificate, problem), emits the login, logout and
// login_stopped events, and tells the engine through sessionHooks what
// happens to the session. Its goroutine runs until Close.
type sessionKeeper struct {
	rdv      *client.Client
	self     peer.ID // this device, for logs
	retry    time.Duration
	identity string                // the device key's path, for the hint to a revoked device
	addrs    func() []ma.Multiaddr // what contacts are told at login
	emit     func(apitype.Event)
	hooks    sessionHooks
	kick     chan struct{} // asks the goroutine to log in now

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex // guards the following
	session  *client.Session
	username string
	cert     []byte        // the last session's certificate, kept after it ends
	loggedIn chan struct{} // closed while a session is up; replaced on logout
	changed  chan struct{} // closed and replaced when the login state changes
	begun    uint64        // login attempts begun
	problem  *LoginProblem // why the device is not logged in; nil while it is
	// problemOf is the attempt (counting from 1 in begun) that ended with
	// problem, in a failure or a lost session.
	problemOf uint64
	recorded  uint64 // problems recorded so far (see awaitStopped)
	forced    error  // why the device ended the session itself (revoked, deleted)
}

// sessionHooks are what the engine does as the session changes. The
// keeper's goroutine calls them, one at a time; none is called with the
// keeper's lock held.
type sessionHooks struct {
	// up applies a new session's login snapshot before the session shows
	// as logged in, and returns the events that show it (emitted after
	// the login event).
	up func(*client.Session) []apitype.Event
	// loggedIn follows the login event.
	loggedIn func()
	// update applies one of the session's pushes.
	update func(client.Update)
	// down follows the end of a session, once it no longer shows.
	down func()
	// stopped means the device no longer acts for the account; it comes
	// before the stop shows (LoginProblem, AwaitLogin).
	stopped func()
}

func newSessionKeeper(rdv *client.Client, self peer.ID, retry time.Duration, identity string) *sessionKeeper {
	return &sessionKeeper{
		rdv:      rdv,
		self:     self,
		retry:    retry,
		identity: identity,
		kick:     make(chan struct{}, 1),
		loggedIn: make(chan struct{}),
		changed:  make(chan struct{}),
		cancel:   func() {},
	}
}

// start runs the goroutine that logs in. addrs are what contacts are told
// at each login.
func (k *sessionKeeper) start(addrs func() []ma.Multiaddr, emit func(apitype.Event), hooks sessionHooks) {
	k.addrs, k.emit, k.hooks = addrs, emit, hooks
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.wg.Go(func() { k.run(ctx) })
}

// Close ends the session (logging out) and waits for the goroutine.
func (k *sessionKeeper) Close() error {
	k.closeOnce.Do(func() {
		k.cancel()
		if sess := k.current(); sess != nil {
			sess.Close()
		}
		k.wg.Wait()
	})
	return nil
}

// current is the live session, or nil.
func (k *sessionKeeper) current() *client.Session {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.session
}

// Username is the user the device acts for, or "".
func (k *sessionKeeper) Username() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.username
}

// Certificate is the current session's certificate, or the last one's.
func (k *sessionKeeper) Certificate() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.session != nil {
		return k.session.Certificate()
	}
	return k.cert
}

// Problem is why the device is not logged in, or nil.
func (k *sessionKeeper) Problem() *LoginProblem {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.problem
}

// state is what Status shows of the login.
func (k *sessionKeeper) state() (username string, loggedIn bool, problem *LoginProblem) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.username, k.session != nil, k.problem
}

// account is the user and the certificate, for the saved session.
func (k *sessionKeeper) account() (username string, cert []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.username, k.cert
}

// restore starts from a saved session's user and certificate.
func (k *sessionKeeper) restore(username string, cert []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.username, k.cert = username, cert
}

// kickNow asks the goroutine to log in now.
func (k *sessionKeeper) kickNow() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// loginProblem classifies why a login failed or a session ended, and
// decides what the session loop does next.
func (k *sessionKeeper) loginProblem(err error) *LoginProblem {
	p := &LoginProblem{LoginProblem: apitype.LoginProblem{Error: err.Error()}, err: err}
	wait := k.retry
	var goAway *client.GoAwayError
	var status *rendezvous.StatusError
	switch {
	case errors.Is(err, rendezvous.ErrDeviceRevoked):
		p.Reason, p.Stopped = apitype.LoginRevoked, true
		p.Error = "this device was revoked by its owner and can no longer log in"
		p.Hint = k.revokedHint()
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
func (k *sessionKeeper) revokedHint() string {
	return fmt.Sprintf("to use this computer again, stop the daemon, move %s away (a new device key is made at the next start), "+
		"start the daemon and run: parley enrol USER", k.identity)
}

// awaitLogin asks for a login now and waits until a session is up (see
// Engine.AwaitLogin).
func (k *sessionKeeper) awaitLogin(ctx context.Context) error {
	// Only an attempt begun after this call counts: one that was under
	// way may have been answered before a registration, say.
	k.mu.Lock()
	since := k.begun
	k.mu.Unlock()
	k.kickNow()
	for {
		k.mu.Lock()
		loggedIn, changed, problemOf, p := k.loggedIn, k.changed, k.problemOf, k.problem
		k.mu.Unlock()
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

// awaitStopped waits until the keeper has stopped logging in for the
// reason end gave: with a problem recorded after end returned mark (an
// earlier one, such as "not enrolled" when the server dropped the session
// of a deleted account first, does not say why).
func (k *sessionKeeper) awaitStopped(ctx context.Context, mark uint64) error {
	for {
		k.mu.Lock()
		p, changed, recorded := k.problem, k.changed, k.recorded
		k.mu.Unlock()
		if recorded > mark && p != nil && p.Stopped {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for logout: %w", ctx.Err())
		}
	}
}

// stateChangedLocked wakes whoever waits for the login state to change.
// Call with k.mu held.
func (k *sessionKeeper) stateChangedLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// end ends the live session for a reason the engine already knows (it
// revoked its own device or deleted its account), so that the keeper
// stops with that reason instead of retrying. The next problem recorded
// carries reason; end returns the mark to wait for it with awaitStopped.
func (k *sessionKeeper) end(reason error) (mark uint64) {
	k.mu.Lock()
	k.forced = reason
	sess, mark := k.session, k.recorded
	k.mu.Unlock()
	if sess != nil {
		sess.Close()
		return mark
	}
	// Between sessions: let the next login attempt find out now.
	k.kickNow()
	return mark
}

// run logs in and serves the session until Close. When the session is
// lost it logs in again, after the wait the reason calls for; it stops,
// until kicked, when the device cannot log in at all.
func (k *sessionKeeper) run(ctx context.Context) {
	for {
		k.mu.Lock()
		k.begun++
		attempt := k.begun
		k.mu.Unlock()
		sess, err := k.rdv.Login(ctx, k.addrs())
		if ctx.Err() != nil {
			if sess != nil {
				sess.Close()
			}
			return
		}
		hadSession := err == nil
		if hadSession {
			err = k.serve(ctx, sess)
			if ctx.Err() != nil {
				return
			}
		}
		p := k.failed(err, attempt)
		switch {
		case p.Reason == apitype.LoginNotEnrolled:
			log.Infow("device not enrolled; waiting for register or enrol", "peer", k.self)
		case p.Stopped:
			log.Warnw("login stopped", "reason", p.Reason, "err", err, "hint", p.Hint)
		case hadSession:
			log.Warnw("rendezvous session lost; logging in again", "err", err, "at", p.RetryAt)
		default:
			log.Warnw("login failed; retrying", "err", err, "at", p.RetryAt)
		}
		if hadSession {
			k.emit(apitype.Event{Kind: apitype.EventLogout, Login: p.public()})
		}
		if p.Stopped {
			k.emit(apitype.Event{Kind: apitype.EventLoginStopped, Login: p.public()})
			select {
			case <-ctx.Done():
				return
			case <-k.kick:
			}
			continue
		}
		kick := k.kick
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

// failed records why the device is not logged in after attempt failed
// or its session was lost.
func (k *sessionKeeper) failed(err error, attempt uint64) *LoginProblem {
	k.mu.Lock()
	if k.forced != nil {
		err, k.forced = k.forced, nil
		// The kick end gave to reach this attempt is answered; one still
		// pending would log in again and say "not enrolled" instead of
		// why (revoked, deleted).
		select {
		case <-k.kick:
		default:
		}
	}
	p := k.loginProblem(err)
	k.problem, k.problemOf = p, attempt
	k.recorded++
	if p.Stopped {
		// The device no longer acts for the account, and nobody keeps its
		// view of the account current.
		k.username = ""
		if p.Reason != apitype.LoginNotEnrolled {
			k.cert = nil // the server no longer vouches for this device
		}
	}
	k.mu.Unlock()
	if p.Stopped {
		k.hooks.stopped()
	}
	k.mu.Lock()
	k.stateChangedLocked()
	k.mu.Unlock()
	return p
}

// serve makes sess the device's session, applies its pushes until it
// ends, and returns why it ended.
func (k *sessionKeeper) serve(ctx context.Context, sess *client.Session) error {
	snapshot := k.hooks.up(sess)
	k.mu.Lock()
	k.session = sess
	k.username = sess.Username
	k.problem = nil
	k.forced = nil
	close(k.loggedIn)
	k.stateChangedLocked()
	k.mu.Unlock()
	// A kick that arrived while logging in has been answered.
	select {
	case <-k.kick:
	default:
	}
	log.Infow("logged in", "user", sess.Username, "peer", k.self)
	k.emit(apitype.Event{Kind: apitype.EventLogin, Username: sess.Username})
	for _, ev := range snapshot {
		k.emit(ev)
	}
	k.hooks.loggedIn()

	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	for u := range sess.Updates() {
		k.hooks.update(u)
	}
	err := sess.Err()
	k.mu.Lock()
	k.session = nil
	k.cert = sess.Certificate()
	k.loggedIn = make(chan struct{})
	k.mu.Unlock()
	k.hooks.down()
	return err
}
