//go:build linux

package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// checkParentsFirst fails unless every entry's folder came before it.
func checkParentsFirst(t *testing.T, names []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, n := range names {
		clean := strings.TrimSuffix(n, "/")
		if dir := path.Dir(clean); dir != "." && !seen[dir] {
			t.Errorf("entry %q comes before its folder %q", n, dir)
		}
		seen[clean] = true
	}
}

func TestWriteIncludeExclude(t *testing.T) {
	src := t.TempDir()
	for _, p := range []string{"a.txt", "b.log", "docs/readme.md", "docs/img/x.png", "docs/img/y.log",
		"src/main.go", "src/vendor/lib.go", "node_modules/pkg/index.js"} {
		mkfile(t, filepath.Join(src, p), []byte(p), 0o644, fixtureTime)
	}
	mkdir(t, filepath.Join(src, "emptydir"))
	// Walking into node_modules would report this pipe as skipped: its
	// absence from Stats.Skipped proves excluded folders are not descended.
	if err := syscall.Mkfifo(filepath.Join(src, "node_modules/pkg/pipe"), 0o644); err != nil {
		t.Fatal(err)
	}

	all := []string{"d/", "d/a.txt", "d/b.log", "d/docs/", "d/docs/readme.md", "d/docs/img/", "d/docs/img/x.png",
		"d/docs/img/y.log", "d/emptydir/", "d/src/", "d/src/main.go", "d/src/vendor/", "d/src/vendor/lib.go"}
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{name: "exclude a folder by name", exclude: []string{"node_modules"}, want: all},
		{name: "exclude a folder with trailing slash", exclude: []string{"node_modules/"}, want: all},
		{
			name:    "exclude a glob at any depth",
			exclude: []string{"node_modules", "**/*.log"},
			want: []string{"d/", "d/a.txt", "d/docs/", "d/docs/readme.md", "d/docs/img/", "d/docs/img/x.png",
				"d/emptydir/", "d/src/", "d/src/main.go", "d/src/vendor/", "d/src/vendor/lib.go"},
		},
		{
			name:    "include a folder and all below",
			include: []string{"docs/**"},
			want:    []string{"d/", "d/docs/", "d/docs/readme.md", "d/docs/img/", "d/docs/img/x.png", "d/docs/img/y.log"},
		},
		{
			name:    "include a folder by name, exclude wins",
			include: []string{"docs/img"},
			exclude: []string{"**/*.log"},
			want:    []string{"d/", "d/docs/", "d/docs/img/", "d/docs/img/x.png"},
		},
		{
			name:    "include at any depth, exclude a folder",
			include: []string{"**/*.go"},
			exclude: []string{"src/vendor"},
			want:    []string{"d/", "d/src/", "d/src/main.go"},
		},
		{name: "a pattern without ** is anchored at the root", include: []string{"*.txt", "*.md"}, want: []string{"d/", "d/a.txt"}},
		{name: "an included empty folder is kept", include: []string{"emptydir"}, want: []string{"d/", "d/emptydir/"}},
		{name: "nothing matches: only the root", include: []string{"nope/**"}, want: []string{"d/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, st, _ := writeArchive(t, []Source{{Name: "d", Path: src, Include: tt.include, Exclude: tt.exclude}}, Options{Compression: "none"})
			names := entryNames(readArchive(t, data))
			checkParentsFirst(t, names)
			slices.Sort(names)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(names, want) {
				t.Errorf("entries\n%q\nwant\n%q", names, want)
			}
			if st.FilesSkipped != 0 {
				t.Errorf("skipped %+v; excluded folders must not be walked", st.Skipped)
			}
		})
	}

	_, err := Write(context.Background(), io.Discard, []Source{{Path: src, Include: []string{"[a-"}}}, Options{})
	if !errors.Is(err, ErrInvalidPattern) || !strings.Contains(err.Error(), "[a-") {
		t.Errorf("bad glob: %v, want ErrInvalidPattern naming it", err)
	}
}

