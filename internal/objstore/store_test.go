package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/backapp/backapp/internal/testenv"
)

// minioStore starts a MinIO server for the test and returns a Store on its
// bucket.
func minioStore(t *testing.T) *Store {
	t.Helper()
	env := testenv.New(t, testenv.Options{MinIO: true})
	m := env.MinIO
	s, err := New(Config{
		Endpoint:        m.Endpoint,
		Region:          m.Region,
		Bucket:          m.Bucket,
		AccessKeyID:     m.AccessKey,
		SecretAccessKey: m.SecretKey,
		ForcePathStyle:  true,
		// No proxy from the environment: the server is on loopback.
		HTTPClient: &http.Client{Transport: &http.Transport{Proxy: nil}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// agentClient is what an agent has: a plain HTTP client, no credentials.
var agentClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

type response struct {
	status int
	header http.Header
	body   []byte
}

// send does what an agent does with a pre-signed URL: method (normally
// p.Method) to rawURL with p's headers. Transport errors are reported with
// the URL redacted, since net/http puts the full URL in them.
func send(t *testing.T, method, rawURL string, p PresignedURL, body []byte) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, r)
	if err != nil {
		t.Fatalf("building %s %s: %v", method, RedactURL(rawURL), withoutURL(err))
	}
	for name, values := range p.Headers {
		req.Header[name] = values
	}
	resp, err := agentClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, RedactURL(rawURL), withoutURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %s %s: %v", method, RedactURL(rawURL), err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// use sends p as intended.
func use(t *testing.T, p PresignedURL, body []byte) response {
	t.Helper()
	return send(t, p.Method, p.URL, p, body)
}

func mustOK(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200: %.300s", what, r.status, r.body)
	}
}

// mustRefuse checks that S3 refused a request with wantStatus and the S3
// error code wantCode, so that a refusal for another reason (a typo in the
// test, a missing object) does not pass for the one under test.
func mustRefuse(t *testing.T, what string, r response, wantStatus int, wantCode string) {
	t.Helper()
	if r.status != wantStatus || !bytes.Contains(r.body, []byte("<Code>"+wantCode+"</Code>")) {
		t.Errorf("%s: status %d, want %d %s: %.300s", what, r.status, wantStatus, wantCode, r.body)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func key(t *testing.T, config string) string {
	t.Helper()
	k, err := ArchiveKey("test/", "user-1", "agent-1", config, runTime, "tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// uploadParts uploads each chunk as parts 1..n through pre-signed URLs, as
// an agent does, and returns the parts with the ETags S3 answered.
func uploadParts(t *testing.T, s *Store, k, uploadID string, chunks ...[]byte) []CompletedPart {
	t.Helper()
	var parts []CompletedPart
	for i, chunk := range chunks {
		n := int32(i + 1)
		p, err := s.PresignPart(t.Context(), k, uploadID, n, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := use(t, p, chunk)
		mustOK(t, "PUT part", r)
		etag := r.header.Get("ETag")
		if etag == "" {
			t.Fatalf("part %d: no ETag in the response", n)
		}
		parts = append(parts, CompletedPart{Number: n, ETag: etag})
	}
	return parts
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestStoreWithMinIO(t *testing.T) {
	s := minioStore(t)

	t.Run("ignores AWS environment", func(t *testing.T) {
		// Would redirect or break a client built with LoadDefaultConfig.
		t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
		t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
		t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
		t.Setenv("AWS_REGION", "eu-west-3")
		t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
		t.Setenv("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "legacy")
		k := key(t, "env")
		id, err := s.CreateUpload(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(t.Context(), k, id); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("multipart flow", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "flow")
		data := randomBytes(t, int(2*MinPartSize+MiB+123))
		id, err := s.CreateUpload(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		parts := uploadParts(t, s, k, id, data[:MinPartSize], data[MinPartSize:2*MinPartSize], data[2*MinPartSize:])

		listed, err := s.ListParts(ctx, k, id)
		if err != nil {
			t.Fatal(err)
		}
		wantSizes := []int64{MinPartSize, MinPartSize, MiB + 123}
		if len(listed) != len(parts) {
			t.Fatalf("ListParts returned %d parts, want %d", len(listed), len(parts))
		}
		for i, p := range listed {
			if p.Number != parts[i].Number || p.ETag != parts[i].ETag || p.Size != wantSizes[i] {
				t.Errorf("ListParts[%d] = %+v, want number %d, ETag %s, size %d", i, p, parts[i].Number, parts[i].ETag, wantSizes[i])
			}
		}

		info, err := s.Complete(ctx, k, id, parts, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != k || info.Size != int64(len(data)) || !strings.HasSuffix(info.ETag, `-3"`) || info.LastModified.IsZero() {
			t.Errorf("Complete returned %+v", info)
		}
		head, err := s.Head(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if head != info {
			t.Errorf("Head = %+v, Complete returned %+v", head, info)
		}

		get, err := s.PresignGet(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := use(t, get, nil)
		mustOK(t, "GET", r)
		if !bytes.Equal(r.body, data) {
			t.Fatalf("downloaded %d bytes (sha256 %s), uploaded %d (sha256 %s)", len(r.body), sha256Hex(r.body), len(data), sha256Hex(data))
		}

		if err := s.VerifySHA256(ctx, k, sha256Hex(data)); err != nil {
			t.Errorf("VerifySHA256 with the right hash: %v", err)
		}
		if err := s.VerifySHA256(ctx, k, strings.ToUpper(sha256Hex(data))); err != nil {
			t.Errorf("VerifySHA256 with the right hash in upper case: %v", err)
		}
		if err := s.VerifySHA256(ctx, k, sha256Hex(data[1:])); !errors.Is(err, ErrVerification) {
			t.Errorf("VerifySHA256 with a wrong hash = %v, want ErrVerification", err)
		}

		// A retried Complete whose first response was lost succeeds;
		// one with other parts does not.
		again, err := s.Complete(ctx, k, id, parts, int64(len(data)))
		if err != nil || again != info {
			t.Errorf("repeated Complete = %+v, %v; want %+v", again, err, info)
		}
		if _, err := s.Complete(ctx, k, id, parts[:2], 2*MinPartSize); !errors.Is(err, ErrNotFound) {
			t.Errorf("repeated Complete with other parts = %v, want ErrNotFound", err)
		}
		if _, err := s.ListParts(ctx, k, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("ListParts after Complete = %v, want ErrNotFound", err)
		}
	})

	t.Run("part URLs after Complete cannot change the object", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "after-complete")
		data := randomBytes(t, 4096)
		id, err := s.CreateUpload(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		// Minted before Complete, as an agent holding a batch would have it.
		part1, err := s.PresignPart(ctx, k, id, 1, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		part2, err := s.PresignPart(ctx, k, id, 2, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := use(t, part1, data)
		mustOK(t, "PUT part 1", r)
		info, err := s.Complete(ctx, k, id, []CompletedPart{{Number: 1, ETag: r.header.Get("ETag")}}, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}

		other := randomBytes(t, 4096)
		for name, p := range map[string]PresignedURL{"part 1": part1, "part 2": part2} {
			if r := use(t, p, other); r.status/100 == 2 {
				t.Errorf("PUT to the old %s URL succeeded after Complete", name)
			}
		}
		head, err := s.Head(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if head != info {
			t.Errorf("after PUTs to old part URLs Head = %+v, want %+v", head, info)
		}
		if err := s.VerifySHA256(ctx, k, sha256Hex(data)); err != nil {
			t.Errorf("content changed: %v", err)
		}
	})

	t.Run("part URL is bound to method, key and time", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "scope")
		id, err := s.CreateUpload(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Abort(context.Background(), k, id) })
		data := randomBytes(t, 1024)
		short, err := s.PresignPart(ctx, k, id, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.PresignPart(ctx, k, id, 1, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}

		mustRefuse(t, "GET on a part URL", send(t, http.MethodGet, p.URL, p, nil), http.StatusForbidden, "SignatureDoesNotMatch")
		mustRefuse(t, "DELETE on a part URL", send(t, http.MethodDelete, p.URL, p, nil), http.StatusForbidden, "SignatureDoesNotMatch")
		mustRefuse(t, "POST on a part URL", send(t, http.MethodPost, p.URL, p, data), http.StatusForbidden, "SignatureDoesNotMatch")

		otherKey := key(t, "scope-other")
		moved := withPath(t, p.URL, strings.Replace(mustURL(t, p.URL).Path, k, otherKey, 1))
		mustRefuse(t, "PUT with the key changed", send(t, http.MethodPut, moved, p, data), http.StatusForbidden, "SignatureDoesNotMatch")
		otherPart := strings.Replace(p.URL, "partNumber=1&", "partNumber=2&", 1)
		if otherPart == p.URL {
			t.Fatalf("URL has no partNumber=1& to change: %s", RedactURL(p.URL))
		}
		mustRefuse(t, "PUT with the part number changed", send(t, http.MethodPut, otherPart, p, data), http.StatusForbidden, "SignatureDoesNotMatch")

		// Nothing above touched the upload: the DELETE did not abort it
		// and no part was stored.
		if listed, err := s.ListParts(ctx, k, id); err != nil || len(listed) != 0 {
			t.Fatalf("after refused requests ListParts = %v, %v; want no parts", listed, err)
		}

		// X-Amz-Date has whole seconds, so 2s after signing a 1s URL is
		// past its expiry however the second boundaries fall.
		time.Sleep(time.Until(short.Expires) + time.Second)
		r := use(t, short, data)
		mustRefuse(t, "PUT with an expired URL", r, http.StatusForbidden, "AccessDenied")
		if !bytes.Contains(r.body, []byte("expired")) {
			t.Errorf("expired URL refused for another reason: %.300s", r.body)
		}

		// The same PUT with the URL as issued works, so the refusals
		// above were about what was changed.
		r = use(t, p, data)
		mustOK(t, "PUT part 1", r)
		if listed, err := s.ListParts(ctx, k, id); err != nil || len(listed) != 1 || listed[0].ETag != r.header.Get("ETag") {
			t.Errorf("after a good PUT ListParts = %v, %v; want part 1 with ETag %s", listed, err, r.header.Get("ETag"))
		}
	})

	t.Run("PUT URL is bound to its key", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k, otherKey := key(t, "single"), key(t, "single-other")
		data := randomBytes(t, 2048)
		p, err := s.PresignPut(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		moved := withPath(t, p.URL, strings.Replace(mustURL(t, p.URL).Path, k, otherKey, 1))
		mustRefuse(t, "PUT to another key", send(t, http.MethodPut, moved, p, data), http.StatusForbidden, "SignatureDoesNotMatch")
		if _, err := s.Head(ctx, otherKey); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head(other key) = %v, want ErrNotFound", err)
		}
		mustRefuse(t, "GET with a PUT URL", send(t, http.MethodGet, p.URL, p, nil), http.StatusForbidden, "SignatureDoesNotMatch")

		mustOK(t, "PUT", use(t, p, data))
		info, err := s.VerifySize(ctx, k, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(data)) {
			t.Errorf("VerifySize returned size %d", info.Size)
		}
		if err := s.VerifySHA256(ctx, k, sha256Hex(data)); err != nil {
			t.Error(err)
		}
		// A second PUT of something else, as a misbehaving agent might,
		// fails verification and the object goes.
		mustOK(t, "PUT again", use(t, p, data[:100]))
		if _, err := s.VerifySize(ctx, k, int64(len(data))); !errors.Is(err, ErrVerification) {
			t.Errorf("VerifySize after a short PUT = %v, want ErrVerification", err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after a failed verification = %v, want ErrNotFound", err)
		}
	})

	t.Run("Complete with the wrong size deletes the object", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "wrong-size")
		data := randomBytes(t, 3000)
		id, err := s.CreateUpload(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		parts := uploadParts(t, s, k, id, data)
		_, err = s.Complete(ctx, k, id, parts, int64(len(data))+1)
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("Complete with a wrong size = %v, want ErrVerification", err)
		}
		if !strings.Contains(err.Error(), "3000") || !strings.Contains(err.Error(), "3001") {
			t.Errorf("error does not give both sizes: %v", err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after a failed verification = %v, want ErrNotFound", err)
		}
	})

	t.Run("Complete with a bogus ETag, Abort, Complete", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "bogus-etag")
		data := randomBytes(t, 3000)
		id, err := s.CreateUpload(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		parts := uploadParts(t, s, k, id, data)
		bogus := []CompletedPart{{Number: 1, ETag: `"0123456789abcdef0123456789abcdef"`}}
		_, err = s.Complete(ctx, k, id, bogus, int64(len(data)))
		if err == nil || errors.Is(err, ErrVerification) || errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Complete with a bogus ETag = %v, want an error from S3", err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after a refused Complete = %v, want ErrNotFound", err)
		}
		if listed, err := s.ListParts(ctx, k, id); err != nil || len(listed) != 1 {
			t.Errorf("after a refused Complete ListParts = %v, %v; want the one part still there", listed, err)
		}

		if err := s.Abort(ctx, k, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Complete(ctx, k, id, parts, int64(len(data))); !errors.Is(err, ErrNotFound) {
			t.Errorf("Complete after Abort = %v, want ErrNotFound", err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after Abort = %v, want ErrNotFound", err)
		}
		if err := s.Abort(ctx, k, id); err != nil {
			t.Errorf("second Abort = %v, want nil", err)
		}
		if _, err := s.ListParts(ctx, k, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("ListParts after Abort = %v, want ErrNotFound", err)
		}
		// The agent's part URLs stop working with the upload.
		p, err := s.PresignPart(ctx, k, id, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if r := use(t, p, data); r.status/100 == 2 {
			t.Errorf("PUT of a part of an aborted upload succeeded")
		}
	})

	t.Run("idempotent Abort, Delete and missing objects", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		k := key(t, "missing")
		if err := s.Abort(ctx, k, "no-such-upload"); err != nil {
			t.Errorf("Abort of an unknown upload = %v, want nil", err)
		}
		if _, err := s.ListParts(ctx, k, "no-such-upload"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ListParts of an unknown upload = %v, want ErrNotFound", err)
		}
		if _, err := s.Complete(ctx, k, "no-such-upload", []CompletedPart{{Number: 1, ETag: "x"}}, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Complete of an unknown upload = %v, want ErrNotFound", err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head of a missing object = %v, want ErrNotFound", err)
		}
		if err := s.VerifySHA256(ctx, k, sha256Hex(nil)); !errors.Is(err, ErrNotFound) {
			t.Errorf("VerifySHA256 of a missing object = %v, want ErrNotFound", err)
		}

		p, err := s.PresignPut(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, "PUT", use(t, p, []byte("x")))
		if _, err := s.Head(ctx, k); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := s.Delete(ctx, k); err != nil {
				t.Errorf("Delete #%d = %v, want nil", i+1, err)
			}
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after Delete = %v, want ErrNotFound", err)
		}
		get, err := s.PresignGet(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		mustRefuse(t, "GET of a deleted object", use(t, get, nil), http.StatusNotFound, "NoSuchKey")
	})
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parsing %s: %v", RedactURL(raw), withoutURL(err))
	}
	return u
}

func withPath(t *testing.T, raw, path string) string {
	t.Helper()
	u := mustURL(t, raw)
	u.Path, u.RawPath = path, ""
	return u.String()
}

// withoutURL drops the URL that net/url and net/http errors repeat in full,
// signature included.
func withoutURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
