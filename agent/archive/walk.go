package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
	kindSkip
)

// entry is one item of the archive, in walk order.
type entry struct {
	kind   entryKind
	name   string      // archive name, no trailing slash
	path   string      // filesystem path
	info   fs.FileInfo // Lstat from the walk (Stat for a source root)
	link   string      // symlink target
	reason string      // why a kindSkip entry is skipped

	// Regular files only: the read-ahead budget held until the entry is
	// written, and the reader's result, valid once ready is closed.
	reserved int64
	ready    chan struct{}
	res      readResult
}

// walkReadDirBatch is how many directory entries are listed at a time:
// a folder with a million files never sits in memory whole.
const walkReadDirBatch = 256

// walker lists sources depth-first and hands entries to emit in archive
// order. It keeps, per folder on the current path, only the names of the
// subfolders still to visit.
type walker struct {
	ctx  context.Context
	emit func(*entry) error
}

// pendingDir is a folder whose header waits until something below it is
// stored: with include patterns, folders that hold nothing included are
// left out of the archive.
type pendingDir struct {
	e       *entry
	emitted bool
}

func (w *walker) walkSource(src *resolvedSource) error {
	if !src.info.IsDir() {
		return w.leaf(src, src.path, src.name, src.info, nil)
	}
	root := &entry{kind: kindDir, name: src.name, path: src.path, info: src.info}
	if err := w.emit(root); err != nil {
		return err
	}
	return w.walkDir(src, src.path, nil, len(src.filter.include) == 0, nil)
}

func archiveName(src *resolvedSource, rel []string) string {
	if len(rel) == 0 {
		return src.name
	}
	return src.name + "/" + strings.Join(rel, "/")
}

// walkDir stores the folder's files in listing order, then visits its
// subfolders sorted by name. included says whether an ancestor matched an
// include pattern (or there are none).
func (w *walker) walkDir(src *resolvedSource, dirPath string, rel []string, included bool, pending []*pendingDir) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(dirPath)
	if err != nil {
		return w.skip(archiveName(src, rel), dirPath, skipReason(err))
	}
	var subdirs []string
	for {
		des, err := f.ReadDir(walkReadDirBatch)
		for _, de := range des {
			name := de.Name()
			childRel := append(slices.Clip(rel), name)
			if src.filter.excluded(childRel) {
				continue
			}
			if de.IsDir() {
				subdirs = append(subdirs, name)
				continue
			}
			if !included && !src.filter.included(childRel) {
				continue
			}
			childPath := filepath.Join(dirPath, name)
			info, err := de.Info()
			if err != nil {
				if err := w.skip(archiveName(src, childRel), childPath, skipReason(err)); err != nil {
					_ = f.Close()
					return err
				}
				continue
			}
			if err := w.leaf(src, childPath, archiveName(src, childRel), info, pending); err != nil {
				_ = f.Close()
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = f.Close()
			return w.skip(archiveName(src, rel), dirPath, "while listing the folder: "+err.Error())
		}
	}
	_ = f.Close()

	slices.Sort(subdirs)
	for _, name := range subdirs {
		childRel := append(slices.Clip(rel), name)
		childPath := filepath.Join(dirPath, name)
		dirInc := included || src.filter.included(childRel)
		if !dirInc && !src.filter.worthDescending(childRel) {
			continue
		}
		info, err := os.Lstat(childPath)
		if err != nil {
			if err := w.skip(archiveName(src, childRel), childPath, skipReason(err)); err != nil {
				return err
			}
			continue
		}
		if !info.IsDir() {
			// Replaced by something else since it was listed.
			if dirInc {
				if err := w.leaf(src, childPath, archiveName(src, childRel), info, pending); err != nil {
					return err
				}
			}
			continue
		}
		e := &entry{kind: kindDir, name: archiveName(src, childRel), path: childPath, info: info}
		var childPending []*pendingDir
		if dirInc {
			if err := w.flush(pending); err != nil {
				return err
			}
			if err := w.emit(e); err != nil {
				return err
			}
		} else {
			childPending = append(slices.Clip(pending), &pendingDir{e: e})
		}
		if err := w.walkDir(src, childPath, childRel, dirInc, childPending); err != nil {
			return err
		}
	}
	return nil
}

// leaf emits a non-directory: a regular file, a symlink (never followed)
// or a skip for anything else.
func (w *walker) leaf(src *resolvedSource, p, name string, info fs.FileInfo, pending []*pendingDir) error {
	mode := info.Mode()
	switch {
	case mode.IsRegular():
		if err := w.flush(pending); err != nil {
			return err
		}
		return w.emit(&entry{kind: kindFile, name: name, path: p, info: info})
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return w.skip(name, p, skipReason(err))
		}
		if err := w.flush(pending); err != nil {
			return err
		}
		return w.emit(&entry{kind: kindSymlink, name: name, path: p, info: info, link: target})
	default:
		return w.skip(name, p, specialReason(mode))
	}
}

func (w *walker) flush(pending []*pendingDir) error {
	for _, d := range pending {
		if d.emitted {
			continue
		}
		if err := w.emit(d.e); err != nil {
			return err
		}
		d.emitted = true
	}
	return nil
}

func (w *walker) skip(name, p, reason string) error {
	return w.emit(&entry{kind: kindSkip, name: name, path: p, reason: reason})
}

// skipReason turns a filesystem error into the reason a user reads.
func skipReason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return ReasonVanished
	}
	return fmt.Sprintf("unreadable: %v", err)
}

func specialReason(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeDevice != 0, mode&fs.ModeCharDevice != 0:
		return ReasonDevice
	case mode&fs.ModeSocket != 0:
		return ReasonSocket
	case mode&fs.ModeNamedPipe != 0:
		return ReasonFIFO
	default:
		return ReasonIrregular
	}
}