func TestWriteSources(t *testing.T) {
	base := t.TempDir()
	mkfile(t, filepath.Join(base, "one/docs/a.txt"), []byte("1"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(base, "two/docs/b.txt"), []byte("2"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(base, "single.txt"), []byte("single"), 0o640, fixtureTime)
	mkfile(t, filepath.Join(base, "home/notes/n.txt"), []byte("n"), 0o644, fixtureTime)
	symlink(t, filepath.Join(base, "one/docs"), filepath.Join(base, "linked"))
	symlink(t, "single.txt", filepath.Join(base, "single-link"))
	t.Setenv("HOME", filepath.Join(base, "home"))

	data, _, _ := writeArchive(t, []Source{
		{Path: filepath.Join(base, "one/docs")},
		{Path: filepath.Join(base, "two/docs")},
		{Name: "named", Path: filepath.Join(base, "two/docs")},
		{Path: filepath.Join(base, "single.txt")},
		{Path: filepath.Join(base, "linked")}, // root symlink: followed
		{Path: "~/notes"},
		{Name: "file-link", Path: filepath.Join(base, "single-link")},
	}, Options{})
	entries := readArchive(t, data)
	want := []string{"docs/", "docs/a.txt", "docs-2/", "docs-2/b.txt", "named/", "named/b.txt",
		"single.txt", "linked/", "linked/a.txt", "notes/", "notes/n.txt", "file-link"}
	if got := entryNames(entries); !slices.Equal(got, want) {
		t.Fatalf("entries\n%q\nwant\n%q", got, want)
	}
	for _, e := range entries {
		if (e.hdr.Name == "single.txt" || e.hdr.Name == "file-link") && (string(e.content) != "single" || e.hdr.Mode != 0o640) {
			t.Errorf("single file source stored as %q mode %o", e.content, e.hdr.Mode)
		}
		if e.hdr.Name == "linked/" && e.hdr.Typeflag != '5' {
			t.Errorf("symlinked source root stored with type %q, want a folder", e.hdr.Typeflag)
		}
	}

	errTests := []struct {
		name    string
		src     Source
		wantErr error
		inMsg   string
	}{
		{name: "missing path", src: Source{Path: filepath.Join(base, "nope")}, wantErr: fs.ErrNotExist, inMsg: filepath.Join(base, "nope")},
		{name: "relative path", src: Source{Path: "relative/dir"}, wantErr: ErrInvalidSource, inMsg: "relative/dir"},
		{name: "empty path", src: Source{}, wantErr: ErrInvalidSource, inMsg: "empty path"},
		{name: "name with a slash", src: Source{Name: "a/b", Path: base}, wantErr: ErrInvalidSource, inMsg: "a/b"},
		{name: "name dot-dot", src: Source{Name: "..", Path: base}, wantErr: ErrInvalidSource, inMsg: ".."},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(context.Background(), &buf, []Source{{Path: base}, tt.src}, Options{})
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("Write: %v, want %v naming %q", err, tt.wantErr, tt.inMsg)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written before the error; sources are checked first", buf.Len())
			}
		})
	}
}

func TestWriteSkipsSpecialFiles(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "ok.txt"), []byte("ok"), 0o644, fixtureTime)
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	data, st, events := writeArchive(t, []Source{
		{Name: "s", Path: src},
		{Name: "dev", Path: "/dev/null"}, // a device as a source root
	}, Options{})
	if got := entryNames(readArchive(t, data)); !slices.Equal(got, []string{"s/", "s/ok.txt"}) {
		t.Errorf("entries %q, want only the folder and ok.txt", got)
	}
	wantSkips := map[string]string{"s/fifo": ReasonFIFO, "s/sock": ReasonSocket, "dev": ReasonDevice}
	if st.FilesSkipped != 3 || len(st.Skipped) != 3 {
		t.Fatalf("skipped %d: %+v, want %v", st.FilesSkipped, st.Skipped, wantSkips)
	}
	for _, s := range st.Skipped {
		if wantSkips[s.Path] != s.Reason {
			t.Errorf("skip %+v, want reason %q", s, wantSkips[s.Path])
		}
	}
	var skipEvents int
	for _, e := range events {
		if e.Skipped {
			skipEvents++
			if wantSkips[e.Path] != e.Reason {
				t.Errorf("event %+v, want reason %q", e, wantSkips[e.Path])
			}
		}
	}
	if skipEvents != 3 {
		t.Errorf("%d skip events, want 3", skipEvents)
	}
}

