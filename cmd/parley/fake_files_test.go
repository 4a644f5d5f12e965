package main

import (
	"context"

	"github.com/parleynet/parley/app/apitype"
)

// The publishing and transfer calls of the fake: the CLI has no commands
// for them yet, so they only count the call.

func (f *fakeClient) Publish(ctx context.Context, path string) (apitype.Published, error) {
	f.called("Publish")
	return apitype.Published{}, nil
}

func (f *fakeClient) Unpublish(ctx context.Context, cid string) error {
	f.called("Unpublish")
	return nil
}

func (f *fakeClient) Published(ctx context.Context) ([]apitype.Published, error) {
	f.called("Published")
	return nil, nil
}

func (f *fakeClient) Get(ctx context.Context, req apitype.GetRequest) (apitype.Transfer, error) {
	f.called("Get")
	return apitype.Transfer{}, nil
}

func (f *fakeClient) Transfers(ctx context.Context) ([]apitype.Transfer, error) {
	f.called("Transfers")
	return nil, nil
}

func (f *fakeClient) PauseTransfer(ctx context.Context, id string) error {
	f.called("PauseTransfer")
	return nil
}

func (f *fakeClient) ResumeTransfer(ctx context.Context, id string) error {
	f.called("ResumeTransfer")
	return nil
}

func (f *fakeClient) CancelTransfer(ctx context.Context, id string) error {
	f.called("CancelTransfer")
	return nil
}
