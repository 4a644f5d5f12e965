package xfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/internal/atomicfile"
)

// ErrNoSuchTransfer means no transfer has the ID given.
var ErrNoSuchTransfer = errors.New("no such transfer")

// ErrNotPublished means the content is not published by this device.
var ErrNotPublished = errors.New("content not published")

// Routing is the part of the DHT the manager uses (*dht.DHT).
type Routing interface {
	Provide(ctx context.Context, c cid.Cid) error
	Withdraw(c cid.Cid) bool
	FindProviders(ctx context.Context, c cid.Cid, max int) ([]peer.AddrInfo, error)
}

// Config configures a Manager. Host, Routing, IndexFile, StateFile and
// DownloadDir are required.
type Config struct {
	Host    host.Host
	Routing Routing
	// IndexFile is the share index (SQLite).
	IndexFile string
	// StateFile keeps the published list and the transfers (JSON).
	StateFile string
	// DownloadDir is where downloads go when a Get names no folder.
	DownloadDir string
	// Emit, if not nil, is called with each transfer event. It is called
	// with the manager's lock held (so events of one transfer come in
	// order), from several goroutines, never concurrently; it must not
	// block nor call the manager.
	Emit func(apitype.Transfer)
	// Certify checks the membership certificates requesters present
	// (files.ServerConfig.Certify); published content is served only to
	// requesters it accepted. Nil serves published content to nobody.
	Certify files.CertifyFunc
	// Certificate, if not nil, returns this device's membership
	// certificate, presented to every provider a download asks.
	Certificate func() []byte
	// FindTimeout bounds one provider lookup; zero means 30s.
	FindTimeout time.Duration
	// FindRetries is how many lookups find no provider before the
	// transfer fails; zero means 3.
	FindRetries int
	// RetryInterval is the wait between lookups; zero means 3s.
	RetryInterval time.Duration
	// StallTimeout is files.FetchConfig.StallTimeout.
	StallTimeout time.Duration
	// UploadLimit caps the bytes a second the file server sends to all
	// requesters together (files.ServerConfig.UploadLimit); zero means
	// no limit.
	UploadLimit int64
	// SharedSent, if not nil, is told that more of content shared with a
	// user was sent to that user's devices (SentTo says how much), at most
	// TransferEventsPerSecond times a second per content and user and
	// when the total reaches the content's size. It must not block.
	SharedSent func(cid, to string)
}

// Manager publishes content and runs downloads. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg    Config
	index  *files.Index
	server *files.Server
	ctx    context.Context // ends at Close: every run stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the runs

	closeOnce sync.Once
	closeErr  error

	sentMu sync.Mutex // guards sent
	sent   map[sentKey]*sentCount

	mu        sync.Mutex // guards the following; taken before Emit's locks
	published []apitype.Published
	shared    []Shared
	transfers []*transfer
	closed    bool
}

// transfer is one download. Its fields are guarded by Manager.mu.
type transfer struct {
	apitype.Transfer
	NoSeed   bool   `json:"no_seed,omitempty"`
	From     string `json:"from,omitempty"`      // the link's provider hint
	FromOnly bool   `json:"from_only,omitempty"` // fetch from From alone (offered content)

	cancel   context.CancelFunc // stops the current run; nil when none
	done     chan struct{}      // closed when the current run returns
	stopping apitype.TransferState
	lastEmit time.Time
}

// sentKey names content shared with one user.
type sentKey struct{ cid, to string }

// sentCount is what was sent of it this run.
type sentCount struct {
	total    int64
	reported time.Time
}

// Shared is content shared with one user: served to that user's devices
// only, and never announced.
type Shared struct {
	CID  string `json:"cid"`
	To   string `json:"to"` // the username whose devices may fetch it
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Files is the number of files in it.
	Files int    `json:"files"`
	Path  string `json:"path"`
}

// state is what StateFile holds.
type state struct {
	Published []apitype.Published `json:"published"`
	Shared    []Shared            `json:"shared,omitempty"`
	Transfers []*transfer         `json:"transfers"`
}

