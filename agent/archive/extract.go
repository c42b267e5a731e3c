package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ageMagic starts every binary age file.
const ageMagic = "age-encryption.org/v1\n"

// Extract reads an archive (gzip, zstd or plain tar, detected from magic
// bytes; age-encrypted ones need opts.Identities) and extracts it under
// dir, creating dir if needed.
//
// Nothing is ever written outside dir: every operation goes through an
// os.Root, entries with absolute paths or ".." are refused, no entry is
// ever written through a symlink (an entry below a symlink is refused),
// hard links must point at an entry already extracted, and device and
// named pipe entries are refused. Each of these fails the whole Extract
// with an error naming the entry. Modes (without setuid/setgid: the
// restoring user owns the files), mtimes, symlinks and empty folders are
// restored; ownership and symlink mtimes are not.
//
// The stream is read to its end, so a truncated or corrupt archive (bad
// gzip/zstd checksum, bad age tag) is an error even when the tar part
// looks complete.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (st Stats, err error) {
	wanted, err := cleanPaths(opts.Paths)
	if err != nil {
		return st, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("while creating the target folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, fmt.Errorf("while opening the target folder: %w", err)
	}
	defer root.Close()

	cr := &countingReader{r: r}
	defer func() { st.BytesRead = cr.n }()
	stream, closeStream, err := openArchive(cr, opts.Identities)
	if err != nil {
		return st, err
	}
	defer closeStream()

	x := &extractor{
		ctx:      ctx,
		root:     root,
		opts:     opts,
		st:       &st,
		wanted:   wanted,
		matched:  make([]bool, len(wanted)),
		implicit: map[string]bool{},
		buf:      make([]byte, extractBlock),
		zeros:    make([]byte, extractBlock),
	}
	if x.opts.OnFile == nil {
		x.opts.OnFile = func(FileEvent) {}
	}
	tr := tar.NewReader(stream)
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("while reading the archive: %w", err)
		}
		if err := x.extract(hdr, tr); err != nil {
			return st, fmt.Errorf("while extracting %q: %w", hdr.Name, err)
		}
	}
	// Read past the tar trailer to the end of the stream: that is where
	// gzip's CRC, zstd's checksum and age's last authenticated chunk are.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return st, fmt.Errorf("while reading the end of the archive: %w", err)
	}
	if err := x.finishDirs(); err != nil {
		return st, err
	}
	for i, ok := range x.matched {
		if !ok {
			return st, fmt.Errorf("%w: %q", ErrPathNotFound, wanted[i])
		}
	}
	return st, nil
}

// openArchive peels encryption then compression off the stream.
func openArchive(r io.Reader, ids []age.Identity) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(len(ageMagic)); string(head) == ageMagic {
		if len(ids) == 0 {
			return nil, nil, ErrEncrypted
		}
		dr, err := age.Decrypt(br, ids...)
		if err != nil {
			return nil, nil, fmt.Errorf("while decrypting the archive: %w", err)
		}
		br = bufio.NewReaderSize(dr, 64<<10)
	}
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("while opening the gzip stream: %w", err)
		}
		return gz, func() { _ = gz.Close() }, nil
	case bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("while opening the zstd stream: %w", err)
		}
		return zr, zr.Close, nil
	default:
		return br, func() {}, nil
	}
}

// extractBlock is the copy buffer, and the granularity at which runs of
// zeros become holes: a sparse file stored as zeros comes back sparse.
const extractBlock = 64 << 10

type extractor struct {
	ctx     context.Context
	root    *os.Root
	opts    ExtractOptions
	st      *Stats
	wanted  []string
	matched []bool
	// implicit holds folders created as parents of an entry, so a later
	// entry for the folder itself may set its mode and mtime.
	implicit map[string]bool
	// dirs get their modes and mtimes last: writing inside a folder
	// changes its mtime, and a read-only folder would refuse the writes.
	dirs []dirMeta
	// parentOK is the last parent folder checked to be a real folder chain.
	parentOK string
	buf      []byte
	zeros    []byte
}

type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

func (x *extractor) extract(hdr *tar.Header, tr io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("%w: devices and named pipes are not restored", ErrUnsupportedEntry)
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" || !x.selected(name) {
		// The target folder itself, or not asked for.
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse: //nolint:staticcheck // old archives still use TypeRegA
		return x.file(name, hdr, tr)
	case tar.TypeSymlink:
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return x.hardlink(name, hdr)
	default:
		return fmt.Errorf("%w: type %q", ErrUnsupportedEntry, hdr.Typeflag)
	}
}

