package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/apitype"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
)

// userError is an error with a message written for the user; errors.Is
// and errors.As still see the cause.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// Devices lists the account's devices, oldest first, revoked ones
// included.
func (e *Engine) Devices(ctx context.Context) ([]apitype.Device, error) {
	devs, err := e.rdv.Devices(ctx)
	if err != nil {
		return nil, serverError(err)
	}
	out := make([]apitype.Device, 0, len(devs))
	for _, d := range devs {
		out = append(out, apitype.Device{
			Peer:     d.Peer.String(),
			Enrolled: d.Enrolled,
			Revoked:  d.Revoked,
			Online:   d.Online,
			This:     d.Peer == e.node.ID(),
		})
	}
	return out, nil
}

// RevokeDevice revokes one of the account's devices (a lost laptop): its
// session ends and its key can never log in again. Revoking this device
// logs it out for good.
func (e *Engine) RevokeDevice(ctx context.Context, device string) error {
	id, err := peer.Decode(device)
	if err != nil {
		return &userError{
			msg: fmt.Sprintf("%q is not a device ID; copy one from the device list (parley devices)", device),
			err: rendezvous.ErrBadRequest,
		}
	}
	if err := e.rdv.RevokeDevice(ctx, id); err != nil {
		if errors.Is(err, rendezvous.ErrNotFound) {
			return &userError{msg: fmt.Sprintf("%s is not one of your devices (see parley devices)", id), err: err}
		}
		return serverError(err)
	}
	log.Infow("device revoked", "device", id)
	if id == e.node.ID() {
		return e.sess.awaitStopped(ctx, e.sess.end(rendezvous.ErrDeviceRevoked))
	}
	return nil
}

// ChangePassword replaces the account's password. Enrolled devices stay
// enrolled; the new password is what enrolling another device needs.
func (e *Engine) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	if err := rendezvous.CheckPassword(newPassword); err != nil {
		return &userError{msg: "new password refused: " + err.Error(), err: err}
	}
	if oldPassword == newPassword {
		return &userError{msg: "the new password is the same as the current one", err: rendezvous.ErrBadRequest}
	}
	if err := e.rdv.ChangePassword(ctx, oldPassword, newPassword); err != nil {
		if errors.Is(err, rendezvous.ErrBadCredentials) {
			return &userError{msg: "wrong password: the current password is not right; nothing was changed", err: err}
		}
		return serverError(err)
	}
	log.Infow("password changed")
	return nil
}

// DeleteAccount deletes the account with all its devices and contacts
// (who see it disappear). It needs the password. This device is logged
// out; its local chat history stays in the data directory.
func (e *Engine) DeleteAccount(ctx context.Context, password string) error {
	if err := e.rdv.DeleteAccount(ctx, password); err != nil {
		if errors.Is(err, rendezvous.ErrBadCredentials) {
			return &userError{msg: "wrong password: the account was not deleted", err: err}
		}
		return serverError(err)
	}
	log.Infow("account deleted")
	return e.sess.awaitStopped(ctx, e.sess.end(rendezvous.ErrAccountDeleted))
}
