package apitype

// The bodies of the HTTP API's POST requests. Unknown fields, trailing
// data and invalid UTF-8 are refused with 400.

// AccountRequest registers an account or enrols a device (POST
// /api/register, /api/enrol).
type AccountRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ContactRequest names the other user of a contact operation (POST
// /api/contacts/{request,accept,decline,remove,block,unblock}).
type ContactRequest struct {
	Username string `json:"username"`
}

// RevokeRequest names a device to revoke (POST /api/devices/revoke).
type RevokeRequest struct {
	Peer string `json:"peer"`
}

// PasswordChangeRequest changes the account's password (POST /api/password).
type PasswordChangeRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// DeleteAccountRequest deletes the account (POST /api/account/delete).
type DeleteAccountRequest struct {
	Password string `json:"password"`
}

// SendRequest sends a chat message (POST /api/send).
type SendRequest struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// ProbeRequest tests the connection to a contact (POST /api/probe).
type ProbeRequest struct {
	Username string `json:"username"`
	// Size is the number of bytes to stream; zero means DefaultProbeSize.
	Size int64 `json:"size,omitempty"`
}

// DefaultProbeSize is what a probe streams when no size is given.
const DefaultProbeSize = 16 << 20

// PublishRequest publishes a file or folder (POST /api/publish).
type PublishRequest struct {
	Path string `json:"path"`
}

// UnpublishRequest stops publishing content (POST /api/unpublish).
type UnpublishRequest struct {
	CID string `json:"cid"`
}

// GetRequest downloads the content a link names (POST /api/get).
type GetRequest struct {
	Link string `json:"link"`
	// Dir is the absolute folder to download into; "" means the
	// downloads folder in the data directory.
	Dir string `json:"dir,omitempty"`
	// NoSeed: do not publish the content once downloaded. By default a
	// finished download is published in place, so others fetch it from
	// this device too.
	NoSeed bool `json:"no_seed,omitempty"`
}

// TransferRequest names a transfer (POST
// /api/transfers/{pause,resume,cancel,open}).
type TransferRequest struct {
	ID string `json:"id"`
}

// ShareRequest offers a file or folder to a contact (POST /api/share).
type ShareRequest struct {
	To   string `json:"to"`
	Path string `json:"path"`
}

// OfferRequest names an offer (POST /api/offers/{decline,cancel}).
type OfferRequest struct {
	ID string `json:"id"`
}

// AcceptOfferRequest accepts an incoming offer (POST /api/offers/accept).
type AcceptOfferRequest struct {
	ID string `json:"id"`
	// Dir is the absolute folder to download into; "" means the
	// downloads folder in the data directory.
	Dir string `json:"dir,omitempty"`
}

// Uploaded answers POST /api/upload: where the daemon saved the bytes,
// for a following Share or Publish.
type Uploaded struct {
	// Path is the saved file's absolute path on the daemon's machine.
	Path string `json:"path"`
	// Size is the bytes saved.
	Size int64 `json:"size"`
}

// NetworkRequest chooses the network of a daemon started without one
// (POST /api/network): the rendezvous server's multiaddr ending in
// /p2p/<peer ID>, as parley daemon's --rendezvous takes it.
type NetworkRequest struct {
	Rendezvous string `json:"rendezvous"`
}

// OpenedFolder is the folder POST /api/transfers/open showed in the
// desktop's file manager.
type OpenedFolder struct {
	Path string `json:"path"`
}