func (x *extractor) selected(name string) bool {
	if len(x.wanted) == 0 {
		return true
	}
	for i, w := range x.wanted {
		if name == w || strings.HasPrefix(name, w+"/") {
			x.matched[i] = true
			return true
		}
	}
	return false
}

func (x *extractor) dir(name string, hdr *tar.Header) error {
	if err := x.ensureParent(name); err != nil {
		return err
	}
	fp := filepath.FromSlash(name)
	created := false
	fi, err := x.root.Lstat(fp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		created = true
	case err != nil:
		return err
	case fi.IsDir():
		created = x.implicit[name]
	case !x.opts.Overwrite:
		return fmt.Errorf("%w: %q is not a folder", ErrExists, name)
	default:
		if err := x.root.Remove(fp); err != nil {
			return fmt.Errorf("while replacing %q: %w", name, err)
		}
		created = true
	}
	if created && !x.implicit[name] {
		if err := x.root.Mkdir(fp, 0o700); err != nil {
			return fmt.Errorf("while creating the folder: %w", err)
		}
	}
	if created || x.opts.Overwrite {
		x.dirs = append(x.dirs, dirMeta{name: name, mode: restoredMode(hdr), mtime: hdr.ModTime})
	}
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, tr io.Reader) error {
	var f *os.File
	err := x.place(name, func(fp string) error {
		// O_EXCL: never opens an existing file or follows a symlink
		// planted at the destination.
		var err error
		f, err = x.root.OpenFile(fp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("while creating the file: %w", err)
	}
	fp := filepath.FromSlash(name)
	n, err := x.copyFile(f, tr, hdr.Size)
	if err == nil {
		err = f.Chmod(restoredMode(hdr))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A truncated file must not look restored.
		_ = x.root.Remove(fp)
		return fmt.Errorf("while writing the file: %w", err)
	}
	if err := x.root.Chtimes(fp, hdr.AccessTime, hdr.ModTime); err != nil {
		return fmt.Errorf("while setting the mtime: %w", err)
	}
	x.st.FilesProcessed++
	x.st.BytesWritten += n
	x.opts.OnFile(FileEvent{Path: name, Size: n})
	return nil
}

// copyFile writes size bytes, turning whole blocks of zeros into holes.
func (x *extractor) copyFile(f *os.File, r io.Reader, size int64) (int64, error) {
	var done int64
	hole := false
	for done < size {
		if err := x.ctx.Err(); err != nil {
			return done, err
		}
		b := x.buf[:min(int64(len(x.buf)), size-done)]
		n, err := io.ReadFull(r, b)
		b = b[:n]
		if n == len(x.buf) && bytes.Equal(b, x.zeros) {
			if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
				return done, err
			}
			hole = true
		} else if n > 0 {
			if _, err := f.Write(b); err != nil {
				return done, err
			}
			hole = false
		}
		done += int64(n)
		if err != nil {
			return done, fmt.Errorf("while reading the archive: %w", err)
		}
	}
	if hole {
		// Seeking past the end does not extend the file; this does.
		if err := f.Truncate(size); err != nil {
			return done, err
		}
	}
	return done, nil
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if x.opts.RefuseEscapingSymlinks && escapes(name, hdr.Linkname) {
		return fmt.Errorf("%w: symlink to %q leads outside the target folder", ErrUnsafeEntry, hdr.Linkname)
	}
	err := x.place(name, func(fp string) error { return x.root.Symlink(hdr.Linkname, fp) })
	if err != nil {
		return fmt.Errorf("while creating the symlink: %w", err)
	}
	x.parentOK = ""
	x.st.FilesProcessed++
	x.opts.OnFile(FileEvent{Path: name})
	return nil
}

func (x *extractor) hardlink(name string, hdr *tar.Header) error {
	target, err := entryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("%w: hard link to the target folder itself", ErrUnsafeEntry)
	}
	if err := x.checkParents(target); err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	fi, err := x.root.Lstat(filepath.FromSlash(target))
	if err != nil {
		return fmt.Errorf("%w: hard link target %q is not in the restored tree: %w", ErrUnsafeEntry, hdr.Linkname, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: hard link to the folder %q", ErrUnsafeEntry, hdr.Linkname)
	}
	err = x.place(name, func(fp string) error { return x.root.Link(filepath.FromSlash(target), fp) })
	if err != nil {
		return fmt.Errorf("while creating the hard link: %w", err)
	}
	x.st.FilesProcessed++
	x.opts.OnFile(FileEvent{Path: name, Size: fi.Size()})
	return nil
}

// place creates a non-folder entry with create, after making its parent
// folders. When something is already there, it is removed and create
// retried only with Overwrite, and a folder never is: trying first saves
// a stat per entry in the common case, an empty target.
func (x *extractor) place(name string, create func(fp string) error) error {
	if err := x.ensureParent(name); err != nil {
		return err
	}
	fp := filepath.FromSlash(name)
	err := create(fp)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := x.root.Lstat(fp)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%w: %q is a folder", ErrExists, name)
	case !x.opts.Overwrite:
		return fmt.Errorf("%w: %q", ErrExists, name)
	}
	if err := x.root.Remove(fp); err != nil {
		return fmt.Errorf("while replacing %q: %w", name, err)
	}
	x.parentOK = ""
	return create(fp)
}

