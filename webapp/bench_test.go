package webapp_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/webapp"
)

// loopbackClient keeps up to 64 connections open to one host.
func loopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
}

// hammer sends b.N requests over 64 concurrent connections and reports
// requests per second.
func hammer(b *testing.B, url string, header http.Header, body []byte) float64 {
	b.Helper()
	c := loopbackClient()
	var failures atomic.Int64
	// RunParallel starts parallelism x GOMAXPROCS goroutines: 64 in all.
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header = header.Clone()
			resp, err := c.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
	rps := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rps, "req/s")
	return rps
}

// BenchmarkHeartbeat measures heartbeats per second on loopback with 64
// connections, next to a no-op handler behind the same listener type, and
// reports the ratio (target >= 0.5). Heartbeats of one agent write Agent
// status at most once a minute, so this measures the key check and the
// in-memory liveness path.
func BenchmarkHeartbeat(b *testing.B) {
	noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"online"}`))
	}))
	defer noop.Close()

	h := newBenchHarness(b)
	body := []byte(`{"version":"1.0.0","platform":"linux","arch":"amd64","hostname":"bench"}`)
	header := http.Header{agentapi.HeaderAPIKey: {h.key}, "Content-Type": {"application/json"}}

	var noopRPS, hbRPS float64
	b.Run("noop", func(b *testing.B) { noopRPS = hammer(b, noop.URL, header, body) })
	b.Run("heartbeat", func(b *testing.B) { hbRPS = hammer(b, h.url+agentapi.PathHeartbeat, header, body) })
	if noopRPS > 0 {
		b.ReportMetric(hbRPS/noopRPS, "heartbeat/noop")
	}
}

// BenchmarkKeyCheck is the per-request cost of checking a key: parse
// (format and checksum) and SHA-256 (target <= 1 µs).
func BenchmarkKeyCheck(b *testing.B) {
	k, err := apikey.New()
	if err != nil {
		b.Fatal(err)
	}
	raw := string(k)
	b.ReportAllocs()
	for b.Loop() {
		parsed, err := apikey.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		_ = parsed.Hash()
	}
}

type benchHarness struct{ url, key string }

// newBenchHarness starts a server with rate limits out of the way and one
// registered agent.
func newBenchHarness(b *testing.B) benchHarness {
	b.Helper()
	h := newHarness(b, func(c *webapp.Config) {
		c.PerKeyRate, c.PerClientRate = 1e9, 1e9
		c.PerKeyBurst, c.PerClientBurst = 1e9, 1e9
	})
	_, key := h.register("bench")
	return benchHarness{url: h.url, key: key}
}