// New opens the index and the state, starts serving published content and
// announcing it, and restarts the downloads that were under way.
func New(cfg Config) (_ *Manager, err error) {
	if cfg.Host == nil || cfg.Routing == nil || cfg.IndexFile == "" || cfg.StateFile == "" || cfg.DownloadDir == "" {
		return nil, errors.New("transfer manager: incomplete config")
	}
	if cfg.FindTimeout == 0 {
		cfg.FindTimeout = 30 * time.Second
	}
	if cfg.FindRetries == 0 {
		cfg.FindRetries = 3
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 3 * time.Second
	}
	m := &Manager{cfg: cfg}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	// The index names the user's shared paths: owner only, as every
	// SQLite file Parley opens (sqlitedb.Open).
	if m.index, err = files.OpenIndex(cfg.IndexFile); err != nil {
		return nil, fmt.Errorf("open share index: %w", err)
	}
	var st state
	data, err := os.ReadFile(cfg.StateFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read transfer state: %w", err)
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			log.Warnw("transfer state is damaged; starting without it", "file", cfg.StateFile, "err", err)
			st = state{}
		}
	}
	m.published, m.shared = st.Published, st.Shared
	if m.server, err = files.NewServer(cfg.Host, m.index, files.AdmitFunc(m.admit), files.ServerConfig{Certify: cfg.Certify, UploadLimit: cfg.UploadLimit, OnSent: m.onSent}); err != nil {
		return nil, fmt.Errorf("start file server: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.published {
		c, err := cid.Decode(p.CID)
		if err != nil {
			continue
		}
		m.wg.Go(func() { m.provide(c) })
	}
	for _, t := range st.Transfers {
		if t == nil || t.ID == "" {
			continue
		}
		m.transfers = append(m.transfers, t)
		switch t.State {
		case apitype.TransferFindingProviders, apitype.TransferRunning:
			m.startLocked(t)
		}
	}
	return m, nil
}

