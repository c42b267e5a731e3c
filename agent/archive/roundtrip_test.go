//go:build linux

package archive

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
)

// Names in the fixture worth naming in assertions.
const (
	nonUTF8Name    = "bad-\xff\xfe-name.bin"
	unreadableName = "secret/unreadable.txt"
	fifoName       = "pipe.fifo"
	manySmallFiles = 2000
)

var fixtureTime = time.Date(2024, 3, 10, 12, 34, 56, 123456789, time.UTC)

// longRelPath is a 200+ byte relative path made of folders under the
// 255-byte name limit.
func longRelPath() string {
	return "long/" + strings.Repeat("a", 80) + "/" + strings.Repeat("b", 80) + "/" + strings.Repeat("c", 60) + ".txt"
}

// buildFixture fills src with everything an archive must carry and
// returns the relative paths Write is expected to skip (with the reason
// they must report).
func buildFixture(t *testing.T, src string) map[string]string {
	t.Helper()
	ts := func(i int) time.Time {
		return fixtureTime.Add(time.Duration(i) * time.Second).Add(time.Duration(i) * 7 * time.Nanosecond)
	}
	dirs := map[string]fs.FileMode{src: 0o755}
	d := func(rel string, mode fs.FileMode) {
		p := filepath.Join(src, rel)
		mkdir(t, p)
		dirs[p] = mode
	}
	f := func(i int, rel string, data []byte, mode fs.FileMode) {
		mkfile(t, filepath.Join(src, rel), data, mode, ts(i))
	}

	d("unicode", 0o755)
	f(1, "unicode/héllo wörld.txt", []byte("bonjour\n"), 0o644)
	f(2, "unicode/日本語.md", []byte("# 日本語\n"), 0o600)
	f(3, "unicode/emoji-🎉.txt", content(3, 1000), 0o640)
	f(4, nonUTF8Name, content(4, 777), 0o644)
	for _, p := range []string{"long", "long/" + strings.Repeat("a", 80), "long/" + strings.Repeat("a", 80) + "/" + strings.Repeat("b", 80)} {
		d(p, 0o755)
	}
	f(5, longRelPath(), []byte("deep\n"), 0o644)
	f(6, "empty-file", nil, 0o644)
	d("dir", 0o750)
	f(7, "dir/empty-too", nil, 0o600)
	f(8, "dir/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	f(9, "dir/readonly.txt", []byte("ro"), 0o444)
	d("emptydir", 0o700)
	d("nested", 0o755)
	d("nested/empty", 0o755)
	d("nested/empty/deeper", 0o711)
	d("readonly-dir", 0o755)
	f(10, "readonly-dir/inside.txt", []byte("in a read-only folder"), 0o644)
	dirs[filepath.Join(src, "readonly-dir")] = 0o555
	d("sticky", 0o755)
	dirs[filepath.Join(src, "sticky")] = 0o777 | fs.ModeSticky
	f(11, "large.bin", content(11, 3<<20+123), 0o644) // streamed in chunks
	d("links", 0o755)
	symlink(t, "../unicode/日本語.md", filepath.Join(src, "links/relative"))
	symlink(t, filepath.Join(src, "dir/run.sh"), filepath.Join(src, "links/absolute"))
	symlink(t, "does/not/exist", filepath.Join(src, "links/dangling"))
	symlink(t, "..", filepath.Join(src, "links/loop")) // never followed
	if err := os.Link(filepath.Join(src, "dir/run.sh"), filepath.Join(src, "hardlink.sh")); err != nil {
		t.Fatal(err)
	}
	d("many", 0o755)
	for i := range manySmallFiles {
		sub := filepath.Join("many", string(rune('a'+i%20)))
		d(sub, 0o755)
		f(100+i, filepath.Join(sub, "file-"+strings.Repeat("x", i%7)+"-"+strconv.Itoa(i)+".txt"), content(i, i%9000), 0o644)
	}
	d("secret", 0o755)
	f(12, unreadableName, []byte("you cannot read me"), 0)
	if err := syscall.Mkfifo(filepath.Join(src, fifoName), 0o644); err != nil {
		t.Fatal(err)
	}
	setDirMeta(t, dirs, fixtureTime)
	return map[string]string{unreadableName: "permission denied", fifoName: ReasonFIFO}
}

// backupFixture writes an archive of src as a user that cannot read
// mode-000 files: in process when the tests run unprivileged, in a child
// process as nobody when they run as root.
func backupFixture(t *testing.T, base, src string, opts Options) ([]byte, Stats, []FileEvent) {
	t.Helper()
	sources := []Source{{Name: "data", Path: src}}
	if !isRoot() {
		return writeArchive(t, sources, opts)
	}
	makeTraversable(t, base)
	chownTree(t, src)
	return writeAsUser(t, sources, opts)
}

func TestRoundTrip(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	skipped := buildFixture(t, src)
	want := snapshot(t, src)
	for rel := range skipped {
		delete(want, rel)
	}
	var wantFiles int64
	for _, n := range want {
		if n.Type != "dir" {
			wantFiles++
		}
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		ids  []age.Identity
		// systemRestore restores the archive with the system's tools into dir.
		systemRestore string
	}{
		{name: "gzip", opts: Options{}, systemRestore: "tar xzf archive -C out"},
		{name: "zstd", opts: Options{Compression: "zstd"}, systemRestore: "tar --zstd -xf archive -C out"},
		{name: "none, 16 readers", opts: Options{Compression: "none", Readers: 16}, systemRestore: "tar xf archive -C out"},
		{
			name:          "gzip level 1 encrypted, 1 reader",
			opts:          Options{Level: 1, Readers: 1, Recipients: []string{id.Recipient().String()}},
			ids:           []age.Identity{id},
			systemRestore: "age -d -i key archive | tar xzf - -C out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // src is only read
			data, st, events := backupFixture(t, base, src, tt.opts)

			if st.FilesProcessed != wantFiles {
				t.Errorf("FilesProcessed = %d, want %d", st.FilesProcessed, wantFiles)
			}
			if st.FilesSkipped != int64(len(skipped)) || len(st.Skipped) != len(skipped) {
				t.Errorf("skipped %d %+v, want %v", st.FilesSkipped, st.Skipped, skipped)
			}
			for _, s := range st.Skipped {
				rel := strings.TrimPrefix(s.Path, "data/")
				if reason, ok := skipped[rel]; !ok || !strings.Contains(s.Reason, reason) {
					t.Errorf("skipped %q with reason %q; want one of %v", s.Path, s.Reason, skipped)
				}
			}
			if st.FilesChanged != 0 {
				t.Errorf("FilesChanged = %d (%+v), want 0", st.FilesChanged, st.Changed)
			}
			var stored, skippedEvents int64
			for _, e := range events {
				if e.Skipped {
					skippedEvents++
				} else {
					stored++
				}
			}
			if stored != wantFiles || skippedEvents != int64(len(skipped)) {
				t.Errorf("OnFile: %d stored and %d skipped events, want %d and %d", stored, skippedEvents, wantFiles, len(skipped))
			}

			dir, xst := extractArchive(t, data, ExtractOptions{Identities: tt.ids})
			compareTrees(t, want, snapshot(t, filepath.Join(dir, "data")))
			if xst.FilesProcessed != wantFiles {
				t.Errorf("Extract FilesProcessed = %d, want %d", xst.FilesProcessed, wantFiles)
			}

			if tt.systemRestore == "" {
				return
			}
			work := t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "archive"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(work, "key"), []byte(id.String()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			mkdir(t, filepath.Join(work, "out"))
			cmd := exec.Command("sh", "-ec", tt.systemRestore)
			cmd.Dir = work
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tt.systemRestore, err, out)
			}
			compareTrees(t, want, snapshot(t, filepath.Join(work, "out", "data")))
		})
	}
}

