package webapp

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// withAccessLog logs one line per request: method, path (never the query,
// which may hold a run id today and who knows what tomorrow), status,
// duration and client address. Headers are never logged: they carry API
// keys and session cookies.
func withAccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", clientAddr(r)),
		)
	})
}

// withRecover turns a handler panic into a JSON 500 without a stack trace
// in the response; the panic value is logged.
func withRecover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // net/http's way to abort a response; let it through
				}
				log.ErrorContext(r.Context(), "handler panicked", "path", r.URL.Path, "panic", v)
				writeAPIError(w, internalError())
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withClientRateLimit refuses clients (by address) that send more than the
// limiter allows, before any other work is done for them.
func withClientRateLimit(l *rateLimiter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.allow(clientAddr(r)); !ok {
			writeAPIError(w, rateLimited(wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the client's IP address. X-Forwarded-For is not trusted:
// behind a proxy the limiter counts the proxy, which is safe (not
// spoofable) if coarse; a trusted-proxy setting can come with the Ingress.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func retryAfterHeader(w http.ResponseWriter, wait time.Duration) {
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
