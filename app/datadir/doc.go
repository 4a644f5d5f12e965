// Package datadir is the Parley client's data directory: the names of the
// files kept there, the lock that lets one daemon at a time use it, the
// modes that keep it private, and the settings the daemon remembers.
//
// # Files
//
// Every file the client keeps in the directory has its name here
// (IdentityFile, HistoryFile, SessionFile, SupernodesFile, DHTSeqFile,
// APIInfoFile, LockFile, SettingsFile, FilesIndexFile, TransfersFile,
// OffersFile, MailboxKeyFile, and
// the DownloadsDir folder); the packages that read and write
// them take the name from here.
//
// # One daemon per directory
//
// Open takes an exclusive, non-blocking flock(2) on LockFile before
// anything else in the directory is opened, and writes the daemon's PID
// into it. A second Open, from any process, fails at once with an
// *InUseError naming that PID. The kernel drops the lock when its holder
// exits, however it exits (a SIGKILL too), so a stale lock needs no
// clean-up: the next Open simply takes it. The lock file is never
// removed: removing it would let two daemons lock two different files of
// the same name.
//
// # Private modes
//
// Open makes the directory 0700, even if it already existed with looser
// modes, and every regular file directly in it 0600 (symbolic links and
// subdirectories are left alone). With the directory 0700 no other local
// user can reach a file inside, whatever the file's mode; the file modes
// are a second fence. Where Open cannot fix a mode (the directory or a file
// belongs to another user, or chmod fails) it refuses, and its error gives
// the command that fixes it.
//
// Open does not change the process's umask: a process-wide umask would
// also apply to files the client writes outside the data directory (a
// downloaded file, say). Instead each file in the directory is created
// with an explicit 0600 by its writer: internal/atomicfile and the
// identity key are chmodded to 0600 before they are renamed into place,
// and chat.OpenHistory and xfer.New create history.db and files.db as 0600
// before SQLite opens them.
// SQLite (modernc.org/sqlite, a translation of SQLite's C code) creates
// its -wal, -shm and -journal files with the database file's mode, and
// chmods an empty one that has another mode, so they are 0600 too,
// whatever the umask. Files a previous run left with looser modes are
// fixed by the next Open.
//
// # Settings
//
// The daemon remembers its network in SettingsFile (JSON, 0600, written
// atomically): the flags given on the command line override the saved
// values and are saved; the flags not given take the saved values (Merge).
// So `parley --data DIR daemon` restarts a daemon with the network it had.
package datadir