func TestWriteSkippedListIsBounded(t *testing.T) {
	src := t.TempDir()
	for i := range maxListed + 20 {
		if err := syscall.Mkfifo(filepath.Join(src, "fifo"+strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, st, _ := writeArchive(t, []Source{{Path: src}}, Options{})
	if st.FilesSkipped != maxListed+20 || len(st.Skipped) != maxListed {
		t.Fatalf("FilesSkipped %d, listed %d; want %d counted and %d listed", st.FilesSkipped, len(st.Skipped), maxListed+20, maxListed)
	}
}

func TestWriteOptions(t *testing.T) {
	src := t.TempDir()
	// Compressible but not trivially: levels must make a difference.
	for i := range 20 {
		text := strings.Repeat("the quick brown fox "+strconv.Itoa(i*i)+" jumps over the lazy dog\n", 2000)
		mkfile(t, filepath.Join(src, "f"+strconv.Itoa(i)), []byte(text), 0o644, fixtureTime)
	}
	mkfile(t, filepath.Join(src, "random"), content(1, 200<<10), 0o644, fixtureTime)
	sources := []Source{{Path: src}}
	write := func(o Options) []byte {
		data, _, _ := writeArchive(t, sources, o)
		return data
	}

	gzDefault, gz6, gz1, gz9 := write(Options{}), write(Options{Compression: "gzip", Level: 6}), write(Options{Level: 1}), write(Options{Level: 9})
	if !bytes.HasPrefix(gzDefault, []byte{0x1f, 0x8b}) {
		t.Errorf("default archive starts %x, want gzip", gzDefault[:4])
	}
	if !bytes.Equal(gzDefault, gz6) {
		t.Errorf("default gzip differs from level 6")
	}
	if len(gz1) <= len(gz9) {
		t.Errorf("gzip level 1 (%d bytes) not larger than level 9 (%d)", len(gz1), len(gz9))
	}
	zstd3, zstd19 := write(Options{Compression: "zstd"}), write(Options{Compression: "zstd", Level: 19})
	if !bytes.HasPrefix(zstd3, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Errorf("zstd archive starts %x", zstd3[:4])
	}
	if len(zstd3) <= len(zstd19) {
		t.Errorf("zstd level 3 (%d bytes) not larger than level 19 (%d)", len(zstd3), len(zstd19))
	}
	plain := write(Options{Compression: "none"})
	if string(plain[257:262]) != "ustar" {
		t.Errorf("uncompressed archive is not a tar: %q", plain[257:262])
	}
	// Every variant holds the same entries.
	want := readArchive(t, plain)
	for name, data := range map[string][]byte{"gzip": gzDefault, "gzip 9": gz9, "zstd 19": zstd19} {
		got := readArchive(t, data)
		if !slices.Equal(entryNames(got), entryNames(want)) {
			t.Errorf("%s: entries %q, want %q", name, entryNames(got), entryNames(want))
		}
	}

	bad := []struct {
		name string
		opts Options
		in   string
	}{
		{name: "unknown compression", opts: Options{Compression: "bzip2"}, in: "bzip2"},
		{name: "gzip level", opts: Options{Level: 10}, in: "gzip level 10"},
		{name: "negative gzip level", opts: Options{Level: -1}, in: "gzip level -1"},
		{name: "zstd level", opts: Options{Compression: "zstd", Level: 23}, in: "zstd level 23"},
		{name: "level with none", opts: Options{Compression: "none", Level: 3}, in: "none"},
		{name: "bad recipient", opts: Options{Recipients: []string{"age1notakey"}}, in: "age1notakey"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(context.Background(), &buf, sources, tt.opts)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.in) {
				t.Fatalf("Write: %v, want ErrInvalidOptions naming %q", err, tt.in)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written despite invalid options", buf.Len())
			}
		})
	}
}

// TestWriteOrderIndependentOfReaders checks parallel readers never change
// the archive: the same tree gives the same bytes with 1, 3 or 32 readers.
func TestWriteOrderIndependentOfReaders(t *testing.T) {
	src := t.TempDir()
	// Small files of every size class, with a few at and past the
	// small/large boundary among them.
	sizes := []int{0, 1, 511, 512, 4096, 100 << 10}
	large := []int{smallFileMax, smallFileMax + 1, 3*chunkSize + 17}
	for i := range 600 {
		size := sizes[i%len(sizes)]
		if i%50 == 7 {
			size = large[i/50%len(large)]
		}
		dir := filepath.Join(src, "d"+strconv.Itoa(i%7))
		mkfile(t, filepath.Join(dir, "f"+strconv.Itoa(i)), content(i, size), 0o644, fixtureTime)
	}
	var first []byte
	for _, readers := range []int{1, 3, 32} {
		data, st, _ := writeArchive(t, []Source{{Path: src}}, Options{Compression: "none", Readers: readers})
		if st.FilesProcessed != 600 {
			t.Fatalf("readers=%d: %d files, want 600", readers, st.FilesProcessed)
		}
		if first == nil {
			first = data
			continue
		}
		if !bytes.Equal(first, data) {
			t.Fatalf("readers=%d: archive differs from readers=1", readers)
		}
	}
}

func TestWriteFileChangedWhileReading(t *testing.T) {
	const large = 3 << 20
	const small = 10 << 10
	original := func(n int) []byte { return content(42, n) }
	tests := []struct {
		name string
		size int
		// change runs once, at the hook point, on the file being read.
		hookAfterOpen bool
		change        func(t *testing.T, p string)
		// wantStored is what the archive holds for the file.
		wantStored  func() []byte
		wantChanged bool
	}{
		{
			name:   "large file shrinks: header size kept, rest zero-filled",
			size:   large,
			change: func(t *testing.T, p string) { truncate(t, p, 1<<20) },
			wantStored: func() []byte {
				return append(original(large)[:1<<20:1<<20], make([]byte, large-(1<<20))...)
			},
			wantChanged: true,
		},
		{
			name:        "large file grows: cut at header size",
			size:        large,
			change:      func(t *testing.T, p string) { appendTo(t, p, content(7, 1<<20)) },
			wantStored:  func() []byte { return original(large) },
			wantChanged: true,
		},
		{
			name: "large file rewritten in place: mtime changes",
			size: large,
			change: func(t *testing.T, p string) {
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt(bytes.Repeat([]byte{'z'}, 10), 0); err != nil {
					t.Fatal(err)
				}
			},
			wantStored:  func() []byte { return original(large) }, // the first chunk was read before
			wantChanged: true,
		},
		{
			name:          "small file shrinks: stored as read",
			size:          small,
			hookAfterOpen: true,
			change:        func(t *testing.T, p string) { truncate(t, p, 4096) },
			wantStored:    func() []byte { return original(small)[:4096] },
			wantChanged:   true,
		},
		{
			name:          "small file grows: cut at its size at open",
			size:          small,
			hookAfterOpen: true,
			change:        func(t *testing.T, p string) { appendTo(t, p, []byte("more")) },
			wantStored:    func() []byte { return original(small) },
			wantChanged:   true,
		},
		{
			name:        "unchanged large file",
			size:        large,
			change:      func(t *testing.T, p string) {},
			wantStored:  func() []byte { return original(large) },
			wantChanged: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			target := filepath.Join(src, "target.bin")
			mkfile(t, target, original(tt.size), 0o644, fixtureTime)
			mkfile(t, filepath.Join(src, "zz-other.txt"), []byte("other"), 0o644, fixtureTime)
			hooks := &testHooks{}
			done := false
			fire := func(p string) {
				if p == target && !done {
					done = true
					tt.change(t, p)
				}
			}
			if tt.hookAfterOpen {
				hooks.afterOpen = fire
			} else {
				hooks.afterChunk = func(p string, n int64) {
					if n >= chunkSize {
						fire(p)
					}
				}
			}
			data, st, events := writeArchive(t, []Source{{Name: "s", Path: src}}, Options{hooks: hooks})
			if !done {
				t.Fatal("the hook never ran")
			}

			var stored []byte
			for _, e := range readArchive(t, data) {
				if e.hdr.Name == "s/target.bin" {
					stored = e.content
				}
			}
			if want := tt.wantStored(); !bytes.Equal(stored, want) {
				t.Errorf("stored %d bytes, want %d (equal prefix: %v)", len(stored), len(want), bytes.HasPrefix(want, stored[:min(len(stored), 100)]))
			}
			var changedEvent *FileEvent
			for i, e := range events {
				if e.Path == "s/target.bin" {
					changedEvent = &events[i]
				}
			}
			if changedEvent == nil {
				t.Fatal("no event for the file")
			}
			if tt.wantChanged {
				if st.FilesChanged != 1 || len(st.Changed) != 1 || st.Changed[0].Reason != ReasonChanged || st.Changed[0].Path != "s/target.bin" {
					t.Errorf("Stats changed %d %+v, want the file with %q", st.FilesChanged, st.Changed, ReasonChanged)
				}
				if !changedEvent.Changed || changedEvent.Reason != ReasonChanged || changedEvent.Size != int64(len(stored)) {
					t.Errorf("event %+v, want Changed with %q and size %d", changedEvent, ReasonChanged, len(stored))
				}
			} else if st.FilesChanged != 0 || changedEvent.Changed {
				t.Errorf("unchanged file reported as changed: %+v %+v", st.Changed, changedEvent)
			}
			if st.FilesProcessed != 2 {
				t.Errorf("FilesProcessed %d, want 2 (a changed file is still stored)", st.FilesProcessed)
			}
			// The archive stays valid: Extract reads it to the end.
			dir, _ := extractArchive(t, data, ExtractOptions{})
			if got, err := os.ReadFile(filepath.Join(dir, "s/zz-other.txt")); err != nil || string(got) != "other" {
				t.Errorf("file after the changed one: %q, %v", got, err)
			}
		})
	}
}

