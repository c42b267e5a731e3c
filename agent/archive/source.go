package archive

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// resolvedSource is a Source checked before any byte is written, so a
// missing path fails the run before the upload starts.
type resolvedSource struct {
	name   string // top-level archive folder (or file) name
	path   string // absolute filesystem path, ~ expanded
	info   fs.FileInfo
	filter filter
}

// resolveSources expands paths, stats every root (following a root that is
// a symlink: the user named it as the thing to back up) and gives each
// source a unique archive name.
func resolveSources(sources []Source) ([]resolvedSource, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("%w: no sources", ErrInvalidSource)
	}
	used := make(map[string]bool, len(sources))
	out := make([]resolvedSource, 0, len(sources))
	for i, src := range sources {
		p, err := expandPath(src.Path)
		if err != nil {
			return nil, fmt.Errorf("while resolving source %d: %w", i+1, err)
		}
		name, err := sourceName(src.Name, p)
		if err != nil {
			return nil, fmt.Errorf("while naming source %q: %w", src.Path, err)
		}
		// A root that is a symlink is followed, once, here: the reader
		// opens files without following links.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("while opening source %q (%s): %w", name, src.Path, err)
		}
		flt, err := newFilter(src.Include, src.Exclude)
		if err != nil {
			return nil, fmt.Errorf("while reading source %q: %w", name, err)
		}
		unique := name
		for n := 2; used[unique]; n++ {
			unique = name + "-" + strconv.Itoa(n)
		}
		used[unique] = true
		out = append(out, resolvedSource{name: unique, path: p, info: info, filter: flt})
	}
	return out, nil
}

// expandPath turns "~" and "~/x" into the home directory and requires an
// absolute path: a relative one would depend on the daemon's working
// directory.
func expandPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty path", ErrInvalidSource)
	}
	if p == "~" || strings.HasPrefix(p, "~/") || (filepath.Separator == '\\' && strings.HasPrefix(p, `~\`)) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("while expanding %q: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%w: path %q is not absolute", ErrInvalidSource, p)
	}
	return filepath.Clean(p), nil
}

// sourceName validates an explicit name or derives one from the path.
func sourceName(name, p string) (string, error) {
	if name != "" {
		if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
			return "", fmt.Errorf("%w: name %q must be a single path element", ErrInvalidSource, name)
		}
		return name, nil
	}
	base := filepath.Base(p)
	base = strings.Map(func(r rune) rune {
		switch r {
		case '/', '\\', ':', 0:
			return '_'
		}
		return r
	}, base)
	if base == "" || base == "." || base == ".." || strings.Trim(base, "_") == "" {
		// "/" or "C:\": the whole filesystem.
		return "root", nil
	}
	return base, nil
}
