//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
)

// helperEnv, when set, turns the test binary into a child that runs Write
// with the JSON request in the variable; see writeAsUser.
const helperEnv = "BACKAPP_ARCHIVE_WRITE_HELPER"

func TestMain(m *testing.M) {
	if req := os.Getenv(helperEnv); req != "" {
		os.Exit(runWriteHelper(req))
	}
	os.Exit(m.Run())
}

// helperRequest is what a child process writes.
type helperRequest struct {
	Sources     []Source
	Compression string
	Level       int
	Recipients  []string
	Out         string
}

type helperResponse struct {
	Stats  Stats
	Events []FileEvent
	Err    string
}

func runWriteHelper(req string) int {
	var r helperRequest
	if err := json.Unmarshal([]byte(req), &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := os.Create(r.Out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var resp helperResponse
	opts := Options{
		Compression: r.Compression,
		Level:       r.Level,
		Recipients:  r.Recipients,
		OnFile:      func(e FileEvent) { resp.Events = append(resp.Events, e) },
	}
	resp.Stats, err = Write(context.Background(), f, r.Sources, opts)
	if err != nil {
		resp.Err = err.Error()
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// nobody is the user a root test drops to, so that chmod 000 makes a file
// really unreadable (root reads everything).
const nobody = 65534

// writeAsUser runs Write in a child process as uid/gid nobody. Files in
// the sources must be readable by nobody (chownTree). It returns the
// archive, the stats and the events.
func writeAsUser(t *testing.T, sources []Source, opts Options) ([]byte, Stats, []FileEvent) {
	t.Helper()
	outDir := t.TempDir()
	makeTraversable(t, outDir)
	if err := os.Chown(outDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "archive")
	req, err := json.Marshal(helperRequest{
		Sources:     sources,
		Compression: opts.Compression,
		Level:       opts.Level,
		Recipients:  opts.Recipients,
		Out:         out,
	})
	if err != nil {
		t.Fatal(err)
	}
	// /proc/self/exe: the test binary sits in a 0700 build folder that
	// nobody cannot traverse, but the magic link resolves without it.
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(req))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("write helper as nobody: %v\n%s", err, stderr.String())
	}
	var resp helperResponse
	if err := json.Unmarshal(stdout, &resp); err != nil {
		t.Fatalf("write helper output %q: %v", stdout, err)
	}
	if resp.Err != "" {
		t.Fatalf("Write as nobody: %s", resp.Err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, resp.Stats, resp.Events
}

// makeTraversable opens dir and its parent (t.TempDir makes both 0700) to
// other users.
func makeTraversable(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// chownTree gives a tree to nobody without touching mtimes.
func chownTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

// writeArchive runs Write in process and fails the test on error.
func writeArchive(t *testing.T, sources []Source, opts Options) ([]byte, Stats, []FileEvent) {
	t.Helper()
	var events []FileEvent
	opts.OnFile = func(e FileEvent) { events = append(events, e) }
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, sources, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if st.BytesWritten != int64(buf.Len()) {
		t.Fatalf("Stats.BytesWritten = %d, wrote %d bytes", st.BytesWritten, buf.Len())
	}
	return buf.Bytes(), st, events
}

// archiveEntry is one tar header as read back.
type archiveEntry struct {
	hdr     *tar.Header
	content []byte
}

// readArchive decodes an archive (any compression, optionally encrypted)
// into its entries, in order.
func readArchive(t *testing.T, data []byte, ids ...age.Identity) []archiveEntry {
	t.Helper()
	stream, closeStream, err := openArchive(bytes.NewReader(data), ids)
	if err != nil {
		t.Fatalf("openArchive: %v", err)
	}
	defer closeStream()
	tr := tar.NewReader(stream)
	var out []archiveEntry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %q: %v", hdr.Name, err)
		}
		out = append(out, archiveEntry{hdr: hdr, content: content})
	}
}

func entryNames(entries []archiveEntry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.hdr.Name
	}
	return names
}

// node describes one filesystem object for tree comparison.
type node struct {
	Type  string
	Mode  fs.FileMode
	MTime int64 // ns; 0 for symlinks (not restored)
	Size  int64
	Hash  string
	Link  string
}

func (n node) String() string {
	return fmt.Sprintf("%s mode=%v mtime=%d size=%d hash=%.12s link=%q", n.Type, n.Mode, n.MTime, n.Size, n.Hash, n.Link)
}

// snapshot describes every object under dir by relative path ("." for
// dir itself). Content is hashed as a stream.
func snapshot(t *testing.T, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{Mode: info.Mode(), MTime: info.ModTime().UnixNano()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			n.Type, n.MTime = "symlink", 0
			if n.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir():
			n.Type = "dir"
		case info.Mode().IsRegular():
			n.Type, n.Size = "file", info.Size()
			if n.Hash, err = hashFile(p); err != nil {
				return err
			}
		default:
			n.Type = "special"
		}
		out[filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compareTrees fails with every difference between two snapshots.
func compareTrees(t *testing.T, want, got map[string]node) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q (%v)", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%q: want %v\n\tgot  %v", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q (%v)", p, g))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("trees differ:\n%s", strings.Join(diffs, "\n"))
	}
}

// mkfile creates a file (and its parents) with content, mode and mtime.
func mkfile(t *testing.T, p string, content []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// mkdir creates a folder; its mode and mtime are set by setDirMeta once
// its content exists.
func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// setDirMeta sets folder modes and mtimes deepest first, after their
// content is in place.
func setDirMeta(t *testing.T, dirs map[string]fs.FileMode, mtime time.Time) {
	t.Helper()
	paths := make([]string, 0, len(dirs))
	for p := range dirs {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, func(a, b string) int { return len(b) - len(a) })
	for i, p := range paths {
		if err := os.Chmod(p, dirs[p]); err != nil {
			t.Fatal(err)
		}
		m := mtime.Add(time.Duration(i) * 1111 * time.Nanosecond)
		if err := os.Chtimes(p, m, m); err != nil {
			t.Fatal(err)
		}
	}
}

// extractArchive runs Extract into a fresh folder and returns it.
func extractArchive(t *testing.T, data []byte, opts ExtractOptions) (string, Stats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restore")
	st, err := Extract(context.Background(), bytes.NewReader(data), dir, opts)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if st.BytesRead != int64(len(data)) {
		t.Fatalf("Extract Stats.BytesRead = %d, archive has %d bytes", st.BytesRead, len(data))
	}
	return dir, st
}

// deterministic pseudo-random content, so failures reproduce.
func content(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
