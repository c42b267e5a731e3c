// Package archive is the agent's streaming archive pipeline and its safe
// restore: Write walks source trees and streams tar -> compress (gzip, zstd
// or none) -> optional age encryption into an io.Writer, with no temporary
// copy of the archive and memory bounded whatever the tree size; Extract
// reads such an archive back (compression detected from magic bytes) and
// extracts it under one directory without ever writing outside it.
//
// It runs on laptops and must stay small: it must not import Kubernetes,
// controller-runtime, pgx or any other backapp package. Its dependencies
// are the standard library, github.com/klauspost/compress (gzip and zstd)
// and filippo.io/age; the ** glob matcher is its own (glob.go).
//
// # Archive layout
//
// Each source's tree is stored under "<source name>/": the source root is
// the entry "<name>/" (or the entry "<name>" when the source is a single
// file) and every file below it is "<name>/<path relative to the root>",
// with forward slashes. Entries are PAX tar headers: nanosecond mtimes,
// modes, uid/gid/uname/gname, long and non-UTF-8 names (raw bytes in the
// PAX path record). Symlinks are stored as symlinks and never followed,
// except a source root that is itself a symlink, which is followed (the
// user named it as the thing to back up). Hard links are stored as
// independent regular files. Devices, sockets and named pipes are skipped
// with a reason, like unreadable and vanished files.
//
// # Memory
//
// Write keeps, per directory on the path being walked, the names of its
// subdirectories not yet visited (never the list of files), a bounded
// queue of upcoming entries (at most queueLen), small files read ahead by
// the parallel readers within a byte budget (readAheadBudget, each file at
// most smallFileMax), and for large files a few chunks per reader. Extract
// keeps the list of directories it created (their modes and mtimes are set
// at the end, once nothing more is written inside them).
package archive
