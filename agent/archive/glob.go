package archive

import (
	"fmt"
	"path"
	"strings"
)

// The matcher is our own rather than github.com/bmatcuk/doublestar: the
// semantics we need fit in a page (whole-segment "**" plus path.Match for
// each segment), it works on raw bytes so non-UTF-8 file names match like
// any other, it adds the prefix test that lets the walk prune directories
// no include pattern can reach, and it keeps the laptop binary free of one
// more dependency.

// pattern is one include or exclude glob, split on "/".
type pattern struct {
	text string
	segs []string
}

// parsePatterns validates and normalises globs relative to a source root:
// forward slashes only, a leading "/" or "./" and a trailing "/" are
// ignored, "**" as a whole segment matches any number of folders (zero
// included), and each other segment is a path.Match pattern (*, ?, [...]).
// A pattern without "**" is anchored at the source root: "*.log" matches
// only top-level files; "**/*.log" matches at any depth.
func parsePatterns(globs []string) ([]pattern, error) {
	out := make([]pattern, 0, len(globs))
	for _, g := range globs {
		p := g
		for strings.HasPrefix(p, "./") {
			p = p[2:]
		}
		p = strings.Trim(p, "/")
		if p == "" || p == "." {
			return nil, fmt.Errorf("%w: empty glob %q", ErrInvalidPattern, g)
		}
		segs := strings.Split(p, "/")
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				return nil, fmt.Errorf("%w: glob %q has an empty, \".\" or \"..\" segment", ErrInvalidPattern, g)
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("%w: glob %q: %w", ErrInvalidPattern, g, err)
			}
		}
		out = append(out, pattern{text: g, segs: segs})
	}
	return out, nil
}

// matches reports whether the relative path (split on "/") matches.
func (p pattern) matches(rel []string) bool {
	return matchSegs(p.segs, rel)
}

// mayMatchBelow reports whether some path strictly below the directory dir
// could match, so the walk can skip directories no include pattern reaches.
func (p pattern) mayMatchBelow(dir []string) bool {
	segs := p.segs
	for _, d := range dir {
		if len(segs) == 0 {
			return false
		}
		if segs[0] == "**" {
			return true
		}
		if ok, _ := path.Match(segs[0], d); !ok {
			return false
		}
		segs = segs[1:]
	}
	return len(segs) > 0
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		// Patterns were validated by parsePatterns, so Match cannot fail.
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// filter applies one source's include and exclude patterns.
type filter struct {
	include, exclude []pattern
}

func newFilter(include, exclude []string) (filter, error) {
	inc, err := parsePatterns(include)
	if err != nil {
		return filter{}, fmt.Errorf("while parsing include patterns: %w", err)
	}
	exc, err := parsePatterns(exclude)
	if err != nil {
		return filter{}, fmt.Errorf("while parsing exclude patterns: %w", err)
	}
	return filter{include: inc, exclude: exc}, nil
}

// excluded reports whether rel matches an exclude pattern. Exclusion wins
// over inclusion, and an excluded directory is not descended.
func (f filter) excluded(rel []string) bool {
	for _, p := range f.exclude {
		if p.matches(rel) {
			return true
		}
	}
	return false
}

// included reports whether rel matches an include pattern, or there are
// none. Everything below an included directory is included too.
func (f filter) included(rel []string) bool {
	if len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if p.matches(rel) {
			return true
		}
	}
	return false
}

// worthDescending reports whether some include pattern may match below
// the (not itself included) directory rel.
func (f filter) worthDescending(rel []string) bool {
	for _, p := range f.include {
		if p.mayMatchBelow(rel) {
			return true
		}
	}
	return false
}
