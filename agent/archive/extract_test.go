//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// tarEntry is one entry of a hand-crafted archive.
type tarEntry struct {
	name     string
	typeflag byte
	link     string
	body     string
}

func file(name, body string) tarEntry { return tarEntry{name: name, typeflag: tar.TypeReg, body: body} }
func dirEntry(name string) tarEntry   { return tarEntry{name: name, typeflag: tar.TypeDir} }
func symlinkEntry(name, to string) tarEntry {
	return tarEntry{name: name, typeflag: tar.TypeSymlink, link: to}
}
func hardlinkEntry(name, to string) tarEntry {
	return tarEntry{name: name, typeflag: tar.TypeLink, link: to}
}

// craft writes entries as a plain tar, exactly as given: archive/tar
// writes "../" and absolute names without complaint, like an attacker's
// tool would.
func craft(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.link, Mode: 0o644, ModTime: fixtureTime, Size: int64(len(e.body))}
		if e.typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if e.typeflag == tar.TypeChar {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// outsideOf snapshots everything in parent except the restore folder.
func outsideOf(t *testing.T, parent string) map[string]node {
	t.Helper()
	s := snapshot(t, parent)
	for p := range s {
		if p == "restore" || strings.HasPrefix(p, "restore/") {
			delete(s, p)
		}
	}
	return s
}

func TestExtractRefusesMaliciousArchives(t *testing.T) {
	// victim is replaced by the absolute path of a file next to the
	// restore folder, which no archive may touch.
	const victim = "VICTIM"
	tests := []struct {
		name    string
		entries []tarEntry
		// preexisting runs in the restore folder before Extract.
		preexisting func(t *testing.T, restore, parent string)
		opts        ExtractOptions
		wantErr     error
		wantEntry   string
	}{
		{name: "absolute path", entries: []tarEntry{file(victim, "pwned")}, wantErr: ErrUnsafeEntry, wantEntry: victim},
		{name: "dot-dot", entries: []tarEntry{file("../escape.txt", "pwned")}, wantErr: ErrUnsafeEntry, wantEntry: "../escape.txt"},
		{name: "dot-dot inside a path", entries: []tarEntry{file("a/../../escape.txt", "pwned")}, wantErr: ErrUnsafeEntry, wantEntry: "a/../../escape.txt"},
		{name: "dot-dot symlink name", entries: []tarEntry{symlinkEntry("../lnk", "/")}, wantErr: ErrUnsafeEntry, wantEntry: "../lnk"},
		{
			name:      "symlink to an absolute folder, then a file through it",
			entries:   []tarEntry{symlinkEntry("evil", "PARENT"), file("evil/escape.txt", "pwned")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "evil/escape.txt",
		},
		{
			name:      "symlink to .., then a file through it",
			entries:   []tarEntry{symlinkEntry("evil", ".."), file("evil/escape.txt", "pwned")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "evil/escape.txt",
		},
		{
			name:      "symlink to .., then a folder through it",
			entries:   []tarEntry{symlinkEntry("evil", ".."), dirEntry("evil/newdir/")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "evil/newdir/",
		},
		{
			name:      "symlink inside, then a file through it",
			entries:   []tarEntry{dirEntry("sub/"), symlinkEntry("lnk", "sub"), file("lnk/x.txt", "redirected")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "lnk/x.txt",
		},
		{
			name:      "symlink, then a file with the same name",
			entries:   []tarEntry{symlinkEntry("evil", "VICTIM"), file("evil", "pwned")},
			wantErr:   ErrExists,
			wantEntry: "evil",
		},
		{
			name:      "hard link to ../",
			entries:   []tarEntry{hardlinkEntry("hl", "../outside.txt")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "hl",
		},
		{
			name:      "hard link to an absolute path",
			entries:   []tarEntry{hardlinkEntry("hl", "VICTIM")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "hl",
		},
		{
			name:      "hard link through a symlink",
			entries:   []tarEntry{symlinkEntry("evil", "PARENT"), hardlinkEntry("hl", "evil/outside.txt")},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "hl",
		},
		{name: "device", entries: []tarEntry{{name: "null", typeflag: tar.TypeChar}}, wantErr: ErrUnsupportedEntry, wantEntry: "null"},
		{name: "named pipe", entries: []tarEntry{{name: "fifo", typeflag: tar.TypeFifo}}, wantErr: ErrUnsupportedEntry, wantEntry: "fifo"},
		{
			name:      "escaping symlink when refused",
			entries:   []tarEntry{symlinkEntry("up", "../../etc")},
			opts:      ExtractOptions{RefuseEscapingSymlinks: true},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "up",
		},
		{
			name:    "a symlink already in the target folder",
			entries: []tarEntry{file("data/escape.txt", "pwned")},
			preexisting: func(t *testing.T, restore, parent string) {
				symlink(t, parent, filepath.Join(restore, "data"))
			},
			wantErr:   ErrUnsafeEntry,
			wantEntry: "data/escape.txt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			restore := filepath.Join(parent, "restore")
			mkdir(t, restore)
			mkfile(t, filepath.Join(parent, "outside.txt"), []byte("precious"), 0o644, fixtureTime)
			mkdir(t, filepath.Join(parent, "outdir"))
			if tt.preexisting != nil {
				tt.preexisting(t, restore, parent)
			}
			victimPath := filepath.Join(parent, "victim.txt")
			entries := make([]tarEntry, len(tt.entries))
			for i, e := range tt.entries {
				e.name = strings.ReplaceAll(e.name, victim, victimPath)
				e.link = strings.ReplaceAll(strings.ReplaceAll(e.link, victim, victimPath), "PARENT", parent)
				entries[i] = e
			}
			wantEntry := strings.ReplaceAll(tt.wantEntry, victim, victimPath)
			before := outsideOf(t, parent)

			_, err := Extract(context.Background(), bytes.NewReader(craft(t, entries...)), restore, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Extract: %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), `"`+wantEntry+`"`) {
				t.Errorf("error %q does not name the entry %q", err, wantEntry)
			}
			compareTrees(t, before, outsideOf(t, parent))
		})
	}
}

// TestExtractRestoresEscapingSymlinksVerbatim checks the default: links
// pointing anywhere come back as links (a home folder has links to
// /usr/...), and nothing is written through them.
func TestExtractRestoresEscapingSymlinksVerbatim(t *testing.T) {
	parent := t.TempDir()
	restore := filepath.Join(parent, "restore")
	mkdir(t, restore)
	mkfile(t, filepath.Join(parent, "outside.txt"), []byte("precious"), 0o644, fixtureTime)
	before := outsideOf(t, parent)
	data := craft(t,
		symlinkEntry("abs", filepath.Join(parent, "outside.txt")),
		symlinkEntry("up", "../outside.txt"),
		file("abs", "overwritten through the link?"),
	)
	_, err := Extract(context.Background(), bytes.NewReader(data), restore, ExtractOptions{Overwrite: true})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	compareTrees(t, before, outsideOf(t, parent))
	if target, err := os.Readlink(filepath.Join(restore, "up")); err != nil || target != "../outside.txt" {
		t.Errorf("symlink up -> %q, %v", target, err)
	}
	// With Overwrite the file entry replaced the link itself.
	if got, err := os.ReadFile(filepath.Join(restore, "abs")); err != nil || string(got) != "overwritten through the link?" {
		t.Errorf("abs: %q, %v", got, err)
	}
	if info, err := os.Lstat(filepath.Join(restore, "abs")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("abs is %v, %v; want a regular file", info.Mode(), err)
	}
}

func TestExtractOverwrite(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "a.txt"), []byte("new a"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, "sub/b.txt"), []byte("new b"), 0o600, fixtureTime)
	data, _, _ := writeArchive(t, []Source{{Name: "s", Path: src}}, Options{})

	dir := filepath.Join(t.TempDir(), "restore")
	if _, err := Extract(context.Background(), bytes.NewReader(data), dir, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(dir, "s/a.txt"), []byte("local edit"), 0o666, fixtureTime)

	_, err := Extract(context.Background(), bytes.NewReader(data), dir, ExtractOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `"s/a.txt"`) {
		t.Fatalf("second Extract: %v, want ErrExists naming s/a.txt", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "s/a.txt")); string(got) != "local edit" {
		t.Fatalf("refused overwrite changed the file: %q", got)
	}

	if _, err := Extract(context.Background(), bytes.NewReader(data), dir, ExtractOptions{Overwrite: true}); err != nil {
		t.Fatalf("Extract with Overwrite: %v", err)
	}
	compareTrees(t, snapshot(t, src), snapshot(t, filepath.Join(dir, "s")))

	// A folder is never replaced by a file.
	conflict := craft(t, file("s/sub", "file where a folder is"))
	_, err = Extract(context.Background(), bytes.NewReader(conflict), dir, ExtractOptions{Overwrite: true})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "s/sub") {
		t.Fatalf("file over a folder: %v, want ErrExists", err)
	}
}

func TestExtractPaths(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "docs/a.txt"), []byte("a"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, "docs/deep/b.txt"), []byte("b"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, "docs2/c.txt"), []byte("c"), 0o644, fixtureTime)
	mkfile(t, filepath.Join(src, "other.txt"), []byte("o"), 0o644, fixtureTime)
	data, _, _ := writeArchive(t, []Source{{Name: "s", Path: src}}, Options{})

	dir, st := extractArchive(t, data, ExtractOptions{Paths: []string{"s/docs", "./s/other.txt"}})
	got := snapshot(t, dir)
	var names []string
	for p, n := range got {
		if n.Type == "file" {
			names = append(names, p)
		}
	}
	want := []string{"s/docs/a.txt", "s/docs/deep/b.txt", "s/other.txt"}
	if !sameSet(names, want) || st.FilesProcessed != 3 {
		t.Fatalf("extracted %q (%d files), want %q", names, st.FilesProcessed, want)
	}

	_, err := Extract(context.Background(), bytes.NewReader(data), t.TempDir(), ExtractOptions{Paths: []string{"s/missing"}})
	if !errors.Is(err, ErrPathNotFound) || !strings.Contains(err.Error(), "s/missing") {
		t.Errorf("missing path: %v, want ErrPathNotFound naming it", err)
	}
	_, err = Extract(context.Background(), bytes.NewReader(data), t.TempDir(), ExtractOptions{Paths: []string{"../s"}})
	if !errors.Is(err, ErrUnsafeEntry) {
		t.Errorf("path with ..: %v, want ErrUnsafeEntry", err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestExtractDamagedArchives checks damage anywhere, down to the last
// checksum, is an error.
func TestExtractDamagedArchives(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "f.bin"), content(1, 300<<10), 0o644, fixtureTime)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	archives := map[string][]byte{}
	for name, o := range map[string]Options{
		"gzip":      {},
		"zstd":      {Compression: "zstd"},
		"none":      {Compression: "none"},
		"encrypted": {Recipients: []string{id.Recipient().String()}},
	} {
		archives[name], _, _ = writeArchive(t, []Source{{Path: src}}, o)
	}
	flipLast := func(b []byte, back int) []byte {
		c := bytes.Clone(b)
		c[len(c)-back] ^= 0xff
		return c
	}
	tests := []struct {
		name    string
		data    []byte
		ids     []age.Identity
		wantErr error // nil: any error
	}{
		{name: "gzip truncated", data: archives["gzip"][:len(archives["gzip"])-100]},
		{name: "gzip CRC", data: flipLast(archives["gzip"], 6)},
		{name: "zstd truncated", data: archives["zstd"][:len(archives["zstd"])-50]},
		{name: "zstd content checksum", data: flipLast(archives["zstd"], 2)},
		{name: "tar truncated", data: archives["none"][:len(archives["none"])/2]},
		{name: "encrypted, no identity", data: archives["encrypted"], wantErr: ErrEncrypted},
		{name: "encrypted, wrong identity", data: archives["encrypted"], ids: []age.Identity{other}},
		{name: "encrypted, truncated", data: archives["encrypted"][:len(archives["encrypted"])-10], ids: []age.Identity{id}},
		{name: "encrypted, tampered", data: flipLast(archives["encrypted"], 1), ids: []age.Identity{id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Extract(context.Background(), bytes.NewReader(tt.data), t.TempDir(), ExtractOptions{Identities: tt.ids})
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Extract: %v, want an error (%v)", err, tt.wantErr)
			}
		})
	}
	// The undamaged ones restore.
	for name, data := range archives {
		if _, err := Extract(context.Background(), bytes.NewReader(data), t.TempDir(), ExtractOptions{Identities: []age.Identity{id}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestExtractGNUTarArchive reads an archive made by the system's tar
// ("./" prefixes, GNU headers).
func TestExtractGNUTarArchive(t *testing.T) {
	src := t.TempDir()
	mkfile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o640, fixtureTime)
	mkfile(t, filepath.Join(src, "sub/"+strings.Repeat("n", 150)+"/b.txt"), content(2, 5000), 0o644, fixtureTime)
	symlink(t, "a.txt", filepath.Join(src, "sub/link"))
	archive := filepath.Join(t.TempDir(), "gnu.tar.gz")
	if out, err := exec.Command("tar", "czf", archive, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)
	delete(want, ".") // tar stored "./" with the temp folder's own mtime
	dir, _ := extractArchive(t, data, ExtractOptions{})
	got := snapshot(t, dir)
	delete(got, ".")
	for p, n := range want {
		// GNU tar's default format keeps whole seconds only.
		if n.Type != "symlink" {
			n.MTime = n.MTime / 1e9 * 1e9
			want[p] = n
		}
	}
	compareTrees(t, want, got)
}
