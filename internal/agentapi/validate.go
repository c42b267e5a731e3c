package agentapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validator is a request that checks its own fields. Decode calls it, so a
// request that decodes is valid. Errors are *APIError with code
// invalid_request and a message that names the field and the rule but
// never repeats the value (it may be a mistyped secret).
type Validator interface {
	Validate() error
}

var (
	_ Validator = RegisterRequest{}
	_ Validator = HeartbeatRequest{}
	_ Validator = StartRequest{}
	_ Validator = PartsRequest{}
	_ Validator = ProgressRequest{}
	_ Validator = CompleteRequest{}
	_ Validator = AbortRequest{}
	_ Validator = LogRequest{}
	_ Validator = DownloadRequest{}
)

// Validate checks the name and platform.
func (r RegisterRequest) Validate() error {
	return first(
		checkText("name", r.Name, MaxNameLength, required, singleLine),
		checkToken("platform", r.Platform, MaxPlatformLength, optional),
	)
}

// Validate checks the version, platform, arch and host name.
func (r HeartbeatRequest) Validate() error {
	return first(
		checkVersion("version", r.Version),
		checkToken("platform", r.Platform, MaxPlatformLength, required),
		checkToken("arch", r.Arch, MaxPlatformLength, optional),
		checkText("hostname", r.Hostname, MaxHostnameLength, optional, singleLine),
	)
}

// Validate checks that exactly one of configId and runId is set and valid.
func (r StartRequest) Validate() error {
	if (r.ConfigID == "") == (r.RunID == "") {
		return invalid("", "exactly one of configId and runId is required")
	}
	return first(
		checkID("configId", r.ConfigID, optional),
		checkID("runId", r.RunID, optional),
		checkNonNegative("sizeHint", r.SizeHint),
	)
}

// Validate checks the run and the part numbers.
func (r PartsRequest) Validate() error {
	if err := checkID("runId", r.RunID, required); err != nil {
		return err
	}
	if len(r.PartNumbers) == 0 || len(r.PartNumbers) > MaxPartsPerRequest {
		return invalid("partNumbers", "must list 1 to %d part numbers", MaxPartsPerRequest)
	}
	return checkPartNumbers("partNumbers", len(r.PartNumbers), func(i int) int { return r.PartNumbers[i] })
}

// Validate checks the run and that the counters are in range.
func (r ProgressRequest) Validate() error {
	if r.Progress < 0 || r.Progress > 100 {
		return invalid("progress", "must be a percentage from 0 to 100")
	}
	return first(
		checkID("runId", r.RunID, required),
		checkNonNegative("filesProcessed", r.FilesProcessed),
		checkNonNegative("filesSkipped", r.FilesSkipped),
		checkNonNegative("bytesTotal", r.BytesTotal),
		checkNonNegative("bytesTransferred", r.BytesTransferred),
	)
}