func truncate(t *testing.T, p string, n int64) {
	t.Helper()
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestWriteVanishedFile(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "gone.txt"), []byte("soon gone"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, "stays.txt"), []byte("here"), 0o644, fixtureTime)
	hooks := &testHooks{beforeOpen: func(p string) {
		if filepath.Base(p) == "gone.txt" {
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
		}
	}}
	data, st, _ := writeArchive(t, []Source{{Name: "s", Path: src}}, Options{hooks: hooks})
	if got := entryNames(readArchive(t, data)); !slices.Equal(got, []string{"s/", "s/stays.txt"}) {
		t.Errorf("entries %q", got)
	}
	if st.FilesSkipped != 1 || st.Skipped[0] != (Skip{Path: "s/gone.txt", Reason: ReasonVanished}) {
		t.Errorf("skipped %+v, want s/gone.txt %q", st.Skipped, ReasonVanished)
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	limit int
	n     int
}

var errBoom = errors.New("boom: the upload failed")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errBoom
	}
	w.n += len(p)
	return len(p), nil
}

// TestWriteWriterError checks a failing writer stops the pipeline (Write
// waits for its goroutines, so returning at all shows none is stuck) and
// the error is the writer's.
func TestWriteWriterError(t *testing.T) {
	src := t.TempDir()
	for i := range 300 {
		mkfile(t, filepath.Join(src, "f"+strconv.Itoa(i)), content(i, 64<<10), 0o644, fixtureTime)
	}
	mkfile(t, filepath.Join(src, "large"), content(1, 8<<20), 0o644, fixtureTime)
	for _, compression := range []string{"gzip", "zstd", "none"} {
		t.Run(compression, func(t *testing.T) {
			w := &failingWriter{limit: 1 << 20}
			_, err := Write(context.Background(), w, []Source{{Path: src}}, Options{Compression: compression, Readers: 8})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Write: %v, want the writer's error", err)
			}
		})
	}
}

