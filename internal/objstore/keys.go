package objstore

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// MaxKeyLength is S3's limit on an object key, in bytes.
	MaxKeyLength = 1024
	// archiveTimeLayout is the run time in archive keys: UTC, sortable,
	// no characters that need escaping.
	archiveTimeLayout = "20060102T150405Z"
	// maxPrefixLength leaves room in MaxKeyLength for the ids.
	maxPrefixLength = 256
)

// archiveExts are the archive formats the agent writes: tar, compressed with
// gzip or zstd or not, encrypted with age or not.
var archiveExts = map[string]bool{
	"tar":         true,
	"tar.gz":      true,
	"tar.zst":     true,
	"tar.age":     true,
	"tar.gz.age":  true,
	"tar.zst.age": true,
}

// idRE is what an id in a key may look like. It allows dots (Kubernetes
// names have them) but not two in a row; see checkID.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// prefixSegmentRE is one "/"-separated segment of a key prefix. It is
// deliberately narrow: no "%" (URL-encoded tricks), no "\", no spaces, no
// control characters, nothing that S3 or a proxy might decode or normalise.
var prefixSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ArchiveKey returns the object key of the archive of one run:
//
//	{prefix}users/{userID}/agents/{agentID}/configs/{configID}/backup-{t UTC 20060102T150405Z}.{ext}
//
// The ids are used verbatim and must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$
// with no "..": they come from users and API requests, and a "/" or ".." in
// one would let a run write into another user's tree. prefix is "" or
// relative segments like the ids ending in "/". ext is one of tar, tar.gz,
// tar.zst, tar.age, tar.gz.age, tar.zst.age. t must be a real time (not the
// zero time) between the years 1970 and 9999. Anything else is an error
// wrapping ErrInvalidArgument.
func ArchiveKey(prefix, userID, agentID, configID string, t time.Time, ext string) (string, error) {
	if err := checkPrefix(prefix); err != nil {
		return "", fmt.Errorf("while building an archive key: %w", err)
	}
	for _, id := range []struct{ name, value string }{
		{"user id", userID}, {"agent id", agentID}, {"config id", configID},
	} {
		if err := checkID(id.name, id.value); err != nil {
			return "", fmt.Errorf("while building an archive key: %w", err)
		}
	}
	if !archiveExts[ext] {
		return "", fmt.Errorf("while building an archive key: %w: extension %q is not one of tar, tar.gz, tar.zst, tar.age, tar.gz.age, tar.zst.age", ErrInvalidArgument, ext)
	}
	if t.IsZero() {
		return "", fmt.Errorf("while building an archive key: %w: the run time is not set", ErrInvalidArgument)
	}
	t = t.UTC()
	if y := t.Year(); y < 1970 || y > 9999 {
		return "", fmt.Errorf("while building an archive key: %w: run time %s is out of range", ErrInvalidArgument, t.Format(time.RFC3339))
	}
	key := prefix + "users/" + userID + "/agents/" + agentID + "/configs/" + configID +
		"/backup-" + t.Format(archiveTimeLayout) + "." + ext
	if len(key) > MaxKeyLength {
		return "", fmt.Errorf("while building an archive key: %w: key would be %d bytes, S3 allows %d", ErrInvalidArgument, len(key), MaxKeyLength)
	}
	return key, nil
}

func checkID(what, id string) error {
	if !idRE.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("%w: %s %q must be 1-128 letters, digits, '.', '_' or '-', start with a letter or digit and not contain \"..\"", ErrInvalidArgument, what, id)
	}
	return nil
}

func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > maxPrefixLength {
		return fmt.Errorf("%w: prefix is longer than %d bytes", ErrInvalidArgument, maxPrefixLength)
	}
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q must end with \"/\"", ErrInvalidArgument, prefix)
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(prefix, "/"), "/") {
		if !prefixSegmentRE.MatchString(seg) || strings.Contains(seg, "..") {
			return fmt.Errorf("%w: prefix %q must be relative segments of letters, digits, '.', '_' or '-' (no \"..\", no \"//\", no leading \"/\")", ErrInvalidArgument, prefix)
		}
	}
	return nil
}

// checkKey is the sanity check on keys passed to Store methods. Keys should
// come from ArchiveKey; this only refuses what no archive key looks like and
// what could address something else once a proxy or S3 normalises the path.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty object key", ErrInvalidArgument)
	case len(key) > MaxKeyLength:
		return fmt.Errorf("%w: object key is longer than %d bytes", ErrInvalidArgument, MaxKeyLength)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: object key is not valid UTF-8", ErrInvalidArgument)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/"):
		return fmt.Errorf("%w: object key %q must not start or end with \"/\"", ErrInvalidArgument, key)
	case strings.Contains(key, "//"):
		return fmt.Errorf("%w: object key %q contains \"//\"", ErrInvalidArgument, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: object key %q contains a control character", ErrInvalidArgument, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: object key %q contains a %q segment", ErrInvalidArgument, key, seg)
		}
	}
	return nil
}