// Validate checks the run, the status and what it needs, the parts, the
// checksum, the counters and the bounded error list.
func (r CompleteRequest) Validate() error {
	if err := checkID("runId", r.RunID, required); err != nil {
		return err
	}
	switch r.Status {
	case CompleteCompleted:
		if r.SHA256 == "" {
			return invalid("sha256", "is required when status is completed")
		}
	case CompleteFailed:
		if r.Message == "" {
			return invalid("message", "is required when status is failed")
		}
	default:
		return invalid("status", "must be %s or %s", CompleteCompleted, CompleteFailed)
	}
	if err := first(
		checkText("message", r.Message, MaxErrorMessageBytes, optional, multiLine),
		checkSHA256("sha256", r.SHA256),
		checkNonNegative("size", r.Size),
		checkNonNegative("filesProcessed", r.FilesProcessed),
		checkNonNegative("filesSkipped", r.FilesSkipped),
		checkNonNegative("bytesTransferred", r.BytesTransferred),
		checkNonNegative("durationMs", r.DurationMs),
		checkNonNegative("errorCount", r.ErrorCount),
	); err != nil {
		return err
	}
	if len(r.Parts) > MaxPartNumber {
		return invalid("parts", "must list at most %d parts", MaxPartNumber)
	}
	if err := checkPartNumbers("parts", len(r.Parts), func(i int) int { return r.Parts[i].PartNumber }); err != nil {
		return err
	}
	for i, p := range r.Parts {
		if !validETag(p.ETag) {
			return invalid(fmt.Sprintf("parts[%d].etag", i), "must be 1 to %d characters of A-Z, a-z, 0-9 and \"-_.+/=:", MaxETagLength)
		}
	}
	if len(r.Errors) > MaxErrorsPerComplete {
		return invalid("errors", "must list at most %d errors (count the rest in errorCount)", MaxErrorsPerComplete)
	}
	if r.ErrorCount < int64(len(r.Errors)) {
		return invalid("errorCount", "must be at least the number of errors listed")
	}
	for i, e := range r.Errors {
		if err := first(
			checkText(fmt.Sprintf("errors[%d].path", i), e.Path, MaxPathBytes, optional, multiLine),
			checkText(fmt.Sprintf("errors[%d].message", i), e.Message, MaxErrorMessageBytes, required, multiLine),
		); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the run and the reason.
func (r AbortRequest) Validate() error {
	return first(
		checkID("runId", r.RunID, required),
		checkText("reason", r.Reason, MaxErrorMessageBytes, optional, multiLine),
	)
}

// Validate checks the level, message, run and metadata.
func (r LogRequest) Validate() error {
	switch r.Level {
	case LogInfo, LogWarning, LogError:
	default:
		return invalid("level", "must be %s, %s or %s", LogInfo, LogWarning, LogError)
	}
	if err := first(
		checkText("message", r.Message, MaxLogMessageBytes, required, multiLine),
		checkID("runId", r.RunID, optional),
	); err != nil {
		return err
	}
	if len(r.Metadata) > MaxLogMetadataKeys {
		return invalid("metadata", "must have at most %d keys", MaxLogMetadataKeys)
	}
	// Sorted, so the same request always gets the same error.
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		if !validMetadataKey(k) {
			return invalid("metadata", "keys must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.' or '-'", MaxLogMetadataKeyLength)
		}
		field := "metadata[…]" // a long key may be a pasted secret: not shown
		if name, ok := safeName(k); ok {
			field = "metadata." + name
		}
		if err := checkMetadataValue(field, r.Metadata[k]); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the run.
func (r DownloadRequest) Validate() error {
	return checkID("runId", r.RunID, required)
}

// Query is the request as PathDownload's query string.
func (r DownloadRequest) Query() url.Values {
	return url.Values{QueryRunID: {r.RunID}}
}

// ParseDownloadQuery reads and validates PathDownload's query string:
// runId exactly once and nothing else.
func ParseDownloadQuery(q url.Values) (DownloadRequest, error) {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if name != QueryRunID {
			if safe, ok := safeName(name); ok {
				return DownloadRequest{}, invalid("", "unknown query parameter %q", safe)
			}
			return DownloadRequest{}, invalid("", "unknown query parameter")
		}
	}
	if len(q[QueryRunID]) > 1 {
		return DownloadRequest{}, invalid(QueryRunID, "must be given once")
	}
	r := DownloadRequest{RunID: q.Get(QueryRunID)}
	if err := r.Validate(); err != nil {
		return DownloadRequest{}, err
	}
	return r, nil
}

// --- rules --------------------------------------------------------------

// maxMetadataNumberLength bounds a number in log metadata.
const maxMetadataNumberLength = 64

const (
	required = true
	optional = false

	singleLine = true
	multiLine  = false
)

// invalid is an invalid_request error about field ("" for the whole
// request). Callers never pass the field's value.
func invalid(field, format string, args ...any) *APIError {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + " " + msg
	}
	return NewError(CodeInvalidRequest, "%s", msg)
}

// first returns the first non-nil error. The checks are all cheap, so
// running them all and keeping the first keeps Validate methods flat.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// validID reports whether s matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$ and
// has no "..": safe as a path segment, an object-key segment and a
// Kubernetes name or UID. Written out rather than as a regexp because it
// runs on every request.
func validID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLength || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func checkID(field, s string, isRequired bool) error {
	if s == "" && !isRequired {
		return nil
	}
	if !validID(s) {
		return invalid(field, "must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' or '-', start with a letter or digit and not contain '..'", MaxIDLength)
	}
	return nil
}

// checkText checks free text: valid UTF-8, no NUL (PostgreSQL text cannot
// hold it), at most max bytes and, for singleLine, no control characters.
func checkText(field, s string, maxBytes int, isRequired, isSingleLine bool) error {
	switch {
	case s == "" && isRequired:
		return invalid(field, "is required")
	case len(s) > maxBytes:
		return invalid(field, "must be at most %d bytes", maxBytes)
	case !utf8.ValidString(s):
		return invalid(field, "must be valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, "must not contain NUL characters")
	case isSingleLine && strings.ContainsFunc(s, isControl):
		return invalid(field, "must be one line without control characters")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

// checkToken checks a GOOS/GOARCH-like word: a-z, 0-9 and '_'.
func checkToken(field, s string, maxBytes int, isRequired bool) error {
	if s == "" {
		if isRequired {
			return invalid(field, "is required")
		}
		return nil
	}
	ok := len(s) <= maxBytes
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	if !ok {
		return invalid(field, "must be 1 to %d characters of a-z, 0-9 or '_'", maxBytes)
	}
	return nil
}

// checkVersion accepts any printable ASCII without spaces: "dev",
// "v1.2.3", "v1.2.3-rc.1+abc". Lenient on purpose, so an oddly built agent
// is not locked out of heartbeats.
func checkVersion(field, s string) error {
	ok := s != "" && len(s) <= MaxVersionLength
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] > ' ' && s[i] <= '~'
	}
	if !ok {
		return invalid(field, "must be 1 to %d printable ASCII characters without spaces", MaxVersionLength)
	}
	return nil
}

func checkNonNegative(field string, v int64) error {
	if v < 0 {
		return invalid(field, "must not be negative")
	}
	return nil
}

// checkSHA256 accepts "" (presence is checked by the caller) or 64
// lower-case hex digits, the form BackupRun.status.object.sha256 stores.
func checkSHA256(field, s string) error {
	if s == "" {
		return nil
	}
	ok := len(s) == 64
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f'
	}
	if !ok {
		return invalid(field, "must be 64 lower-case hex digits")
	}
	return nil
}

// checkPartNumbers checks that n part numbers, read through at, are in
// 1..MaxPartNumber and strictly ascending (so unique), which is what S3's
// CompleteMultipartUpload requires.
func checkPartNumbers(field string, n int, at func(int) int) error {
	prev := 0
	for i := range n {
		p := at(i)
		if p < 1 || p > MaxPartNumber {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "must be a part number from 1 to %d", MaxPartNumber)
		}
		if p <= prev {
			return invalid(field, "must be in ascending order without repeats")
		}
		prev = p
	}
	return nil
}

