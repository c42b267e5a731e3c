package apikey

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is one of the
// fixed reasons (so no input is ever echoed), and that every accepted
// string is exactly what the encoder writes for the bytes it decodes to:
// one key, one spelling.
func FuzzParse(f *testing.F) {
	reasons := regexp.MustCompile(`^malformed API key: (empty|does not start with bak_|wrong length \d+ \(want 62\)|character outside a-z, 2-7|checksum mismatch \(mistyped or truncated\?\))$`)
	valid := "bak_aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypzcjt6ri"
	for _, s := range []string{
		valid, "", "bak_", "bak_a", valid[:61], valid + "a", strings.ToUpper(valid),
		valid[:61] + "j", valid[:10] + "1" + valid[11:], valid[:20] + "é" + valid[22:],
		"bak_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabscsvvu",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if !reasons.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of the fixed reasons", err)
			}
			if k != "" {
				t.Fatal("a key was returned with an error")
			}
			return
		}
		if string(k) != s {
			t.Fatal("Parse returned something other than its input")
		}
		raw, ok := decode(s[len(KeyPrefix):])
		if !ok {
			t.Fatal("accepted key does not decode")
		}
		var random [randomBytes]byte
		copy(random[:], raw[:randomBytes])
		if again := encode(random); string(again) != s {
			t.Fatal("accepted key does not re-encode to itself")
		}
		if strings.Contains(k.String(), s[DisplayPrefixLength:]) {
			t.Fatal("String shows the secret part")
		}
	})
}
