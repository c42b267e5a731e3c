package upload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/backapp/backapp/agent/client"
	"github.com/backapp/backapp/internal/agentapi"
)

// PartSource hands out pre-signed PUT URLs for the parts of one upload.
//
// Contract:
//   - PartURL(ctx, n) returns a URL for part n (1 to
//     agentapi.MaxPartNumber) that the source believes valid now. It may
//     come from a batch fetched earlier, but only while it has a useful
//     part of its lifetime left.
//   - The Uploader asks for part n once, and again only after object
//     storage refused the URL it got (403: expired, or a clock far off).
//     So a repeated call for the same part must return a freshly signed
//     URL, never the one handed out before.
//   - It is called from several goroutines at once.
//   - An error is final for the upload (the client below it has already
//     retried what can be retried): the run was cancelled or ended, the
//     key was revoked, the server is gone.
type PartSource interface {
	PartURL(ctx context.Context, part int) (agentapi.PresignedURL, error)
}

// PartsClient is the call RunParts needs: client.Client.Parts.
type PartsClient interface {
	Parts(ctx context.Context, runID string, numbers []int) (agentapi.PartsResponse, error)
}

var (
	_ PartsClient = (*client.Client)(nil)
	_ PartSource  = (*RunParts)(nil)
	_ PartSource  = (*singleURL)(nil)
)

// DefaultBatch is how many part URLs RunParts asks for at a time: enough
// that a fast link asks a few times a second at most (the server's
// per-key rate limit is 20/s), few enough that most are used before they
// expire.
const DefaultBatch = 32

// ErrNoURL: the server answered backup/parts without the URL asked for.
var ErrNoURL = errors.New("the server handed out no URL for the part")

// RunParts is the PartSource of one run's multipart upload: the URLs
// backup/start returned first, then batches from backup/parts, fetched
// when a part needs one. A cached URL is handed out only while more than
// a fifth of its lifetime (at most a minute) is left; a part asked for
// again gets a newly signed URL. Lifetimes are judged by the local clock
// against the server's expiresAt; if the clocks disagree, URLs look short
// lived and are fetched one batch per part, or object storage refuses one
// and the Uploader asks again: slower, never wrong.
type RunParts struct {
	c     PartsClient
	runID string
	batch int
	now   func() time.Time

	mu        sync.Mutex
	cached    map[int]cachedURL
	handedOut map[int]bool
}

type cachedURL struct {
	url              agentapi.PresignedURL
	fetched, expires time.Time
}

// NewRunParts serves the URLs of start (a multipart StartResponse) and
// fetches more from c.
func NewRunParts(c PartsClient, start agentapi.StartResponse) *RunParts {
	s := &RunParts{
		c: c, runID: start.RunID, batch: DefaultBatch, now: time.Now,
		cached: map[int]cachedURL{}, handedOut: map[int]bool{},
	}
	s.store(start.Parts, s.now(), start.ExpiresAt)
	return s
}

// PartURL implements PartSource.
func (s *RunParts) PartURL(ctx context.Context, part int) (agentapi.PresignedURL, error) {
	if part < 1 || part > agentapi.MaxPartNumber {
		return "", fmt.Errorf("while getting the URL of part %d: part numbers run from 1 to %d", part, agentapi.MaxPartNumber)
	}
	// One lock across the fetch: parts that need URLs at the same moment
	// wait for one batch instead of each fetching their own.
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cached[part]; ok && !s.handedOut[part] && s.usable(c) {
		return s.handOut(part, c), nil
	}
	numbers := []int{part}
	for n := part + 1; n <= agentapi.MaxPartNumber && len(numbers) < s.batch; n++ {
		if !s.handedOut[n] {
			numbers = append(numbers, n)
		}
	}
	fetched := s.now()
	resp, err := s.c.Parts(ctx, s.runID, numbers)
	if err != nil {
		return "", err
	}
	s.store(resp.Parts, fetched, resp.ExpiresAt)
	c, ok := s.cached[part]
	if !ok || !c.fetched.Equal(fetched) {
		return "", fmt.Errorf("while getting the URL of part %d: %w", part, ErrNoURL)
	}
	return s.handOut(part, c), nil
}

func (s *RunParts) store(parts []agentapi.PartURL, fetched, expires time.Time) {
	for _, p := range parts {
		if p.URL != "" {
			s.cached[p.PartNumber] = cachedURL{url: p.URL, fetched: fetched, expires: expires}
		}
	}
}

func (s *RunParts) handOut(part int, c cachedURL) agentapi.PresignedURL {
	delete(s.cached, part)
	s.handedOut[part] = true
	return c.url
}

// usable: more than a fifth of the URL's lifetime, capped at a minute, is
// left, so an upload starting now still starts before it expires.
func (s *RunParts) usable(c cachedURL) bool {
	lifetime := c.expires.Sub(c.fetched)
	margin := min(lifetime/5, time.Minute)
	return lifetime > 0 && c.expires.Sub(s.now()) > margin
}

// singleURL is the PartSource of an upload in mode single: one URL, for
// part 1 only, that cannot be refreshed (the API has no call for it).
type singleURL struct {
	url agentapi.PresignedURL

	mu   sync.Mutex
	used bool
}

// Sentinel errors of single-PUT uploads.
var (
	// ErrSingleTooLarge: the archive outgrew the single PUT the server
	// offered; start again with a size hint.
	ErrSingleTooLarge = errors.New("archive larger than the single upload allows")
	// ErrSingleRefused: object storage refused the single PUT URL, which
	// cannot be renewed.
	ErrSingleRefused = errors.New("object storage refused the upload URL, which cannot be renewed")
)

func (s *singleURL) PartURL(_ context.Context, part int) (agentapi.PresignedURL, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case part != 1:
		return "", ErrSingleTooLarge
	case s.used:
		return "", ErrSingleRefused
	}
	s.used = true
	return s.url, nil
}