// Close stops every download (they resume at the next New) and the file
// server, and closes the index.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		m.wg.Wait()
		var errs []error
		if m.server != nil {
			errs = append(errs, m.server.Close())
		}
		if m.index != nil {
			errs = append(errs, m.index.Close())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// admit lets members (requesters with a valid certificate) fetch
// published content, and the devices of the user content was shared with
// (requesters whose certificate names that user) fetch shared content.
func (m *Manager) admit(r files.Requester, c cid.Cid) bool {
	if r.Username == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := c.String()
	return slices.ContainsFunc(m.published, func(x apitype.Published) bool { return x.CID == id }) ||
		slices.ContainsFunc(m.shared, func(x Shared) bool { return x.CID == id && x.To == r.Username })
}

// onSent counts the bytes of shared content sent to its user's devices
// and reports them (Config.SharedSent).
func (m *Manager) onSent(r files.Requester, c cid.Cid, n int) {
	if m.cfg.SharedSent == nil || r.Username == "" {
		return
	}
	m.mu.Lock()
	id := c.String()
	i := slices.IndexFunc(m.shared, func(x Shared) bool { return x.CID == id && x.To == r.Username })
	var size int64
	if i >= 0 {
		size = m.shared[i].Size
	}
	m.mu.Unlock()
	if i < 0 {
		return // published content: nobody follows its uploads
	}
	k := sentKey{id, r.Username}
	m.sentMu.Lock()
	if m.sent == nil {
		m.sent = make(map[sentKey]*sentCount)
	}
	sc := m.sent[k]
	if sc == nil {
		sc = &sentCount{}
		m.sent[k] = sc
	}
	before := sc.total
	sc.total += int64(n)
	report := time.Since(sc.reported) >= time.Second/apitype.TransferEventsPerSecond || (before < size && sc.total >= size)
	if report {
		sc.reported = time.Now()
	}
	m.sentMu.Unlock()
	if report {
		m.cfg.SharedSent(k.cid, k.to)
	}
}

// SentTo is how many bytes of content c (a CID string) shared with user
// to were sent to that user's devices since the manager started (chunks
// written to their streams; a chunk sent twice counts twice).
func (m *Manager) SentTo(c, to string) int64 {
	m.sentMu.Lock()
	defer m.sentMu.Unlock()
	if sc := m.sent[sentKey{c, to}]; sc != nil {
		return sc.total
	}
	return 0
}

// servedLocked reports whether c is published or shared with anyone.
func (m *Manager) servedLocked(c cid.Cid) bool {
	id := c.String()
	return slices.ContainsFunc(m.published, func(x apitype.Published) bool { return x.CID == id }) ||
		slices.ContainsFunc(m.shared, func(x Shared) bool { return x.CID == id })
}

// Share shares path in place with the user to: it is served to the
// devices whose membership certificate names to, and not announced.
func (m *Manager) Share(ctx context.Context, path, to string) (Shared, error) {
	if to == "" {
		return Shared{}, errors.New("share: no user to share with")
	}
	path = filepath.Clean(path)
	c, man, err := m.index.Share(ctx, path)
	if err != nil {
		return Shared{}, fmt.Errorf("share %s: %w", path, err)
	}
	sh := Shared{CID: c.String(), To: to, Name: contentName(path, man), Size: man.TotalSize, Files: len(man.Entries), Path: path}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shared = slices.DeleteFunc(m.shared, func(x Shared) bool { return x.CID == sh.CID && x.To == to })
	m.shared = append(m.shared, sh)
	if err := m.saveLocked(); err != nil {
		return Shared{}, err
	}
	return sh, nil
}

// Unshare stops serving c to the user to (it stays served if it is
// published or shared with others).
func (m *Manager) Unshare(ctx context.Context, c cid.Cid, to string) error {
	m.mu.Lock()
	n := len(m.shared)
	m.shared = slices.DeleteFunc(m.shared, func(x Shared) bool { return x.CID == c.String() && x.To == to })
	var saveErr error
	if len(m.shared) != n {
		saveErr = m.saveLocked()
	}
	served := m.servedLocked(c)
	m.mu.Unlock()
	if !served {
		if err := m.index.Unshare(ctx, c); err != nil {
			return fmt.Errorf("unshare %s: %w", c, err)
		}
	}
	return saveErr
}

// contentName is the name downloads of man get: the first path
// component of its entries, or path's base name for empty content.
func contentName(path string, man *files.Manifest) string {
	if len(man.Entries) > 0 {
		name, _, _ := strings.Cut(man.Entries[0].Path, "/")
		return name
	}
	return filepath.Base(path)
}

// provide announces c, logging a failure (the DHT keeps it and announces
// it again soon).
func (m *Manager) provide(c cid.Cid) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.FindTimeout)
	defer cancel()
	if err := m.cfg.Routing.Provide(ctx, c); err != nil && m.ctx.Err() == nil {
		log.Warnw("announce content", "cid", c, "err", err)
	}
}

// Publish shares path in place and announces it.
func (m *Manager) Publish(ctx context.Context, path string) (apitype.Published, error) {
	path = filepath.Clean(path)
	c, man, err := m.index.Share(ctx, path)
	if err != nil {
		return apitype.Published{}, fmt.Errorf("share %s: %w", path, err)
	}
	name := contentName(path, man)
	p := apitype.Published{
		CID:  c.String(),
		Name: name,
		Size: man.TotalSize,
		Path: path,
		Link: Link{CID: c, Name: name, Size: man.TotalSize, From: m.cfg.Host.ID()}.String(),
	}
	m.mu.Lock()
	var replaced []cid.Cid // what path held before it changed: no longer served
	m.published = slices.DeleteFunc(m.published, func(x apitype.Published) bool {
		if x.Path == p.Path && x.CID != p.CID {
			if old, err := cid.Decode(x.CID); err == nil {
				replaced = append(replaced, old)
			}
		}
		return x.CID == p.CID || x.Path == p.Path
	})
	m.published = append(m.published, p)
	err = m.saveLocked()
	m.mu.Unlock()
	for _, old := range replaced {
		m.cfg.Routing.Withdraw(old)
	}
	if err != nil {
		return apitype.Published{}, err
	}
	m.provide(c)
	return p, nil
}

// Unpublish stops announcing and serving c.
func (m *Manager) Unpublish(ctx context.Context, s string) error {
	c, err := files.ParseCID(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLink, err)
	}
	m.mu.Lock()
	n := len(m.published)
	m.published = slices.DeleteFunc(m.published, func(x apitype.Published) bool { return x.CID == c.String() })
	var saveErr error
	if len(m.published) != n {
		saveErr = m.saveLocked()
	}
	served := m.servedLocked(c) // shared with a contact too
	m.mu.Unlock()
	m.cfg.Routing.Withdraw(c)
	if !served {
		if err := m.index.Unshare(ctx, c); err != nil {
			return fmt.Errorf("unshare %s: %w", c, err)
		}
	}
	return saveErr
}