// validETag accepts what object stores send for parts (a quoted hex
// digest, sometimes unquoted or base64) and nothing that JSON would escape
// beyond the quotes, which keeps the largest complete request bounded.
func validETag(s string) bool {
	if s == "" || len(s) > MaxETagLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && strings.IndexByte(`"-_.+/=:`, c) < 0 {
			return false
		}
	}
	return true
}

func validMetadataKey(k string) bool {
	if k == "" || len(k) > MaxLogMetadataKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// checkMetadataValue accepts JSON scalars: what Decode produces (string,
// json.Number, bool, nil) and the Go numbers an agent puts in before
// sending. Nested objects and arrays are refused, which keeps a log line's
// size and shape bounded.
func checkMetadataValue(field string, v any) error {
	switch v := v.(type) {
	case nil, bool,
		int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return nil
	case string:
		return checkText(field, v, MaxLogMetadataValueBytes, optional, multiLine)
	case json.Number:
		// Decode only makes valid numbers, but a Go caller can put
		// anything in a json.Number; the length bound keeps digits
		// within what PostgreSQL's jsonb accepts.
		if v == "" || len(v) > maxMetadataNumberLength || v[0] != '-' && (v[0] < '0' || v[0] > '9') || !json.Valid([]byte(v)) {
			return invalid(field, "must be a JSON number of at most %d characters", maxMetadataNumberLength)
		}
		return nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return invalid(field, "must be a finite number")
		}
		return nil
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return invalid(field, "must be a finite number")
		}
		return nil
	default:
		return invalid(field, "must be a string, number, boolean or null")
	}
}