// ensureParent creates the missing parent folders of name and refuses to
// go through anything that is not a real folder, a symlink above all:
// os.Root already stops links that leave the target folder, and this
// also stops an archive from redirecting writes inside it.
func (x *extractor) ensureParent(name string) error {
	dir := path.Dir(name)
	if dir == "." || dir == x.parentOK {
		return nil
	}
	cur := ""
	for seg := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, seg)
		fp := filepath.FromSlash(cur)
		fi, err := x.root.Lstat(fp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(fp, 0o755); err != nil {
				return fmt.Errorf("while creating the folder %q: %w", cur, err)
			}
			x.implicit[cur] = true
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: %q is a symlink; refusing to write through it", ErrUnsafeEntry, cur)
		case !fi.IsDir():
			return fmt.Errorf("%w: %q is not a folder", ErrExists, cur)
		}
	}
	x.parentOK = dir
	return nil
}

// checkParents is ensureParent without creating anything.
func (x *extractor) checkParents(name string) error {
	cur := ""
	for seg := range strings.SplitSeq(path.Dir(name), "/") {
		if seg == "." {
			break
		}
		cur = path.Join(cur, seg)
		fi, err := x.root.Lstat(filepath.FromSlash(cur))
		if err != nil {
			return fmt.Errorf("%w: %q: %w", ErrUnsafeEntry, cur, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q is not a folder", ErrUnsafeEntry, cur)
		}
	}
	return nil
}

func (x *extractor) finishDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		fp := filepath.FromSlash(d.name)
		if err := x.root.Chmod(fp, d.mode); err != nil {
			return fmt.Errorf("while setting the mode of %q: %w", d.name, err)
		}
		if err := x.root.Chtimes(fp, time.Time{}, d.mtime); err != nil {
			return fmt.Errorf("while setting the mtime of %q: %w", d.name, err)
		}
	}
	return nil
}

// restoredMode keeps permissions and the sticky bit. setuid and setgid
// are dropped: the files now belong to whoever restores them, and an
// archive must not hand out setuid binaries.
func restoredMode(hdr *tar.Header) fs.FileMode {
	return hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSticky)
}

// entryName validates an archive name and returns it cleaned, with
// forward slashes and no trailing slash; "" is the target folder itself.
// Absolute names, ".." anywhere, NUL bytes and (on Windows) backslashes,
// drive letters and reserved names are refused rather than cleaned: an
// archive that has them was not written by Write.
func entryName(raw string) (string, error) {
	if strings.ContainsRune(raw, 0) {
		return "", fmt.Errorf("%w: NUL byte in the name", ErrUnsafeEntry)
	}
	if strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrUnsafeEntry)
	}
	if filepath.Separator == '\\' && strings.ContainsRune(raw, '\\') {
		return "", fmt.Errorf("%w: backslash in the name", ErrUnsafeEntry)
	}
	var segs []string
	for seg := range strings.SplitSeq(raw, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: \"..\" in the path", ErrUnsafeEntry)
		}
		segs = append(segs, seg)
	}
	name := strings.Join(segs, "/")
	if name != "" && !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("%w: not a local path", ErrUnsafeEntry)
	}
	return name, nil
}

// escapes reports whether a symlink at name pointing at target leads out
// of the target folder, judged lexically.
func escapes(name, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
		return true
	}
	joined := path.Join(path.Dir(name), filepath.ToSlash(target))
	return joined == ".." || strings.HasPrefix(joined, "../")
}

func cleanPaths(paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		name, err := entryName(p)
		if err != nil {
			return nil, fmt.Errorf("while reading the path %q to restore: %w", p, err)
		}
		if name == "" {
			return nil, fmt.Errorf("%w: empty path to restore %q", ErrInvalidOptions, p)
		}
		out = append(out, name)
	}
	return out, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
