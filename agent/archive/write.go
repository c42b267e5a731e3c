package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"
)

// Sizes that bound Write's memory (see the package comment).
const (
	// queueLen is how many entries may wait between the walker and the
	// tar writer.
	queueLen = 1024
	// smallFileMax: files up to this size are read whole by a reader
	// ahead of the tar stream; larger ones are streamed in chunks.
	smallFileMax = 1 << 20
	// readAheadBudget caps the bytes of small files read ahead.
	readAheadBudget = 16 << 20
	// chunkSize and chunksAhead shape the stream of a large file: each
	// reader holds at most chunksAhead+1 chunks.
	chunkSize   = 256 << 10
	chunksAhead = 4
	// defaultReaders and maxReaders bound Options.Readers.
	defaultReaders = 4
	maxReaders     = 64
)

// Write walks the sources and streams tar -> compress -> (age) into w. It
// returns when the whole archive is written and flushed (compressor and
// age closed; w itself is not closed) or on the first fatal error: a
// missing source path (checked before anything is written; the error
// names it and wraps fs.ErrNotExist), invalid options, a failed write to
// w, or ctx ending. Unreadable, vanished and special files are skipped and
// listed in Stats, never fatal.
func Write(ctx context.Context, w io.Writer, sources []Source, opts Options) (Stats, error) {
	cfg, err := newWriteConfig(opts)
	if err != nil {
		return Stats{}, err
	}
	srcs, err := resolveSources(sources)
	if err != nil {
		return Stats{}, err
	}
	out, err := newOutput(w, cfg)
	if err != nil {
		return Stats{}, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipeline{
		ctx:    ctx,
		cfg:    cfg,
		queue:  make(chan *entry, queueLen),
		work:   make(chan *entry, queueLen),
		budget: newBudget(readAheadBudget),
	}
	p.chunks = newChunkPool(cfg.readers * (chunksAhead + 2))

	var wg sync.WaitGroup
	walkErr := make(chan error, 1)
	wg.Go(func() { walkErr <- p.walk(srcs) })
	for range cfg.readers {
		wg.Go(p.readFiles)
	}

	stats, err := p.writeEntries(out.tw)
	if err == nil {
		err = <-walkErr
	}
	if err != nil {
		cancel()
		wg.Wait()
		out.abort()
		stats.BytesWritten = out.sink.n.Load()
		return stats, fmt.Errorf("while writing the archive: %w", err)
	}
	wg.Wait()
	if err := out.close(); err != nil {
		stats.BytesWritten = out.sink.n.Load()
		return stats, fmt.Errorf("while finishing the archive: %w", err)
	}
	stats.BytesWritten = out.sink.n.Load()
	return stats, nil
}

// pipeline connects one walker, cfg.readers readers and the tar writer:
// the walker puts every entry on queue (in archive order) and regular
// files also on work; readers take work in the same order and fill each
// entry's result; the writer takes queue in order and waits for each
// file's result. Since readers take files in queue order, the file the
// writer waits for is always held by a reader, so the pipeline cannot
// deadlock however the reads interleave.
type pipeline struct {
	ctx    context.Context
	cfg    writeConfig
	queue  chan *entry
	work   chan *entry
	budget *budget
	chunks *chunkPool
}

func (p *pipeline) walk(srcs []resolvedSource) error {
	defer close(p.queue)
	defer close(p.work)
	w := &walker{ctx: p.ctx, emit: p.enqueue}
	for i := range srcs {
		if err := w.walkSource(&srcs[i]); err != nil {
			return err
		}
	}
	return nil
}

// enqueue runs in the walker. It reserves a small file's read-ahead budget
// here, in archive order, so a later file can never hold budget that an
// earlier one (which the writer waits for) needs.
func (p *pipeline) enqueue(e *entry) error {
	if e.kind == kindFile {
		e.ready = make(chan struct{})
		if size := e.info.Size(); size <= smallFileMax {
			e.reserved = size
			if err := p.budget.acquire(p.ctx, size); err != nil {
				return err
			}
		}
	}
	select {
	case p.queue <- e:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if e.kind == kindFile {
		select {
		case p.work <- e:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	return nil
}

// writeEntries is the tar writer: it consumes the queue in order until the
// walker closes it.
func (p *pipeline) writeEntries(tw *tar.Writer) (Stats, error) {
	var st Stats
	onFile := p.cfg.onFile
	for {
		if err := p.ctx.Err(); err != nil {
			return st, err
		}
		var e *entry
		var ok bool
		select {
		case e, ok = <-p.queue:
		case <-p.ctx.Done():
			return st, p.ctx.Err()
		}
		if !ok {
			return st, nil
		}
		switch e.kind {
		case kindSkip:
			st.skip(e.name, e.reason)
			onFile(FileEvent{Path: e.name, Skipped: true, Reason: e.reason})
		case kindDir:
			if err := writeHeader(tw, e.name+"/", e.info, ""); err != nil {
				return st, err
			}
		case kindSymlink:
			if err := writeHeader(tw, e.name, e.info, e.link); err != nil {
				return st, err
			}
			st.FilesProcessed++
			onFile(FileEvent{Path: e.name})
		case kindFile:
			if err := p.writeFile(tw, e, &st); err != nil {
				return st, err
			}
		}
	}
}

func (p *pipeline) writeFile(tw *tar.Writer, e *entry, st *Stats) error {
	select {
	case <-e.ready:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	defer p.budget.release(e.reserved)
	res := &e.res
	if res.skip != "" {
		st.skip(e.name, res.skip)
		p.cfg.onFile(FileEvent{Path: e.name, Skipped: true, Reason: res.skip})
		return nil
	}
	hdr, err := fileHeader(e.name, res.info, "")
	if err != nil {
		return err
	}
	hdr.Size = res.size
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("while writing the header of %q: %w", e.name, err)
	}
	if res.chunks == nil {
		if _, err := tw.Write(res.data); err != nil {
			return fmt.Errorf("while writing %q: %w", e.name, err)
		}
		st.BytesRead += int64(len(res.data))
	} else if err := p.copyChunks(tw, e, st); err != nil {
		return err
	}
	st.FilesProcessed++
	ev := FileEvent{Path: e.name, Size: res.size}
	if res.changed != "" {
		st.changed(e.name, res.changed)
		ev.Changed, ev.Reason = true, res.changed
	}
	p.cfg.onFile(ev)
	return nil
}

// copyChunks writes a large file's chunks, then zeros for whatever the
// reader could not supply: the header promised res.size bytes and a tar
// stream with fewer would be corrupt. The reader has set res.changed in
// that case.
func (p *pipeline) copyChunks(tw *tar.Writer, e *entry, st *Stats) error {
	res := &e.res
	var written int64
	for {
		var chunk *[]byte
		var ok bool
		select {
		case chunk, ok = <-res.chunks:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
		if !ok {
			break
		}
		_, err := tw.Write(*chunk)
		written += int64(len(*chunk))
		p.chunks.put(chunk)
		if err != nil {
			return fmt.Errorf("while writing %q: %w", e.name, err)
		}
	}
	st.BytesRead += written
	if written < res.size {
		if err := writeZeros(tw, res.size-written); err != nil {
			return fmt.Errorf("while padding %q: %w", e.name, err)
		}
	}
	return nil
}

func writeZeros(w io.Writer, n int64) error {
	zeros := make([]byte, min(n, 32<<10))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func writeHeader(tw *tar.Writer, name string, info fs.FileInfo, link string) error {
	hdr, err := fileHeader(name, info, link)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("while writing the header of %q: %w", name, err)
	}
	return nil
}

// fileHeader builds a PAX header: PAX keeps nanosecond mtimes and any
// name (long, non-UTF-8) in its records. Access and change times are left
// out: they change on every backup and nothing restores them.
func fileHeader(name string, info fs.FileInfo, link string) (*tar.Header, error) {
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return nil, fmt.Errorf("while building the header of %q: %w", name, err)
	}
	hdr.Name = name
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	return hdr, nil
}

// budget is a byte semaphore with a single acquirer (the walker) and a
// single releaser (the writer).
type budget struct {
	mu   sync.Mutex
	free int64
	max  int64
	wake chan struct{}
}

func newBudget(n int64) *budget {
	return &budget{free: n, max: n, wake: make(chan struct{}, 1)}
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	n = min(n, b.max)
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	n = min(n, b.max)
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// chunkPool recycles large-file chunks. Unlike sync.Pool it keeps what it
// is given (up to its size), so the memory of a long stream stays flat.
type chunkPool struct {
	free chan *[]byte
}

func newChunkPool(n int) *chunkPool {
	return &chunkPool{free: make(chan *[]byte, n)}
}

func (c *chunkPool) get() *[]byte {
	select {
	case b := <-c.free:
		return b
	default:
		b := make([]byte, chunkSize)
		return &b
	}
}

func (c *chunkPool) put(b *[]byte) {
	*b = (*b)[:cap(*b)]
	select {
	case c.free <- b:
	default:
	}
}
