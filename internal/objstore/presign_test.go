package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	offlineAccessKey = "AKIDOFFLINEEXAMPLE"
	offlineSecret    = "offline-secret-do-not-print"
)

// offlineStore signs URLs for an endpoint nothing listens on: pre-signing
// and argument checks never contact S3, and if one did, the test would see a
// connection error instead of the error it expects.
func offlineStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(Config{
		Endpoint:        "http://127.0.0.1:1",
		Bucket:          "backapp-offline",
		AccessKeyID:     offlineAccessKey,
		SecretAccessKey: offlineSecret,
		ForcePathStyle:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const testKey = "users/u/agents/a/configs/c/backup-20260329T003005Z.tar.gz"

func TestPresignedURLNeverPrintsItsSignature(t *testing.T) {
	s := offlineStore(t)
	ctx := context.Background()
	part, err := s.PresignPart(ctx, testKey, "upload-id", 7, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	put, err := s.PresignPut(ctx, testKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get, err := s.PresignGet(ctx, testKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []PresignedURL{part, put, get} {
		t.Run(p.Method, func(t *testing.T) {
			u, err := url.Parse(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			sig := u.Query().Get("X-Amz-Signature")
			// Without these the checks below would pass vacuously.
			if sig == "" || !strings.Contains(p.URL, offlineAccessKey) {
				t.Fatalf("URL has no signature or credential to leak: %s", RedactURL(p.URL))
			}

			var jsonLog, textLog bytes.Buffer
			slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("presigned", "url", p, "ptr", &p)
			slog.New(slog.NewTextHandler(&textLog, nil)).Info("presigned", slog.Any("url", p))
			renderings := map[string]string{
				"String":    p.String(),
				"%v":        fmt.Sprintf("%v", p),
				"%+v":       fmt.Sprintf("%+v", p),
				"%s":        fmt.Sprintf("%s", p), //nolint:staticcheck // the %s rendering itself is under test
				"%q":        fmt.Sprintf("%q", p),
				"%#v":       fmt.Sprintf("%#v", p),
				"pointer":   fmt.Sprintf("%v", &p),
				"in slice":  fmt.Sprintf("%v", []PresignedURL{p}),
				"error":     fmt.Errorf("while uploading with %v: boom", p).Error(),
				"slog JSON": jsonLog.String(),
				"slog text": textLog.String(),
			}
			for how, out := range renderings {
				for _, secret := range []string{"X-Amz-Signature", sig, "X-Amz-Credential", offlineAccessKey} {
					if strings.Contains(out, secret) {
						t.Errorf("%s rendering contains %q: %s", how, secret, out)
					}
				}
				if !strings.Contains(out, "backup-20260329T003005Z.tar.gz") {
					t.Errorf("%s rendering does not say which object: %s", how, out)
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=AKID", "https://s3.example/b/k?[redacted]"},
		{"https://user:pw@s3.example/b/k#frag", "https://s3.example/b/k"},
		{"http://127.0.0.1:9000/b/a%20b?x=1", "http://127.0.0.1:9000/b/a%20b?[redacted]"},
		{"http://[::1]:namedport/x?X-Amz-Signature=abc", "[unparseable URL redacted]"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPresignedURLFields(t *testing.T) {
	s := offlineStore(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		presign    func(ttl time.Duration) (PresignedURL, error)
		ttl        time.Duration
		wantMethod string
		wantQuery  []string
	}{
		{"part", func(ttl time.Duration) (PresignedURL, error) {
			return s.PresignPart(ctx, testKey, "the-upload", 10000, ttl)
		}, time.Hour, "PUT", []string{"partNumber=10000", "uploadId=the-upload"}},
		{"put", func(ttl time.Duration) (PresignedURL, error) { return s.PresignPut(ctx, testKey, ttl) }, time.Second, "PUT", nil},
		{"get, ttl truncated to seconds", func(ttl time.Duration) (PresignedURL, error) { return s.PresignGet(ctx, testKey, ttl) }, 90*time.Second + 700*time.Millisecond, "GET", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			p, err := tt.presign(tt.ttl)
			if err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			ttl := tt.ttl.Truncate(time.Second)
			if p.Method != tt.wantMethod {
				t.Errorf("Method = %q, want %q", p.Method, tt.wantMethod)
			}
			if p.Expires.Before(before.Add(ttl)) || p.Expires.After(after.Add(ttl)) {
				t.Errorf("Expires = %s, want signing time + %s (signed between %s and %s)", p.Expires, ttl, before, after)
			}
			u, err := url.Parse(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if got, want := q.Get("X-Amz-Expires"), fmt.Sprint(int(ttl.Seconds())); got != want {
				t.Errorf("X-Amz-Expires = %s, want %s", got, want)
			}
			if got := q.Get("X-Amz-SignedHeaders"); got != "host" {
				t.Errorf("signed headers = %q, want only host (so a plain request works)", got)
			}
			if len(p.Headers) != 0 {
				t.Errorf("Headers = %v, want none", p.Headers)
			}
			if u.Path != "/backapp-offline/"+testKey {
				t.Errorf("path = %q", u.Path)
			}
			for _, want := range tt.wantQuery {
				if !strings.Contains(u.RawQuery, want) {
					t.Errorf("query lacks %s", want)
				}
			}
			for name := range q {
				if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum") || strings.EqualFold(name, "x-amz-sdk-checksum-algorithm") {
					t.Errorf("query has %s: a plain PUT of any body would be refused", name)
				}
			}
		})
	}
}

// TestArgumentsCheckedBeforeS3 checks that mistakes are reported as
// ErrInvalidArgument without a round trip (the offline store's endpoint
// would turn any request into a connection error).
func TestArgumentsCheckedBeforeS3(t *testing.T) {
	s := offlineStore(t)
	ctx := context.Background()
	goodParts := []CompletedPart{{Number: 1, ETag: `"a"`}, {Number: 2, ETag: "b"}}
	tests := []struct {
		name string
		call func() error
	}{
		{"part ttl zero", func() error { _, err := s.PresignPart(ctx, testKey, "u", 1, 0); return err }},
		{"part ttl under a second", func() error { _, err := s.PresignPart(ctx, testKey, "u", 1, 999*time.Millisecond); return err }},
		{"part ttl over an hour", func() error { _, err := s.PresignPart(ctx, testKey, "u", 1, time.Hour+time.Second); return err }},
		{"part ttl negative", func() error { _, err := s.PresignPart(ctx, testKey, "u", 1, -time.Minute); return err }},
		{"part number 0", func() error { _, err := s.PresignPart(ctx, testKey, "u", 0, time.Minute); return err }},
		{"part number 10001", func() error { _, err := s.PresignPart(ctx, testKey, "u", 10001, time.Minute); return err }},
		{"part number negative", func() error { _, err := s.PresignPart(ctx, testKey, "u", -1, time.Minute); return err }},
		{"part no upload id", func() error { _, err := s.PresignPart(ctx, testKey, "", 1, time.Minute); return err }},
		{"part bad key", func() error { _, err := s.PresignPart(ctx, "../etc", "u", 1, time.Minute); return err }},
		{"put ttl over an hour", func() error { _, err := s.PresignPut(ctx, testKey, 2*time.Hour); return err }},
		{"put empty key", func() error { _, err := s.PresignPut(ctx, "", time.Minute); return err }},
		{"get ttl over an hour", func() error { _, err := s.PresignGet(ctx, testKey, time.Hour+time.Nanosecond); return err }},
		{"get key with NUL", func() error { _, err := s.PresignGet(ctx, "a\x00b", time.Minute); return err }},
		{"complete no parts", func() error { _, err := s.Complete(ctx, testKey, "u", nil, 1); return err }},
		{"complete descending", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 2, ETag: "a"}, {Number: 1, ETag: "b"}}, 1)
			return err
		}},
		{"complete duplicate", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 1, ETag: "a"}, {Number: 1, ETag: "a"}}, 1)
			return err
		}},
		{"complete part 0", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 0, ETag: "a"}}, 1)
			return err
		}},
		{"complete part 10001", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 10001, ETag: "a"}}, 1)
			return err
		}},
		{"complete empty etag", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 1, ETag: `""`}}, 1)
			return err
		}},
		{"complete etag with newline", func() error {
			_, err := s.Complete(ctx, testKey, "u", []CompletedPart{{Number: 1, ETag: "a\nb"}}, 1)
			return err
		}},
		{"complete too many parts", func() error {
			parts := make([]CompletedPart, MaxParts+1)
			for i := range parts {
				parts[i] = CompletedPart{Number: int32(i + 1), ETag: "a"}
			}
			_, err := s.Complete(ctx, testKey, "u", parts, 1)
			return err
		}},
		{"complete negative size", func() error { _, err := s.Complete(ctx, testKey, "u", goodParts, -1); return err }},
		{"complete size over 5 TiB", func() error { _, err := s.Complete(ctx, testKey, "u", goodParts, MaxObjectSize+1); return err }},
		{"complete no upload id", func() error { _, err := s.Complete(ctx, testKey, "", goodParts, 1); return err }},
		{"verify size negative", func() error { _, err := s.VerifySize(ctx, testKey, -1); return err }},
		{"sha256 not hex", func() error { return s.VerifySHA256(ctx, testKey, "zz") }},
		{"sha256 too short", func() error { return s.VerifySHA256(ctx, testKey, "abcd") }},
		{"head bad key", func() error { _, err := s.Head(ctx, "/abs"); return err }},
		{"delete bad key", func() error { return s.Delete(ctx, "a/../b") }},
		{"abort no upload id", func() error { return s.Abort(ctx, testKey, "") }},
		{"list parts no upload id", func() error { _, err := s.ListParts(ctx, testKey, ""); return err }},
		{"create bad key", func() error { _, err := s.CreateUpload(ctx, "a//b"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	good := Config{Bucket: "backups", AccessKeyID: "AKID", SecretAccessKey: "hunter2-secret"}
	with := func(f func(*Config)) Config { c := good; f(&c); return c }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"AWS defaults", good, ""},
		{"MinIO", with(func(c *Config) { c.Endpoint = "http://127.0.0.1:9000/"; c.ForcePathStyle = true }), ""},
		{"https endpoint, region, session", with(func(c *Config) {
			c.Endpoint = "https://s3.eu.example.com"
			c.Region = "eu-central-1"
			c.SessionToken = "tok"
		}), ""},
		{"no bucket", with(func(c *Config) { c.Bucket = "" }), "bucket is required"},
		{"bucket upper case", with(func(c *Config) { c.Bucket = "Backups" }), "not a valid bucket name"},
		{"bucket too short", with(func(c *Config) { c.Bucket = "ab" }), "not a valid bucket name"},
		{"bucket with slash", with(func(c *Config) { c.Bucket = "a/b/c" }), "not a valid bucket name"},
		{"bucket with dots in a row", with(func(c *Config) { c.Bucket = "a..b" }), "not a valid bucket name"},
		{"no access key", with(func(c *Config) { c.AccessKeyID = "" }), "access key id and secret access key"},
		{"no secret", with(func(c *Config) { c.SecretAccessKey = "" }), "access key id and secret access key"},
		{"bad region", with(func(c *Config) { c.Region = "EU West" }), "not a valid region"},
		{"endpoint without scheme", with(func(c *Config) { c.Endpoint = "minio:9000" }), "http:// or https://"},
		{"endpoint ftp", with(func(c *Config) { c.Endpoint = "ftp://minio" }), "http:// or https://"},
		{"endpoint without host", with(func(c *Config) { c.Endpoint = "http://" }), "no host"},
		{"endpoint with password", with(func(c *Config) { c.Endpoint = "http://admin:hunter2-secret@minio:9000" }), "user information"},
		{"endpoint with query", with(func(c *Config) { c.Endpoint = "http://minio:9000?x=1" }), "query"},
		{"endpoint with path", with(func(c *Config) { c.Endpoint = "http://minio:9000/bucket" }), "path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Bucket() != tt.cfg.Bucket {
					t.Errorf("Bucket() = %q", s.Bucket())
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %v", tt.cfg)
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want ErrInvalidArgument saying %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	cfg := Config{
		Endpoint:        "http://admin:hunter2-in-url@minio:9000",
		Bucket:          "backups",
		AccessKeyID:     "AKID",
		SecretAccessKey: "hunter2-secret",
		SessionToken:    "hunter2-token",
	}
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("config", "cfg", cfg)
	for how, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"ptr":  fmt.Sprintf("%v", &cfg),
		"slog": log.String(),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s rendering leaks a secret: %s", how, out)
		}
		if !strings.Contains(out, "backups") {
			t.Errorf("%s rendering does not name the bucket: %s", how, out)
		}
	}
}
