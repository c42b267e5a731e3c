package apikey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/apikey"
)

// Known answers computed independently (Python: base64.b32encode of the
// bytes and their big-endian zlib.crc32, lower-cased, unpadded; hashlib
// sha256 of the whole string). They pin the format: a change here breaks
// every key already handed out.
const (
	// 32 bytes 0x00 .. 0x1f.
	knownKey  = "bak_aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypzcjt6ri"
	knownHash = "338f7acaa4c15866cc1697d550ab5e1843676e45cbfcd9efebb631619958dc58"
	// 32 zero bytes.
	zeroKey = "bak_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabscsvvu"
)

func newKey(t testing.TB) apikey.Key {
	t.Helper()
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKnownAnswers(t *testing.T) {
	for _, s := range []string{knownKey, zeroKey} {
		k, err := apikey.Parse(s)
		if err != nil {
			t.Fatalf("Parse(known key): %v", err)
		}
		if string(k) != s {
			t.Errorf("Parse changed the key: got %d bytes", len(k))
		}
	}
	k, _ := apikey.Parse(knownKey)
	if got := k.Hash().String(); got != knownHash {
		t.Errorf("Hash = %s, want %s (SHA-256 of the whole key, prefix included)", got, knownHash)
	}
	if got := k.Prefix(); got != "bak_aaaq" {
		t.Errorf("Prefix = %q, want bak_aaaq", got)
	}
}

func TestNewRoundTrip(t *testing.T) {
	k := newKey(t)
	if len(k) != apikey.KeyLength || !strings.HasPrefix(string(k), apikey.KeyPrefix) {
		t.Fatalf("New made a key of %d bytes (want %d) or without the %s prefix", len(k), apikey.KeyLength, apikey.KeyPrefix)
	}
	parsed, err := apikey.Parse(string(k))
	if err != nil {
		t.Fatalf("Parse(New()): %v", err)
	}
	if parsed != k {
		t.Fatal("Parse(New()) returned a different key")
	}
	if !parsed.Hash().Equal(k.Hash()) {
		t.Fatal("the same key hashed differently")
	}
	if got, want := k.Prefix(), string(k[:apikey.DisplayPrefixLength]); got != want || len(got) != 8 {
		t.Fatalf("Prefix = %q, want the first 8 characters %q", got, want)
	}
}

func TestNewKeysAreDistinct(t *testing.T) {
	const n = 1000
	keys := make(map[apikey.Key]bool, n)
	hashes := make(map[apikey.Hash]bool, n)
	for range n {
		k := newKey(t)
		if _, err := apikey.Parse(string(k)); err != nil {
			t.Fatalf("Parse(New()): %v", err)
		}
		keys[k] = true
		hashes[k.Hash()] = true
	}
	if len(keys) != n || len(hashes) != n {
		t.Fatalf("%d keys made, %d distinct keys, %d distinct hashes", n, len(keys), len(hashes))
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	valid := knownKey
	body := valid[len(apikey.KeyPrefix):]
	tests := []struct {
		name   string
		in     string
		reason string
	}{
		{"empty", "", "empty"},
		{"prefix only", "bak_", "wrong length"},
		{"no prefix", body, "does not start with bak_"},
		{"other prefix", "bax_" + body, "does not start with bak_"},
		{"upper-case prefix", "BAK_" + body, "does not start with bak_"},
		{"upper case", "bak_" + strings.ToUpper(body), "character outside"},
		{"short by one", valid[:len(valid)-1], "wrong length"},
		{"long by one", valid + "a", "wrong length"},
		{"trailing newline", valid + "\n", "wrong length"},
		{"leading space", " " + valid, "does not start with bak_"},
		{"doubled", valid + valid, "wrong length"},
		{"digit 1", replaceAt(valid, 10, "1"), "character outside"},
		{"digit 0", replaceAt(valid, 10, "0"), "character outside"},
		{"digit 8", replaceAt(valid, 10, "8"), "character outside"},
		{"padding", replaceAt(valid, len(valid)-1, "="), "character outside"},
		{"NUL", replaceAt(valid, 20, "\x00"), "character outside"},
		{"two-byte rune, same length", valid[:20] + "é" + valid[22:], "character outside"},
		{"base64 character", replaceAt(valid, 30, "+"), "character outside"},
		{"flipped character", replaceAt(valid, 20, "z"), "checksum mismatch"},
		{"swapped neighbours", swap(valid, 12), "checksum mismatch"},
		// "ri" ends the known key; "rj" keeps every data bit and sets one
		// of the two unused bits, a second spelling of the same bytes.
		{"non-canonical last character", valid[:len(valid)-1] + "j", "checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := apikey.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse accepted a malformed key (%d bytes)", len(tt.in))
			}
			if k != "" {
				t.Errorf("Parse returned a non-empty key with its error")
			}
			if !errors.Is(err, apikey.ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not give the reason %q", err, tt.reason)
			}
			if len(tt.in) > 8 && strings.Contains(err.Error(), tt.in[4:]) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

// TestParseRejectsEverySingleTypo flips each character of a key to every
// other character of the alphabet: the checksum (or the canonical-encoding
// check for the last character) must catch every one.
func TestParseRejectsEverySingleTypo(t *testing.T) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for _, valid := range []string{knownKey, zeroKey, string(newKey(t))} {
		for i := len(apikey.KeyPrefix); i < len(valid); i++ {
			for _, c := range alphabet {
				if byte(c) == valid[i] {
					continue
				}
				typo := replaceAt(valid, i, string(c))
				if _, err := apikey.Parse(typo); !errors.Is(err, apikey.ErrMalformed) {
					t.Fatalf("Parse accepted %q at position %d of a valid key (err %v)", c, i, err)
				}
			}
		}
	}
}

func replaceAt(s string, i int, with string) string {
	return s[:i] + with + s[i+1:]
}

// swap exchanges s[i] and s[i+1], which must differ.
func swap(s string, i int) string {
	b := []byte(s)
	if b[i] == b[i+1] {
		panic("swap of equal characters changes nothing")
	}
	b[i], b[i+1] = b[i+1], b[i]
	return string(b)
}

// secretWindows are the 8-character pieces of the key's secret part
// beyond what Prefix shows: finding any of them in an output means the key
// leaked. (A random 8-character base32 string turns up by chance with
// odds of 1 in 2^40.)
func secretWindows(k apikey.Key) []string {
	s := string(k)
	var w []string
	for i := apikey.DisplayPrefixLength; i+8 <= len(s); i++ {
		w = append(w, s[i:i+8])
	}
	return w
}

func assertRedacted(t *testing.T, what, out string, k apikey.Key) {
	t.Helper()
	for _, w := range secretWindows(k) {
		if strings.Contains(out, w) {
			t.Fatalf("%s leaked the key: %q", what, out)
		}
	}
	if !strings.Contains(out, k.Prefix()+"…") {
		t.Errorf("%s = %q, want the redacted form %q in it", what, out, k.Prefix()+"…")
	}
}

type holder struct {
	Name string
	Key  apikey.Key
}

func TestRedactionFmt(t *testing.T) {
	k := newKey(t)
	h := holder{Name: "laptop", Key: k}
	for _, format := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x", "%X", "%d", "%20s", "%-20v"} {
		assertRedacted(t, "Sprintf("+format+", key)", fmt.Sprintf(format, k), k)
		assertRedacted(t, "Sprintf("+format+", &key)", fmt.Sprintf(format, &k), k)
		assertRedacted(t, "Sprintf("+format+", struct)", fmt.Sprintf(format, h), k)
	}
	assertRedacted(t, "Sprint", fmt.Sprint(k), k)
	// Precision applies to the redacted form, never to the secret.
	if got := fmt.Sprintf("%.6s", k); got != "bak_"+string(k[4:6]) {
		t.Errorf("Sprintf(%%.6s) = %q, want the first 6 characters of the redacted form", got)
	}
	if got := fmt.Sprintf("[%12v]", k); got != "[   "+k.Prefix()+"…]" {
		t.Errorf("Sprintf(%%12v) = %q, want the redacted form padded to 12 runes", got)
	}
	assertRedacted(t, "Sprintln", fmt.Sprintln("key", k), k)
	assertRedacted(t, "map", fmt.Sprintf("%v", map[string]apikey.Key{"k": k}), k)
	assertRedacted(t, "slice", fmt.Sprintf("%v", []apikey.Key{k}), k)
	assertRedacted(t, "Errorf", fmt.Errorf("while using key %v: %w", k, errors.New("boom")).Error(), k)
	assertRedacted(t, "String", k.String(), k)
}

func TestRedactionSlog(t *testing.T) {
	k := newKey(t)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(newHandler(&buf))
			log.Info("agent request", "key", k)
			log.Info("agent request", slog.Any("key", k))
			log.Info("agent request", slog.Group("auth", "key", k))
			log.Info("agent request", "holder", holder{Name: "laptop", Key: k})
			log.Info("agent request", "holder", &holder{Name: "laptop", Key: k})
			log.With("key", k).Info("agent request")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 6 {
				t.Fatalf("got %d log lines, want 6:\n%s", len(lines), buf.String())
			}
			for _, line := range lines {
				assertRedacted(t, name+" handler", line, k)
			}
		})
	}
}

