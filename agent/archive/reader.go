package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// readResult is what a reader found for one regular file. A reader
// writes it before closing entry.ready (and, for a large file, finishes
// changed before closing chunks); the writer reads it after.
type readResult struct {
	// skip, when set, means the file is not stored and says why.
	skip string
	// info is the Stat of the open file: the header is built from it.
	info fs.FileInfo
	// size is the content size in the header.
	size int64
	// data is a small file's whole content (len == size).
	data []byte
	// chunks streams a large file's content; nil for small files.
	chunks chan *[]byte
	// changed, when set, says the file changed while it was read.
	changed string
}

// readFiles is one reader goroutine: it takes files in archive order and
// reads them ahead of the tar writer.
func (p *pipeline) readFiles() {
	for e := range p.work {
		p.readFile(e)
	}
}

func (p *pipeline) readFile(e *entry) {
	res := &e.res
	hooks := p.cfg.hooks
	if hooks != nil && hooks.beforeOpen != nil {
		hooks.beforeOpen(e.path)
	}
	f, err := openNoFollow(e.path)
	if err != nil {
		res.skip = skipReason(err)
		close(e.ready)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		res.skip = skipReason(err)
		close(e.ready)
		return
	}
	if !info.Mode().IsRegular() {
		// Replaced by something else between the walk and the open.
		res.skip = specialReason(info.Mode())
		close(e.ready)
		return
	}
	res.info = info
	if hooks != nil && hooks.afterOpen != nil {
		hooks.afterOpen(e.path)
	}
	if info.Size() <= smallFileMax {
		p.readSmall(e, f)
		close(e.ready)
		return
	}
	p.readLarge(e, f)
}

// readSmall reads the whole file before its header is written, so the
// header can carry exactly the bytes read: a file that shrank is stored as
// read (reported as changed); one that grew is cut at its size at open.
func (p *pipeline) readSmall(e *entry, f *os.File) {
	res := &e.res
	size := res.info.Size()
	buf := make([]byte, size+1) // one more byte detects growth
	n, err := io.ReadFull(f, buf)
	if hooks := p.cfg.hooks; hooks != nil && hooks.afterChunk != nil {
		hooks.afterChunk(e.path, int64(n))
	}
	switch {
	case err == nil: // read size+1 bytes: it grew
		res.changed = ReasonChanged
		n = int(size)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		if int64(n) != size {
			res.changed = ReasonChanged
		}
	default:
		// Nothing is written yet, so a failed read is a clean skip.
		res.skip = skipReason(err)
		return
	}
	if res.changed == "" && statChanged(f, res.info) {
		res.changed = ReasonChanged
	}
	res.data = buf[:n]
	res.size = int64(n)
}

// readLarge streams the file in chunks. Its header (size at open) is
// written before the content is read, so a file that shrinks is padded
// with zeros by the writer and one that grows is cut; both are reported.
func (p *pipeline) readLarge(e *entry, f *os.File) {
	res := &e.res
	size := res.info.Size()
	res.size = size
	chunks := make(chan *[]byte, chunksAhead)
	res.chunks = chunks
	close(e.ready)
	defer close(chunks)

	hooks := p.cfg.hooks
	var done int64
	for done < size {
		bp := p.chunks.get()
		buf := (*bp)[:min(int64(len(*bp)), size-done)]
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			*bp = buf[:n]
			select {
			case chunks <- bp:
			case <-p.ctx.Done():
				return
			}
			done += int64(n)
		} else {
			p.chunks.put(bp)
		}
		if hooks != nil && hooks.afterChunk != nil {
			hooks.afterChunk(e.path, done)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				res.changed = ReasonChanged
			} else {
				res.changed = fmt.Sprintf("read failed after %d bytes, rest stored as zeros: %v", done, err)
			}
			return
		}
	}
	var probe [1]byte
	if n, _ := f.Read(probe[:]); n > 0 || statChanged(f, res.info) {
		res.changed = ReasonChanged
	}
}

// statChanged compares the open file's size and mtime with those at open.
func statChanged(f *os.File, before fs.FileInfo) bool {
	after, err := f.Stat()
	if err != nil {
		return true
	}
	return after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime())
}