// TestRoundTripNonUTF8Name checks the raw bytes of a name that is not
// UTF-8 come back, through the PAX path record.
func TestRoundTripNonUTF8Name(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, nonUTF8Name), []byte("x"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, longRelPath()), []byte("y"), 0o644, fixtureTime)
	data, _, _ := writeArchive(t, []Source{{Name: "s", Path: src}}, Options{Compression: "none"})

	var names []string
	for _, e := range readArchive(t, data) {
		names = append(names, e.hdr.Name)
		if e.hdr.Name == "s/"+nonUTF8Name && e.hdr.PAXRecords["path"] != "s/"+nonUTF8Name {
			t.Errorf("non-UTF-8 name not in a PAX path record: %q", e.hdr.PAXRecords)
		}
		if e.hdr.Name == "s/"+longRelPath() && e.hdr.PAXRecords["path"] == "" {
			t.Errorf("long name not in a PAX path record: %q", e.hdr.PAXRecords)
		}
	}
	want := []string{"s/", "s/" + nonUTF8Name, "s/long/"}
	if len(names) < 3 || !slicesHasPrefix(names, want) {
		t.Fatalf("entries %q, want them to start with %q", names, want)
	}

	dir, _ := extractArchive(t, data, ExtractOptions{})
	got, err := os.ReadFile(filepath.Join(dir, "s", nonUTF8Name))
	if err != nil || !bytes.Equal(got, []byte("x")) {
		t.Fatalf("restored non-UTF-8 file: %q, %v", got, err)
	}
	des, err := os.ReadDir(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, de := range des {
		found = found || de.Name() == nonUTF8Name
	}
	if !found {
		t.Fatalf("no entry named with the raw bytes %q in %v", nonUTF8Name, des)
	}
}

func slicesHasPrefix(s, prefix []string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range prefix {
		if s[i] != prefix[i] {
			return false
		}
	}
	return true
}

// TestWriteContextCancelled checks Write stops on a cancelled context.
func TestWriteContextCancelled(t *testing.T) {
	src := t.TempDir()
	for i := range 50 {
		mkfile(t, filepath.Join(src, "f"+strconv.Itoa(i)), content(i, 4096), 0o644, fixtureTime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	_, err := Write(ctx, &buf, []Source{{Path: src}}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context: %v, want context canceled", err)
	}
}
