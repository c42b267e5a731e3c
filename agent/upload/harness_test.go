package upload_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"k8s.io/apimachinery/pkg/types"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backapp/backapp/agent/client"
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/agenttest"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// env is one apiserver and MinIO for the package; each test runs its own
// BackApp server in its own namespace.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Kube: true, MinIO: true}, &env) }

// harness is one real BackApp server with one registered agent.
type harness struct {
	t     testing.TB
	ns    string
	url   string
	k8s   ctrlclient.Client
	agent string
	key   apikey.Key
	c     *client.Client
	as    *agenttest.AgentServer
}

func newHarness(t testing.TB, tune func(*webapp.Config)) *harness {
	t.Helper()
	as := agenttest.Start(t, env, tune)
	h := &harness{t: t, ns: as.Namespace, url: as.URL, k8s: env.Kube.Client}
	h.agent, h.key = as.Register(t, "laptop")
	var err error
	if h.c, err = client.New(h.url, h.key, client.WithRetry(5, 10*time.Millisecond, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	h.as = as
	return h
}

// config creates an Agent-mode config whose destination is MinIO at
// endpoint (MinIO itself, or a proxy in front of it) and waits until the
// server serves it.
func (h *harness) config(name, endpoint string) {
	h.t.Helper()
	h.as.CreateAgentConfig(h.t, name, h.agent, endpoint)
	testenv.Eventually(h.t, func() bool {
		configs, err := h.c.Configs(h.t.Context())
		if err != nil {
			h.t.Fatal(err)
		}
		for _, c := range configs {
			if c.ID == name {
				return true
			}
		}
		return false
	})
}

// start starts a new run of config. The size hint is 0 (unknown): tests
// and the benchmark set their own part sizes.
func (h *harness) start(config string) agentapi.StartResponse {
	h.t.Helper()
	return h.startWithHint(config, 0)
}

// startWithHint starts a new run of config for an archive of about hint
// bytes, which decides the server's part size.
func (h *harness) startWithHint(config string, hint int64) agentapi.StartResponse {
	h.t.Helper()
	start, err := h.c.Start(h.t.Context(), agentapi.StartRequest{ConfigID: config, SizeHint: hint})
	if err != nil {
		h.t.Fatal(err)
	}
	return start
}

func (h *harness) run(name string) *backappv1alpha1.BackupRun {
	h.t.Helper()
	var run backappv1alpha1.BackupRun
	if err := h.k8s.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, &run); err != nil {
		h.t.Fatal(err)
	}
	return &run
}

// complete sends req and checks the run Succeeded and its object in MinIO
// holds exactly the size bytes of the stream seed makes.
func (h *harness) complete(req agentapi.CompleteRequest, seed uint64, size int64) {
	h.t.Helper()
	done, err := h.c.Complete(h.t.Context(), req)
	if err != nil || done.Phase != agentapi.RunSucceeded {
		h.t.Fatalf("complete: %v %+v", err, done)
	}
	run := h.run(req.RunID)
	if run.Status.Phase != backappv1alpha1.RunSucceeded || run.Status.Object == nil || run.Status.Object.Size != size {
		h.t.Fatalf("run after complete: %s %+v", run.Status.Phase, run.Status.Object)
	}
	assertObject(h.t, run.Status.Object.Key, seed, size)
}

// assertObject compares the object at key in MinIO (read directly, not
// through any proxy) with the stream seed makes, byte for byte.
func assertObject(t testing.TB, key string, seed uint64, size int64) {
	t.Helper()
	out, err := env.MinIO.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	want := io.LimitReader(stream(seed), size)
	got, wantBuf := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(out.Body, got)
		if n > 0 {
			if _, werr := io.ReadFull(want, wantBuf[:n]); werr != nil {
				t.Fatalf("the stored object is longer than the %d bytes written", size)
			}
			if !bytes.Equal(got[:n], wantBuf[:n]) {
				t.Fatalf("the stored object differs from the stream within bytes %d-%d", off, off+int64(n))
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if off != size {
		t.Fatalf("the stored object has %d bytes, want %d", off, size)
	}
}

// stream is a reproducible stream of random bytes: the same seed gives
// the same bytes, so the stored object can be compared without keeping a
// copy.
func stream(seed uint64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// write writes size bytes of stream(seed) to w in chunks of odd sizes, so
// part boundaries fall inside Write calls.
func write(w io.Writer, seed uint64, size int64) error {
	src := io.LimitReader(stream(seed), size)
	buf := make([]byte, 300<<10+7)
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{src}, buf)
	return err
}

// faultProxy is a reverse proxy in front of MinIO that can fail part
// uploads. A config whose endpoint is the proxy gets part URLs signed for
// the proxy's host, which the proxy passes on unchanged, so MinIO accepts
// them; the server's own calls (create, complete, head) pass untouched.
type faultProxy struct {
	URL string
	rp  *httputil.ReverseProxy

	// fault, if set, may answer a part PUT itself (returning true)
	// instead of passing it on. attempt counts from 1 per part.
	fault func(part, attempt int, w http.ResponseWriter, r *http.Request) bool

	mu          sync.Mutex
	attempts    map[int]int
	inFlight    int
	maxInFlight int
}

func newFaultProxy(t testing.TB) *faultProxy {
	t.Helper()
	target, err := url.Parse(env.MinIO.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rp: httputil.NewSingleHostReverseProxy(target), attempts: map[int]int{}}
	// Cancelled uploads make it log "proxy error: context canceled".
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	partNumber := r.URL.Query().Get("partNumber")
	if r.Method != http.MethodPut || partNumber == "" {
		p.rp.ServeHTTP(w, r)
		return
	}
	part, _ := strconv.Atoi(partNumber)
	p.mu.Lock()
	p.attempts[part]++
	attempt := p.attempts[part]
	p.inFlight++
	p.maxInFlight = max(p.maxInFlight, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	if p.fault != nil && p.fault(part, attempt, w, r) {
		return
	}
	p.rp.ServeHTTP(w, r)
}

func (p *faultProxy) attemptsOf(part int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts[part]
}

// s3Error answers like S3 does.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><Resource>/x</Resource></Error>`, code, msg)
}

// noSecrets fails if s holds a URL signature.
func noSecrets(t testing.TB, s string) {
	t.Helper()
	for _, secret := range []string{"X-Amz-Signature", "X-Amz-Credential", env.MinIO.SecretKey} {
		if strings.Contains(s, secret) {
			t.Errorf("a secret (%s) appears in %q", secret[:min(len(secret), 15)], s)
		}
	}
}
