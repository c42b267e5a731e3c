package objstore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var runTime = time.Date(2026, 3, 29, 1, 30, 5, 999, time.FixedZone("CET", 3600))

func TestArchiveKey(t *testing.T) {
	tests := []struct {
		name                      string
		prefix, user, agent, conf string
		t                         time.Time
		ext                       string
		want                      string // "" means an error is expected
	}{
		{"no prefix", "", "u1", "a1", "c1", runTime, "tar.gz",
			"users/u1/agents/a1/configs/c1/backup-20260329T003005Z.tar.gz"},
		{"prefix, UTC, dotted ids", "backapp/prod/", "6f1c0b7e-2a4d-4f8e-9c1a-0b2d3e4f5a6b", "laptop.home", "docs_v2", runTime, "tar.zst.age",
			"backapp/prod/users/6f1c0b7e-2a4d-4f8e-9c1a-0b2d3e4f5a6b/agents/laptop.home/configs/docs_v2/backup-20260329T003005Z.tar.zst.age"},
		{"every extension: tar", "", "u", "a", "c", runTime, "tar", "users/u/agents/a/configs/c/backup-20260329T003005Z.tar"},
		{"every extension: tar.zst", "", "u", "a", "c", runTime, "tar.zst", "users/u/agents/a/configs/c/backup-20260329T003005Z.tar.zst"},
		{"every extension: tar.age", "", "u", "a", "c", runTime, "tar.age", "users/u/agents/a/configs/c/backup-20260329T003005Z.tar.age"},
		{"every extension: tar.gz.age", "", "u", "a", "c", runTime, "tar.gz.age", "users/u/agents/a/configs/c/backup-20260329T003005Z.tar.gz.age"},
		{"128-char id", "", strings.Repeat("x", 128), "a", "c", runTime, "tar", "users/" + strings.Repeat("x", 128) + "/agents/a/configs/c/backup-20260329T003005Z.tar"},

		{"129-char id", "", strings.Repeat("x", 129), "a", "c", runTime, "tar", ""},
		{"empty user", "", "", "a", "c", runTime, "tar", ""},
		{"dot id", "", ".", "a", "c", runTime, "tar", ""},
		{"dotdot id", "", "u", "..", "c", runTime, "tar", ""},
		{"dotdot inside id", "", "u", "a..b", "c", runTime, "tar", ""},
		{"traversal in id", "", "u", "a", "../../other", runTime, "tar", ""},
		{"slash in id", "", "u/../v", "a", "c", runTime, "tar", ""},
		{"backslash in id", "", `u\v`, "a", "c", runTime, "tar", ""},
		{"url-encoded dots in id", "", "%2e%2e", "a", "c", runTime, "tar", ""},
		{"url-encoded slash in id", "", "u%2fv", "a", "c", runTime, "tar", ""},
		{"NUL in id", "", "u\x00", "a", "c", runTime, "tar", ""},
		{"newline in id", "", "u\nv", "a", "c", runTime, "tar", ""},
		{"leading dash", "", "-u", "a", "c", runTime, "tar", ""},
		{"unicode id", "", "ü", "a", "c", runTime, "tar", ""},
		{"space in id", "", "u v", "a", "c", runTime, "tar", ""},

		{"prefix without slash", "backups", "u", "a", "c", runTime, "tar", ""},
		{"absolute prefix", "/backups/", "u", "a", "c", runTime, "tar", ""},
		{"prefix is a slash", "/", "u", "a", "c", runTime, "tar", ""},
		{"prefix with dotdot", "backups/../", "u", "a", "c", runTime, "tar", ""},
		{"prefix ending in dotdot", "../", "u", "a", "c", runTime, "tar", ""},
		{"prefix with double slash", "a//b/", "u", "a", "c", runTime, "tar", ""},
		{"prefix url-encoded", "%2e%2e/", "u", "a", "c", runTime, "tar", ""},
		{"prefix with NUL", "a\x00/", "u", "a", "c", runTime, "tar", ""},
		{"prefix with backslash", `a\..\`, "u", "a", "c", runTime, "tar", ""},
		{"prefix too long", strings.Repeat("p/", 200), "u", "a", "c", runTime, "tar", ""},

		{"unknown extension", "", "u", "a", "c", runTime, "zip", ""},
		{"extension with dot", "", "u", "a", "c", runTime, ".tar", ""},
		{"extension traversal", "", "u", "a", "c", runTime, "tar/../../x", ""},
		{"empty extension", "", "u", "a", "c", runTime, "", ""},
		{"zero time", "", "u", "a", "c", time.Time{}, "tar", ""},
		{"time before 1970", "", "u", "a", "c", time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "tar", ""},
		{"time after 9999", "", "u", "a", "c", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "tar", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ArchiveKey(tt.prefix, tt.user, tt.agent, tt.conf, tt.t, tt.ext)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ArchiveKey = %q, want an error", got)
				}
				if !errors.Is(err, ErrInvalidArgument) {
					t.Errorf("error %v does not wrap ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ArchiveKey: %v", err)
			}
			if got != tt.want {
				t.Errorf("ArchiveKey = %q, want %q", got, tt.want)
			}
			if err := checkKey(got); err != nil {
				t.Errorf("the Store would refuse its own key: %v", err)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"users/u/agents/a/configs/c/backup-20260329T003005Z.tar", true},
		{"a", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a/../b", false},
		{"a/./b", false},
		{"..", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"\xff", false},
		{strings.Repeat("k", MaxKeyLength), true},
		{strings.Repeat("k", MaxKeyLength+1), false},
	}
	for _, tt := range tests {
		err := checkKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("checkKey(%q) = %v, want ok=%t", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("checkKey(%q) error %v does not wrap ErrInvalidArgument", tt.key, err)
		}
	}
}

func FuzzArchiveKey(f *testing.F) {
	seeds := []struct {
		prefix, user, agent, conf string
		unix                      int64
		ext                       string
	}{
		{"", "u1", "a1", "c1", runTime.Unix(), "tar.gz"},
		{"backapp/prod/", "6f1c0b7e", "laptop.home", "docs_v2", 0, "tar.zst.age"},
		{"../", "u", "a", "c", 1, "tar"},
		{"a//", "u", "a", "c", 1, "tar"},
		{"a/", "..", "a", "c", 1, "tar"},
		{"a/", "%2e%2e", "a.", "c", 1, "tar"},
		{"a/", "u", "a", "c\x00", 1, "tar"},
		{"", "u", "a", "c", -62135596800, "tar"},
		{"x./", "a.", ".b", "c", 253402300799, "tar.age"},
	}
	for _, s := range seeds {
		f.Add(s.prefix, s.user, s.agent, s.conf, s.unix, s.ext)
	}
	f.Fuzz(func(t *testing.T, prefix, user, agent, conf string, unix int64, ext string) {
		key, err := ArchiveKey(prefix, user, agent, conf, time.Unix(unix, 0), ext)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		switch {
		case strings.Contains(key, ".."):
			t.Fatalf("key %q contains \"..\"", key)
		case strings.Contains(key, "//"):
			t.Fatalf("key %q contains \"//\"", key)
		case strings.ContainsRune(key, 0):
			t.Fatalf("key %q contains NUL", key)
		case strings.ContainsAny(key, `%\`):
			t.Fatalf("key %q contains an escape character", key)
		case !strings.HasPrefix(key, prefix):
			t.Fatalf("key %q does not start with prefix %q", key, prefix)
		case strings.HasPrefix(key, "/"):
			t.Fatalf("key %q is absolute", key)
		case !strings.HasSuffix(key, "."+ext):
			t.Fatalf("key %q does not end with .%s", key, ext)
		case len(key) > MaxKeyLength:
			t.Fatalf("key is %d bytes", len(key))
		}
		if err := checkKey(key); err != nil {
			t.Fatalf("the Store would refuse key %q: %v", key, err)
		}
		// The ids are exactly the segments after their labels, so no id
		// spilled into another's place.
		rest := strings.TrimPrefix(key, prefix)
		want := "users/" + user + "/agents/" + agent + "/configs/" + conf + "/backup-"
		if !strings.HasPrefix(rest, want) || strings.Count(rest, "/") != 6 {
			t.Fatalf("key %q does not have the layout %s...", key, want)
		}
	})
}
