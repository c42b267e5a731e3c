package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
)

const (
	// KeyPrefix starts every key. It names the product so secret scanners
	// and people can tell what a leaked string is.
	KeyPrefix = "bak_"

	// KeyLength is the length of a key in bytes (all ASCII): the prefix and
	// the base32 encoding of 32 random bytes and a 4-byte checksum
	// (36 bytes -> 288 bits -> 58 characters of 5 bits, the last 2 bits
	// zero).
	KeyLength = len(KeyPrefix) + encodedLength

	// DisplayPrefixLength is how much of a key Prefix shows: the fixed
	// prefix and 4 characters (20 bits) of the random part, enough to tell
	// a user's keys apart and far too little to help guess one.
	DisplayPrefixLength = len(KeyPrefix) + 4

	randomBytes   = 32
	checksumBytes = 4
	rawBytes      = randomBytes + checksumBytes
	encodedLength = (rawBytes*8 + 4) / 5 // 58

	// alphabet is RFC 4648 base32 in lower case: no 0/1/8/9, so no O/0 or
	// l/1 confusion when a key is read aloud or retyped.
	alphabet = "abcdefghijklmnopqrstuvwxyz234567"

	// redacted is what a Key that does not even look like a key prints as.
	redacted = "[redacted]"
)

// ErrMalformed is returned (wrapped, with a reason) by Parse for any string
// that is not a well-formed key. The reason never contains the input.
var ErrMalformed = errors.New("malformed API key")

// Key is an agent API key: the secret itself. Its printed forms are
// redacted (see the package comment); use string(k) only to send the key
// or to show it to its owner once.
type Key string

// Hash is the SHA-256 of a key: what the server stores and looks keys up by.
type Hash [sha256.Size]byte

// New makes a key from 256 fresh random bits.
func New() (Key, error) {
	var random [randomBytes]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("while reading random bytes for an API key: %w", err)
	}
	return encode(random), nil
}

// encode appends the checksum of random and encodes both.
func encode(random [randomBytes]byte) Key {
	var raw [rawBytes]byte
	copy(raw[:], random[:])
	binary.BigEndian.PutUint32(raw[randomBytes:], crc32.ChecksumIEEE(random[:]))
	enc := base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)
	return Key(KeyPrefix + enc.EncodeToString(raw[:]))
}

// Parse checks that s is a well-formed key: the prefix, the exact length,
// the alphabet (lower case only, no surrounding space), the checksum and a
// canonical encoding. Every failure wraps ErrMalformed with a reason that
// does not repeat s. A key that parses may still be unknown or revoked:
// Parse saves a lookup for typos, it does not authenticate.
func Parse(s string) (Key, error) {
	switch {
	case s == "":
		return "", malformed("empty")
	case !strings.HasPrefix(s, KeyPrefix):
		return "", malformed("does not start with " + KeyPrefix)
	case len(s) != KeyLength:
		return "", malformed(fmt.Sprintf("wrong length %d (want %d)", len(s), KeyLength))
	}
	raw, ok := decode(s[len(KeyPrefix):])
	if !ok {
		return "", malformed("character outside a-z, 2-7")
	}
	if crc32.ChecksumIEEE(raw[:randomBytes]) != binary.BigEndian.Uint32(raw[randomBytes:]) || !canonical(s) {
		return "", malformed("checksum mismatch (mistyped or truncated?)")
	}
	return Key(s), nil
}

func malformed(reason string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, reason)
}

// decode turns the 58 characters after the prefix into the 36 raw bytes.
// It is written out rather than using encoding/base32 because that decoder
// accepts non-zero padding bits, which would let two strings decode to the
// same key; canonical rejects those.
func decode(body string) (raw [rawBytes]byte, ok bool) {
	var acc uint64
	var bits uint
	n := 0
	for i := 0; i < len(body); i++ {
		v, ok := value(body[i])
		if !ok {
			return raw, false
		}
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			raw[n] = byte(acc >> bits)
			n++
		}
	}
	return raw, true
}

// canonical reports whether the 2 bits of the last character that encode
// nothing are zero, as the encoder writes them.
func canonical(s string) bool {
	const unused = encodedLength*5 - rawBytes*8 // 2
	v, _ := value(s[len(s)-1])
	return v&(1<<unused-1) == 0
}

// value is the 5-bit value of one alphabet character.
func value(c byte) (byte, bool) {
	switch {
	case c >= 'a' && c <= 'z':
		return c - 'a', true
	case c >= '2' && c <= '7':
		return c - '2' + 26, true
	}
	return 0, false
}

// Hash is the SHA-256 of the whole key, prefix included.
func (k Key) Hash() Hash {
	// The server hashes on every request: hashing a copy on the stack
	// saves the allocation []byte(k) makes for strings over 32 bytes.
	var buf [KeyLength]byte
	if len(k) == KeyLength {
		copy(buf[:], k)
		return sha256.Sum256(buf[:])
	}
	return sha256.Sum256([]byte(k))
}

// Prefix is the non-secret start of a well-formed key ("bak_" and 4
// characters) for the dashboard's key list and for log lines; it is ""
// when k is not shaped like a key, so that nothing of a mistyped secret or
// some other string is shown.
func (k Key) Prefix() string {
	if len(k) != KeyLength || !strings.HasPrefix(string(k), KeyPrefix) {
		return ""
	}
	return string(k[:DisplayPrefixLength])
}

// String is the redacted form: Prefix followed by "…", or "[redacted]".
// It is the same string the dashboard shows, so a log line can be matched
// to a key in the list.
func (k Key) String() string {
	if p := k.Prefix(); p != "" {
		return p + "…"
	}
	return redacted
}

// Format makes every fmt verb print the redacted form: %q quotes it and
// every other verb (%v, %+v, %#v, %s, %x, %d ...) prints it as %s would,
// keeping width and flags. Without it %#v and %x would print the secret.
func (k Key) Format(f fmt.State, verb rune) {
	if verb != 'q' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), k.String())
}

// LogValue makes slog print the redacted form with every handler.
func (k Key) LogValue() slog.Value {
	return slog.StringValue(k.String())
}

// MarshalText makes encoding/json, slog's JSON handler (for a Key inside a
// struct) and other text encoders write the redacted form. A Key is never
// meant to be serialised: wire types that carry one write string(k)
// explicitly.
func (k Key) MarshalText() ([]byte, error) {
	return []byte(k.String()), nil
}

// Equal compares two hashes in constant time, so the time taken says
// nothing about how many leading bytes matched.
func (h Hash) Equal(other Hash) bool {
	return subtle.ConstantTimeCompare(h[:], other[:]) == 1
}

// String is the hash in lower-case hex. A hash is not a secret: it cannot
// be turned back into the key nor used to authenticate.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// Compile-time checks that the redaction hooks have the signatures fmt,
// slog and encoding look for; a typo would silently disable them.
var (
	_ fmt.Stringer           = Key("")
	_ fmt.Formatter          = Key("")
	_ slog.LogValuer         = Key("")
	_ encoding.TextMarshaler = Key("")
)
