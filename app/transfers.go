package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/app/xfer"
)

// startTransfers starts the transfer manager: the file server, the
// published content (announced again) and the downloads left unfinished.
func (e *Engine) startTransfers() (err error) {
	e.xfer, err = xfer.New(xfer.Config{
		Host:        e.node,
		Routing:     e.dht,
		IndexFile:   filepath.Join(e.cfg.DataDir, datadir.FilesIndexFile),
		StateFile:   filepath.Join(e.cfg.DataDir, datadir.TransfersFile),
		DownloadDir: filepath.Join(e.cfg.DataDir, datadir.DownloadsDir),
		Certify:     e.certifyMember,
		Certificate: e.Certificate,
		UploadLimit: e.cfg.UploadLimit,
		SharedSent:  e.sharedSent,
		Emit: func(t apitype.Transfer) {
			e.emit(apitype.Event{Kind: apitype.EventTransfer, Transfer: &t})
		},
	})
	return err
}

// certifyMember checks a membership certificate presented on a file
// stream by peer p: it must be signed by the rendezvous server's key,
// valid now and issued to p.
func (e *Engine) certifyMember(p peer.ID, raw []byte) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := e.certVerifier(ctx)
	if err != nil {
		log.Warnw("cannot check a certificate: no issuer key", "err", err)
		return "", time.Time{}, errors.New("this device cannot check certificates now; try again later")
	}
	c, err := v.VerifyFor(raw, p, time.Now())
	if err != nil {
		return "", time.Time{}, err
	}
	return c.Username, c.Expires, nil
}

// Publish shares the file or folder at path in place and announces it in
// the DHT (see apitype.Client.Publish).
func (e *Engine) Publish(ctx context.Context, path string) (apitype.Published, error) {
	if !filepath.IsAbs(path) {
		return apitype.Published{}, fmt.Errorf("%w: publish needs an absolute path, not %q", ErrInvalidArgument, path)
	}
	return e.xfer.Publish(ctx, path)
}

// Unpublish stops announcing and serving content.
func (e *Engine) Unpublish(ctx context.Context, cid string) error {
	return e.xfer.Unpublish(ctx, cid)
}

// Published lists the published content.
func (e *Engine) Published(context.Context) ([]apitype.Published, error) {
	return e.xfer.Published(), nil
}

// Get starts downloading the content a link names.
func (e *Engine) Get(_ context.Context, req apitype.GetRequest) (apitype.Transfer, error) {
	l, err := xfer.ParseLink(req.Link)
	if err != nil {
		return apitype.Transfer{}, err
	}
	if req.Dir != "" && !filepath.IsAbs(req.Dir) {
		return apitype.Transfer{}, fmt.Errorf("%w: the download folder must be an absolute path, not %q", ErrInvalidArgument, req.Dir)
	}
	return e.xfer.Get(l, req.Dir, req.NoSeed)
}

// Transfers lists the downloads.
func (e *Engine) Transfers(context.Context) ([]apitype.Transfer, error) {
	return e.xfer.Transfers(), nil
}

// PauseTransfer stops a download, keeping its verified chunks.
func (e *Engine) PauseTransfer(_ context.Context, id string) error { return e.xfer.Pause(id) }

// ResumeTransfer goes on with a paused or failed download.
func (e *Engine) ResumeTransfer(_ context.Context, id string) error { return e.xfer.Resume(id) }

// CancelTransfer stops a download and deletes its partial data.
func (e *Engine) CancelTransfer(_ context.Context, id string) error { return e.xfer.Cancel(id) }
