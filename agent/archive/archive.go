package archive

import (
	"errors"

	"filippo.io/age"
)

// Sentinel errors; test with errors.Is. A missing source path wraps
// fs.ErrNotExist instead.
var (
	// ErrInvalidSource: a source without a usable path or name.
	ErrInvalidSource = errors.New("invalid source")
	// ErrInvalidPattern: an include or exclude glob that cannot be parsed.
	ErrInvalidPattern = errors.New("invalid glob pattern")
	// ErrInvalidOptions: an unknown compression, a level out of range or
	// an unparsable age recipient.
	ErrInvalidOptions = errors.New("invalid archive options")
	// ErrEncrypted: the archive is age-encrypted and no identity was given.
	ErrEncrypted = errors.New("archive is encrypted with age and no identity was given")
	// ErrUnsafeEntry: an archive entry that would write outside the target
	// directory (absolute path, "..", through a symlink, a hard link out).
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrUnsupportedEntry: an entry type Extract refuses (devices, fifos).
	ErrUnsupportedEntry = errors.New("unsupported archive entry")
	// ErrExists: the entry's destination exists and Overwrite is not set.
	ErrExists = errors.New("destination exists (set Overwrite to replace it)")
	// ErrPathNotFound: a sub-path asked for in ExtractOptions.Paths matched
	// no entry of the archive.
	ErrPathNotFound = errors.New("path not found in archive")
)

// Reasons reported in FileEvent.Reason and Skip.Reason for the common
// cases; other skips carry the error text.
const (
	ReasonChanged   = "changed while reading"
	ReasonVanished  = "vanished before it was read"
	ReasonDevice    = "device file"
	ReasonSocket    = "socket"
	ReasonFIFO      = "named pipe"
	ReasonIrregular = "irregular file"
)

// Compression names accepted in Options.Compression.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// Source is one tree (or single file) to back up.
type Source struct {
	// Name is the top-level folder of this source in the archive; a single
	// path element. Default: the base name of Path; duplicates get "-2",
	// "-3"... in source order.
	Name string
	// Path is absolute, or "~" / "~/..." for the user's home directory.
	Path string
	// Include and Exclude are globs relative to Path (see parsePatterns):
	// with Include set only matching files (and everything under matching
	// folders) are stored; Exclude wins and excluded folders are not
	// descended. Ignored when Path is a single file.
	Include, Exclude []string
}

// Options tune Write. The zero value writes a gzip (level 6),
// unencrypted archive with 4 readers.
type Options struct {
	// Compression is "gzip" (default, what `tar xzf` reads), "zstd" or "none".
	Compression string
	// Level is the compression level: 1-9 for gzip, 1-22 for zstd (mapped
	// by zstd.EncoderLevelFromZstd). 0 means the default: 6 for gzip, 3 for
	// zstd. Must be 0 with "none".
	Level int
	// Recipients are age public keys (age1...). Empty: not encrypted.
	Recipients []string
	// Readers is how many goroutines open and read upcoming files ahead of
	// the (ordered) tar stream. Default 4, at most 64.
	Readers int
	// OnFile is called for each stored non-directory entry and for each
	// skipped one, in archive order, from one goroutine at a time. It must
	// return quickly: it runs on the archive's critical path. Nil: no-op.
	OnFile func(FileEvent)

	// hooks are for tests only: they reach races (a file shrinking while
	// it is read) that a real filesystem does not produce on demand.
	hooks *testHooks
}

// testHooks are called, when set, at fixed points of reading a file.
type testHooks struct {
	// beforeOpen runs in a reader goroutine before a file is opened.
	beforeOpen func(path string)
	// afterOpen runs after a file is opened and its size taken.
	afterOpen func(path string)
	// afterChunk runs after each chunk of a file is read, with the number
	// of bytes read so far.
	afterChunk func(path string, done int64)
}

// FileEvent reports one entry, to drive progress displays.
type FileEvent struct {
	// Path is the entry's name in the archive ("<source>/<relative path>").
	Path string
	// Size is the number of content bytes stored (or extracted).
	Size int64
	// Skipped is true when the entry was not stored; Reason says why.
	Skipped bool
	// Changed is true when the file was stored but changed while it was
	// read (see Stats.FilesChanged); Reason says how.
	Changed bool
	// Reason explains Skipped or Changed; empty otherwise.
	Reason string
}

// maxListed bounds Stats.Skipped and Stats.Changed; the counts are exact.
const maxListed = 50

// Stats summarise a Write or an Extract.
type Stats struct {
	// FilesProcessed counts stored (or extracted) non-directory entries:
	// regular files and symlinks.
	FilesProcessed int64
	// FilesSkipped counts entries not stored: unreadable, vanished,
	// devices, sockets, named pipes, unlistable folders.
	FilesSkipped int64
	// FilesChanged counts files stored although they changed while being
	// read: their content is exactly the size recorded in their header
	// (cut when the file grew, zero-filled when it shrank or a read failed
	// mid-file), so the archive stays valid but that file may not be a
	// consistent copy. They are included in FilesProcessed.
	FilesChanged int64
	// BytesRead: Write, file content bytes read; Extract, archive bytes
	// read from the reader.
	BytesRead int64
	// BytesWritten: Write, archive bytes written to the writer (after
	// compression and encryption); Extract, file content bytes written.
	BytesWritten int64
	// Skipped lists the first 50 skipped entries.
	Skipped []Skip
	// Changed lists the first 50 changed files.
	Changed []Skip
}

// Skip names an entry and why it was skipped or changed.
type Skip struct {
	Path, Reason string
}

func (s *Stats) skip(path, reason string) {
	s.FilesSkipped++
	if len(s.Skipped) < maxListed {
		s.Skipped = append(s.Skipped, Skip{Path: path, Reason: reason})
	}
}

func (s *Stats) changed(path, reason string) {
	s.FilesChanged++
	if len(s.Changed) < maxListed {
		s.Changed = append(s.Changed, Skip{Path: path, Reason: reason})
	}
}

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Identities decrypt age-encrypted archives.
	Identities []age.Identity
	// Paths, when set, restricts extraction to these archive sub-paths
	// ("docs" or "docs/report.pdf", forward slashes) and what is below
	// them. Each must match at least one entry.
	Paths []string
	// Overwrite replaces existing files and symlinks at destination
	// paths; without it an existing destination is an error. Existing
	// directories are merged into either way (a directory is never
	// replaced by a file), and their modes and mtimes are only set when
	// Overwrite is true or Extract created them.
	Overwrite bool
	// RefuseEscapingSymlinks makes a symlink whose target is absolute or
	// leads outside the target directory an error. By default such links
	// are restored verbatim (a home folder legitimately holds links to
	// /usr/...): creating a link writes nothing outside, and Extract never
	// writes through a symlink whatever its target.
	RefuseEscapingSymlinks bool
	// OnFile is called for each extracted non-directory entry, from one
	// goroutine at a time. Nil: no-op.
	OnFile func(FileEvent)
}
