package archive

import (
	"errors"
	"strings"
	"testing"
)

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"*.txt", "a.txt", true},
		{"*.txt", "dir/a.txt", false}, // anchored at the root
		{"**/*.txt", "a.txt", true},   // ** matches zero folders
		{"**/*.txt", "a/b/c/d.txt", true},
		{"**/*.txt", "a/b/c/d.txt.bak", false},
		{"docs/**", "docs", true},
		{"docs/**", "docs/a/b", true},
		{"docs/**", "documents/a", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"a/**/**/b", "a/x/b", true},
		{"**", "anything/at/all", true},
		{"/docs/", "docs", true},   // leading and trailing slashes ignored
		{"./docs", "docs", true},   // leading ./ ignored
		{"d?c[s]", "docs", true},   // path.Match syntax per segment
		{"d?c[^s]", "docs", false}, // path.Match negates with ^, not !
		{"node_modules", "node_modules", true},
		{"node_modules", "a/node_modules", false},
		{"**/node_modules", "a/b/node_modules", true},
		{"*", "bad-\xff-name", true}, // non-UTF-8 names match like any other
		{"bad-\xff-*", "bad-\xff-name", true},
		{"a*b", "a/b", false}, // * stays inside one segment
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.path, func(t *testing.T) {
			ps, err := parsePatterns([]string{tt.pattern})
			if err != nil {
				t.Fatal(err)
			}
			if got := ps[0].matches(strings.Split(tt.path, "/")); got != tt.want {
				t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

func TestPatternMayMatchBelow(t *testing.T) {
	tests := []struct {
		pattern string
		dir     string
		want    bool
	}{
		{"docs/**", "docs", true},
		{"docs/**", "src", false},
		{"docs/img/*.png", "docs", true},
		{"docs/img/*.png", "docs/img", true},
		{"docs/img/*.png", "docs/other", false},
		{"docs/img/*.png", "docs/img/deeper", false},
		{"**/*.go", "any/where", true},
		{"*.txt", "dir", false}, // only top-level files
		{"src", "src", false},   // the folder itself matches; nothing below needs the prefix test
	}
	for _, tt := range tests {
		ps, err := parsePatterns([]string{tt.pattern})
		if err != nil {
			t.Fatal(err)
		}
		if got := ps[0].mayMatchBelow(strings.Split(tt.dir, "/")); got != tt.want {
			t.Errorf("%q may match below %q = %v, want %v", tt.pattern, tt.dir, got, tt.want)
		}
	}
}

func TestParsePatternsRejects(t *testing.T) {
	for _, p := range []string{"", "/", "./", "a//b", "a/../b", "[a-", "a/./b"} {
		if _, err := parsePatterns([]string{p}); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("parsePatterns(%q) = %v, want ErrInvalidPattern", p, err)
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := newFilter([]string{"docs/**", "*.md"}, []string{"**/*.tmp", "docs/private"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path               string
		included, excluded bool
	}{
		{"docs/a.txt", true, false},
		{"docs/a.tmp", true, true}, // exclude wins
		{"docs/private", true, true},
		{"README.md", true, false},
		{"src/main.go", false, false},
	}
	for _, tt := range tests {
		rel := strings.Split(tt.path, "/")
		if got := f.included(rel); got != tt.included {
			t.Errorf("included(%q) = %v, want %v", tt.path, got, tt.included)
		}
		if got := f.excluded(rel); got != tt.excluded {
			t.Errorf("excluded(%q) = %v, want %v", tt.path, got, tt.excluded)
		}
	}
	none, err := newFilter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !none.included([]string{"x"}) || none.excluded([]string{"x"}) {
		t.Error("without patterns everything is included and nothing excluded")
	}
}
