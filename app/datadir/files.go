package datadir

// The files the client keeps in its data directory.
const (
	// IdentityFile is the device's key pair.
	IdentityFile = "identity.key"
	// HistoryFile is the chat history and outbox, a SQLite database with
	// its -wal and -shm files beside it.
	HistoryFile = "history.db"
	// SessionFile is what the last session said: the account, the
	// membership certificate and the contacts with their devices.
	SessionFile = "session.json"
	// SupernodesFile is the last supernode list the directory handed out.
	SupernodesFile = "supernodes.json"
	// DHTSeqFile is the sequence number of the device's DHT records.
	DHTSeqFile = "dht.seq"
	// APIInfoFile tells the CLI where the running daemon's local API
	// listens and which token it takes.
	APIInfoFile = "api.json"
	// LockFile is locked by the daemon that uses the directory and holds
	// its PID.
	LockFile = "daemon.lock"
	// SettingsFile is the daemon's saved settings.
	SettingsFile = "settings.json"
	// FilesIndexFile is the index of shared and published files, a
	// SQLite database with its -wal and -shm files beside it.
	FilesIndexFile = "files.db"
	// TransfersFile is the published content and the downloads, so that
	// unfinished downloads go on after a restart.
	TransfersFile = "transfers.json"
	// OffersFile is the offers made and received (package app/offers).
	OffersFile = "offers.json"
	// MailboxKeyFile is the device's X25519 mailbox key (0600; see
	// package internal/seal): mail sealed to this device opens with it.
	MailboxKeyFile = "mailbox-x25519.key"
	// DownloadsDir is where downloads go when no folder is named.
	DownloadsDir = "downloads"
)