// Published lists the published content, oldest first.
func (m *Manager) Published() []apitype.Published {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.published)
}

// Get starts downloading the content l names into dir (absolute; ""
// means the default download folder).
func (m *Manager) Get(l Link, dir string, noSeed bool) (apitype.Transfer, error) {
	return m.get(l, dir, noSeed, false)
}

// GetOffered downloads content a contact offered: from the link's provider
// only (the offering device; shared content is not in the DHT, so no
// lookup), without seeding it afterwards.
func (m *Manager) GetOffered(l Link, dir string) (apitype.Transfer, error) {
	if l.From == "" {
		return apitype.Transfer{}, fmt.Errorf("%w: an offered download needs the offering device", ErrInvalidLink)
	}
	return m.get(l, dir, true, true)
}

func (m *Manager) get(l Link, dir string, noSeed, fromOnly bool) (apitype.Transfer, error) {
	if dir == "" {
		dir = m.cfg.DownloadDir
	}
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return apitype.Transfer{}, errors.New("get: the transfer manager is closed")
	}
	for _, t := range m.transfers {
		if t.CID == l.CID.String() && t.Dir == dir && t.State != apitype.TransferDone && t.State != apitype.TransferCancelled {
			if t.State == apitype.TransferFailed || t.State == apitype.TransferPaused {
				m.startLocked(t)
			}
			return t.Transfer, nil
		}
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	t := &transfer{
		Transfer: apitype.Transfer{
			ID:         hex.EncodeToString(id),
			CID:        l.CID.String(),
			Name:       l.Name,
			Direction:  "download",
			BytesTotal: l.Size,
			Dir:        dir,
		},
		NoSeed:   noSeed,
		FromOnly: fromOnly,
	}
	if l.From != "" {
		t.From = l.From.String()
	}
	m.transfers = append(m.transfers, t)
	m.startLocked(t)
	return t.Transfer, nil
}

// Transfers lists the transfers, oldest first.
func (m *Manager) Transfers() []apitype.Transfer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]apitype.Transfer, 0, len(m.transfers))
	for _, t := range m.transfers {
		out = append(out, t.Transfer)
	}
	return out
}