func TestRedactionJSON(t *testing.T) {
	k := newKey(t)
	for name, v := range map[string]any{"key": k, "struct": holder{Key: k}, "map": map[string]apikey.Key{"k": k}} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s): %v", name, err)
		}
		assertRedacted(t, "json.Marshal("+name+")", string(out), k)
	}
}

func TestRedactionOfMalformedKeys(t *testing.T) {
	// Something that is not a key (a password pasted into the wrong field,
	// a truncated key) shows nothing at all, not even a prefix.
	for _, s := range []string{"", "hunter2", knownKey[:40], knownKey + "x", "BAK_" + knownKey[4:]} {
		k := apikey.Key(s)
		if k.Prefix() != "" {
			t.Errorf("Prefix of a %d-byte non-key = %q, want empty", len(s), k.Prefix())
		}
		for _, out := range []string{k.String(), fmt.Sprintf("%v|%q|%#v", k, k, k), k.LogValue().String()} {
			if s != "" && strings.Contains(out, s) || !strings.Contains(out, "[redacted]") {
				t.Errorf("non-key of %d bytes printed as %q", len(s), out)
			}
		}
	}
}

func TestHashEqual(t *testing.T) {
	a, b := newKey(t), newKey(t)
	ha := a.Hash()
	flipFirst, flipLast := ha, ha
	flipFirst[0] ^= 1
	flipLast[len(flipLast)-1] ^= 0x80
	tests := []struct {
		name string
		x, y apikey.Hash
		want bool
	}{
		{"same key", ha, a.Hash(), true},
		{"other key", ha, b.Hash(), false},
		{"first byte differs", ha, flipFirst, false},
		{"last byte differs", ha, flipLast, false},
		{"zero hashes", apikey.Hash{}, apikey.Hash{}, true},
		{"zero and real", apikey.Hash{}, ha, false},
	}
	for _, tt := range tests {
		if got := tt.x.Equal(tt.y); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.y.Equal(tt.x); got != tt.want {
			t.Errorf("%s (reversed): Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Hashing must cover the prefix: the same random part under another
	// prefix is another hash.
	if apikey.Key("bak_x").Hash().Equal(apikey.Key("bax_x").Hash()) {
		t.Error("keys differing only in the prefix hash the same")
	}
}

// BenchmarkParseAndHash is the server's per-request cost of checking a key
// before the lookup by hash. Target: at most 1 µs.
func BenchmarkParseAndHash(b *testing.B) {
	k := newKey(b)
	s := string(k)
	stored := k.Hash()
	b.ReportAllocs()
	for b.Loop() {
		parsed, err := apikey.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		if !parsed.Hash().Equal(stored) {
			b.Fatal("hash mismatch")
		}
	}
}