// sparseSize is the size of the sparse file test: 256 MiB unless
// BACKAPP_ARCHIVE_SPARSE_SIZE says otherwise (bytes, or with a MiB/GiB
// suffix: "6GiB" for the full check).
func sparseSize(t *testing.T) int64 {
	s := os.Getenv("BACKAPP_ARCHIVE_SPARSE_SIZE")
	if s == "" {
		return 256 << 20
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"GiB": 1 << 30, "MiB": 1 << 20} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("BACKAPP_ARCHIVE_SPARSE_SIZE=%q: want a size like 268435456, 256MiB or 6GiB", os.Getenv("BACKAPP_ARCHIVE_SPARSE_SIZE"))
	}
	return n * mult
}

// TestWriteSparseFile checks a large sparse file is streamed (memory
// allocated stays far below its size), compresses to almost nothing and
// comes back sparse with the same content.
func TestWriteSparseFile(t *testing.T) {
	size := sparseSize(t)
	src := t.TempDir()
	p := filepath.Join(src, "sparse.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), size-4); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, []Source{{Name: "s", Path: src}}, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Write allocated %d MiB in all", (after.TotalAlloc-before.TotalAlloc)>>20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("Write allocated %d MiB for a %d MiB file: it must stream", alloc>>20, size>>20)
	}
	if st.BytesRead != size {
		t.Errorf("BytesRead %d, want %d", st.BytesRead, size)
	}
	if int64(buf.Len()) > size/200 {
		t.Errorf("archive of a sparse %d MiB file is %d bytes", size>>20, buf.Len())
	}

	dir, _ := extractArchive(t, buf.Bytes(), ExtractOptions{})
	out := filepath.Join(dir, "s/sparse.img")
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != size {
		t.Fatalf("restored size %d, want %d", info.Size(), size)
	}
	if allocated := info.Sys().(*syscall.Stat_t).Blocks * 512; allocated > size/8 {
		t.Errorf("restored file allocates %d bytes of %d: not sparse", allocated, size)
	}
	rf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	head, tail := make([]byte, 4), make([]byte, 4)
	if _, err := rf.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.ReadAt(tail, size-4); err != nil {
		t.Fatal(err)
	}
	if string(head) != "head" || string(tail) != "tail" {
		t.Errorf("restored head %q tail %q", head, tail)
	}
	wantHash, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if gotHash, err := hashFile(out); err != nil || gotHash != wantHash {
		t.Errorf("restored content hash %s, want %s (%v)", gotHash, wantHash, err)
	}
}
