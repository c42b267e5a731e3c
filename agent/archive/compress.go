package archive

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// writeConfig is Options checked and defaulted.
type writeConfig struct {
	compression string
	level       int
	recipients  []age.Recipient
	readers     int
	onFile      func(FileEvent)
	hooks       *testHooks
}

func newWriteConfig(o Options) (writeConfig, error) {
	c := writeConfig{compression: o.Compression, level: o.Level, readers: o.Readers, onFile: o.OnFile, hooks: o.hooks}
	if c.compression == "" {
		c.compression = CompressionGzip
	}
	switch c.compression {
	case CompressionGzip:
		if c.level == 0 {
			c.level = 6
		}
		if c.level < gzip.BestSpeed || c.level > gzip.BestCompression {
			return c, fmt.Errorf("%w: gzip level %d is not between 1 and 9", ErrInvalidOptions, o.Level)
		}
	case CompressionZstd:
		if c.level == 0 {
			c.level = 3
		}
		if c.level < 1 || c.level > 22 {
			return c, fmt.Errorf("%w: zstd level %d is not between 1 and 22", ErrInvalidOptions, o.Level)
		}
	case CompressionNone:
		if c.level != 0 {
			return c, fmt.Errorf("%w: a level (%d) is set but compression is none", ErrInvalidOptions, o.Level)
		}
	default:
		return c, fmt.Errorf("%w: unknown compression %q (want gzip, zstd or none)", ErrInvalidOptions, o.Compression)
	}
	for _, r := range o.Recipients {
		// ParseRecipients takes the CLI's recipients-file syntax; one key
		// per call keeps the error pointing at the bad one.
		rs, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil || len(rs) != 1 {
			return c, fmt.Errorf("%w: age recipient %q is not a public key (age1...): %w", ErrInvalidOptions, r, err)
		}
		c.recipients = append(c.recipients, rs[0])
	}
	if c.readers <= 0 {
		c.readers = defaultReaders
	}
	c.readers = min(c.readers, maxReaders)
	if c.onFile == nil {
		c.onFile = func(FileEvent) {}
	}
	return c, nil
}

// output is the writer stack: tar -> buffer -> compressor -> age -> sink.
type output struct {
	tw   *tar.Writer
	buf  *bufio.Writer
	comp io.WriteCloser // nil for none
	enc  io.WriteCloser // nil when not encrypted
	sink *sink
}

// outputBuffer batches tar's 512-byte header writes before they reach the
// compressor (or, uncompressed, the caller's writer).
const outputBuffer = 256 << 10

func newOutput(w io.Writer, c writeConfig) (*output, error) {
	o := &output{sink: &sink{w: w}}
	var next io.Writer = o.sink
	if len(c.recipients) > 0 {
		enc, err := age.Encrypt(next, c.recipients...)
		if err != nil {
			return nil, fmt.Errorf("while starting age encryption: %w", err)
		}
		o.enc = enc
		next = enc
	}
	switch c.compression {
	case CompressionGzip:
		gz, err := gzip.NewWriterLevel(next, c.level)
		if err != nil {
			return nil, fmt.Errorf("while starting gzip: %w", err)
		}
		o.comp = gz
		next = gz
	case CompressionZstd:
		zw, err := zstd.NewWriter(next,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level)),
			// Laptops: a few cores are enough and each costs a window.
			zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), 4)))
		if err != nil {
			return nil, fmt.Errorf("while starting zstd: %w", err)
		}
		o.comp = zw
		next = zw
	}
	o.buf = bufio.NewWriterSize(next, outputBuffer)
	o.tw = tar.NewWriter(o.buf)
	return o, nil
}

// close finishes every layer in order: tar trailer, buffer, compressor
// footer, age's last chunk.
func (o *output) close() error {
	if err := o.tw.Close(); err != nil {
		return fmt.Errorf("while closing tar: %w", err)
	}
	if err := o.buf.Flush(); err != nil {
		return fmt.Errorf("while flushing: %w", err)
	}
	if o.comp != nil {
		if err := o.comp.Close(); err != nil {
			return fmt.Errorf("while closing the compressor: %w", err)
		}
	}
	if o.enc != nil {
		if err := o.enc.Close(); err != nil {
			return fmt.Errorf("while closing age encryption: %w", err)
		}
	}
	return nil
}

// errAborted is what the sink returns once the archive is abandoned.
var errAborted = errors.New("archive aborted")

// abort releases the compressor's resources (zstd's goroutines) without
// sending anything more to the caller's writer.
func (o *output) abort() {
	o.sink.aborted.Store(true)
	if o.comp != nil {
		_ = o.comp.Close()
	}
}

// sink counts the bytes that reach the caller's writer and stops passing
// them once the archive is aborted. Atomics: zstd writes from its own
// goroutine.
type sink struct {
	w       io.Writer
	n       atomic.Int64
	aborted atomic.Bool
}

func (s *sink) Write(p []byte) (int, error) {
	if s.aborted.Load() {
		return 0, errAborted
	}
	n, err := s.w.Write(p)
	s.n.Add(int64(n))
	return n, err
}