func (m *Manager) lookupLocked(id string) (*transfer, error) {
	for _, t := range m.transfers {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, fmt.Errorf("transfer %q: %w", id, ErrNoSuchTransfer)
}

// Pause stops a download, keeping its verified chunks.
func (m *Manager) Pause(id string) error {
	return m.stop(id, apitype.TransferPaused)
}

// Cancel stops a download and deletes its partial data.
func (m *Manager) Cancel(id string) error {
	return m.stop(id, apitype.TransferCancelled)
}

// stop ends a transfer's run, if any, and leaves it in state to.
func (m *Manager) stop(id string, to apitype.TransferState) error {
	m.mu.Lock()
	t, err := m.lookupLocked(id)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if t.State == apitype.TransferDone || t.State == apitype.TransferCancelled {
		m.mu.Unlock()
		return nil // nothing to stop
	}
	done := t.done
	if t.cancel != nil {
		t.stopping = to
		t.cancel()
	}
	m.mu.Unlock()
	if done != nil {
		<-done
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.cancel != nil || t.State == apitype.TransferDone {
		return nil // resumed meanwhile, or finished before the stop
	}
	if to == apitype.TransferCancelled {
		c, _ := cid.Decode(t.CID)
		if err := files.RemovePartial(t.Dir, c); err != nil {
			log.Warnw("remove cancelled download", "cid", t.CID, "err", err)
		}
		t.BytesDone = 0
	}
	t.Rate, t.Peers = 0, 0
	m.setStateLocked(t, to, "")
	return nil
}

// Resume starts a paused or failed download again.
func (m *Manager) Resume(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.lookupLocked(id)
	if err != nil {
		return err
	}
	switch t.State {
	case apitype.TransferPaused, apitype.TransferFailed:
		if m.closed {
			return errors.New("resume: the transfer manager is closed")
		}
		m.startLocked(t)
	}
	return nil
}

// startLocked starts a run of t (which has none).
func (m *Manager) startLocked(t *transfer) {
	if t.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	t.cancel, t.done, t.stopping = cancel, make(chan struct{}), ""
	t.Rate, t.Peers = 0, 0
	m.setStateLocked(t, apitype.TransferFindingProviders, "")
	done := t.done
	m.wg.Go(func() {
		defer close(done)
		defer cancel()
		m.run(ctx, t)
	})
}

// setStateLocked changes t's state, saves and emits it. A state other
// than failed clears the failure's code.
func (m *Manager) setStateLocked(t *transfer, s apitype.TransferState, errText string) {
	t.State, t.Error = s, errText
	if s != apitype.TransferFailed {
		t.ErrorCode = ""
	}
	if err := m.saveLocked(); err != nil {
		log.Warnw("save transfer state", "err", err)
	}
	m.emitLocked(t)
}

func (m *Manager) emitLocked(t *transfer) {
	t.lastEmit = time.Now()
	if m.cfg.Emit != nil {
		m.cfg.Emit(t.Transfer)
	}
}

// saveLocked writes StateFile.
func (m *Manager) saveLocked() error {
	data, err := json.MarshalIndent(state{Published: m.published, Shared: m.shared, Transfers: m.transfers}, "", "\t")
	if err != nil {
		return fmt.Errorf("encode transfer state: %w", err)
	}
	if err := atomicfile.Write(m.cfg.StateFile, data); err != nil {
		return fmt.Errorf("write transfer state: %w", err)
	}
	return nil
}

// run is one run of a download: find providers, fetch, then seed.
func (m *Manager) run(ctx context.Context, t *transfer) {
	m.mu.Lock()
	c, _ := cid.Decode(t.CID)
	dir, from, noSeed, fromOnly := t.Dir, t.From, t.NoSeed, t.FromOnly
	m.mu.Unlock()

	res, err := m.fetch(ctx, t, c, dir, from, fromOnly)

	m.mu.Lock()
	defer m.mu.Unlock()
	t.cancel = nil
	t.Rate, t.Peers = 0, 0
	switch {
	case err == nil:
	case t.stopping != "":
		return // stop sets the state once the run has returned
	case m.ctx.Err() != nil:
		return // closing: the state stays as it is and resumes at New
	default:
		log.Infow("download failed", "cid", c, "err", err)
		t.ErrorCode = failureCode(err)
		m.setStateLocked(t, apitype.TransferFailed, err.Error())
		return
	}
	name, _, _ := strings.Cut(res.Manifest.Entries[0].Path, "/")
	t.Name, t.Path = name, filepath.Join(dir, name)
	t.BytesDone, t.BytesTotal = res.Manifest.TotalSize, res.Manifest.TotalSize
	m.setStateLocked(t, apitype.TransferDone, "")
	if !noSeed {
		path := t.Path
		m.wg.Go(func() {
			if _, err := m.Publish(m.ctx, path); err != nil && m.ctx.Err() == nil {
				log.Warnw("seed downloaded content", "path", path, "err", err)
			}
		})
	}
}

// failureCode classifies why a download failed (apitype.Transfer.ErrorCode).
func failureCode(err error) string {
	var noSpace *files.NoSpaceError
	switch {
	case errors.As(err, &noSpace):
		return apitype.TransferNoSpace
	case errors.Is(err, files.ErrRefused):
		return apitype.TransferNotAdmitted
	case errors.Is(err, errNoProviders), errors.Is(err, files.ErrNoProviders):
		return apitype.TransferNoProviders
	}
	return ""
}

// hintedFindTimeout bounds the provider lookup when the link names a
// provider that can be dialled.
const hintedFindTimeout = 5 * time.Second

// errNoProviders means the DHT named no provider for the content.
var errNoProviders = errors.New("no provider found")

// fetch finds providers for c and fetches it into dir.
func (m *Manager) fetch(ctx context.Context, t *transfer, c cid.Cid, dir, from string, fromOnly bool) (*files.Result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create download folder: %w", err)
	}
	// A round finds providers and fetches from them. When every provider
	// was lost (the supernode a provider was reached through died, say),
	// another round finds them again, through whatever path is left, as
	// long as this download verified something in the last
	// resumeWithin: noticing a dead supernode takes the node seconds,
	// and until then new streams may still try the dead connection.
	var lastProgress time.Time // none yet: a first round that verifies nothing ends it
	for {
		m.mu.Lock()
		before := t.BytesDone
		m.mu.Unlock()
		res, err := m.fetchRound(ctx, t, c, dir, from, fromOnly)
		if err == nil {
			return res, nil
		}
		m.mu.Lock()
		if t.BytesDone > before {
			lastProgress = time.Now()
		}
		m.mu.Unlock()
		if !errors.Is(err, files.ErrNoProviders) || lastProgress.IsZero() || time.Since(lastProgress) > resumeWithin || ctx.Err() != nil {
			return nil, err
		}
		log.Infow("download lost its providers after progress; looking for them again", "cid", c, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(m.cfg.RetryInterval):
		}
	}
}

// resumeWithin is how long after its last verified chunk a download that
// lost every provider keeps looking for them.
const resumeWithin = 30 * time.Second

// fetchRound finds providers for c and fetches from them once.
func (m *Manager) fetchRound(ctx context.Context, t *transfer, c cid.Cid, dir, from string, fromOnly bool) (*files.Result, error) {
	var providers []peer.ID
	for attempt := 0; ; attempt++ {
		if fromOnly {
			providers = m.hinted(from)
		} else {
			providers = m.findProviders(ctx, c, from)
		}
		if len(providers) > 0 {
			break
		}
		if attempt+1 >= m.cfg.FindRetries {
			return nil, fmt.Errorf("find providers of %s: %w (is the publisher online, and did you copy the whole link?)", c, errNoProviders)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(m.cfg.RetryInterval):
		}
	}
	m.mu.Lock()
	m.setStateLocked(t, apitype.TransferRunning, "")
	m.mu.Unlock()
	res, err := files.Fetch(ctx, m.cfg.Host, c, files.FetchConfig{
		Providers:    providers,
		DownloadDir:  dir,
		StallTimeout: m.cfg.StallTimeout,
		Certificate:  m.cfg.Certificate,
		Progress: func(p files.Progress) {
			m.mu.Lock()
			defer m.mu.Unlock()
			t.BytesDone, t.BytesTotal, t.Rate, t.Peers = p.Verified, p.Total, p.Rate, p.Peers
			if time.Since(t.lastEmit) >= time.Second/apitype.TransferEventsPerSecond {
				m.emitLocked(t)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", c, err)
	}
	return res, nil
}

// findProviders asks the DHT for providers of c, with from (the link's
// hint) first; it never returns this host.
// hinted is the link's provider alone, if it is a peer we could dial.
func (m *Manager) hinted(from string) []peer.ID {
	p, err := peer.Decode(from)
	if err != nil || p == m.cfg.Host.ID() {
		return nil
	}
	return []peer.ID{p}
}

func (m *Manager) findProviders(ctx context.Context, c cid.Cid, from string) []peer.ID {
	self := m.cfg.Host.ID()
	out := m.hinted(from)
	budget := m.cfg.FindTimeout
	// With a provider we can dial at hand, others found within a few
	// seconds join it; the download does not wait for the lookup to give
	// up on unresponsive DHT peers.
	if len(out) == 1 && len(m.cfg.Host.Peerstore().Addrs(out[0])) > 0 {
		budget = min(budget, hintedFindTimeout)
	}
	fctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	infos, err := m.cfg.Routing.FindProviders(fctx, c, 0)
	if err != nil && ctx.Err() == nil {
		log.Debugw("find providers", "cid", c, "err", err)
	}
	for _, ai := range infos {
		if ai.ID == self {
			continue
		}
		// The hint too: the DHT may know addresses for it that we do not.
		m.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		if !slices.Contains(out, ai.ID) {
			out = append(out, ai.ID)
		}
	}
	// The hint alone is worth a try only if we can dial it.
	if len(infos) == 0 && len(out) == 1 && len(m.cfg.Host.Peerstore().Addrs(out[0])) == 0 {
		return nil
	}
	return out
}
