package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// MaxLogMessageLength is the longest agent log message kept, in characters
// (the agent_logs.message CHECK constraint); longer ones are cut.
const MaxLogMessageLength = 8192

// truncationMark ends a message that was cut to MaxLogMessageLength.
const truncationMark = " …[truncated]"

// AgentLogRow is one log line an agent sent.
type AgentLogRow struct {
	AgentUID string // required; the agent must be mirrored
	RunUID   string // the run the line is about, "" if none
	Level    string // debug, info, warning or error
	Message  string
	Metadata json.RawMessage // a JSON object or nil
	Time     time.Time       // when the agent logged it; zero means now
}

// validLogLevel reports whether agent_logs.level accepts level.
func validLogLevel(level string) bool {
	switch level {
	case "debug", "info", "warning", "error":
		return true
	}
	return false
}

// InsertAgentLogs stores a batch of log lines with one COPY: all of them or,
// on error, none.
//
// Rows are checked first, so one bad line (an unknown level, a malformed
// UID or metadata) fails the batch with ErrInvalid before anything is sent.
// Messages are cleaned rather than refused, since losing a batch over one
// odd line helps nobody: invalid UTF-8 is replaced, NUL bytes (which
// PostgreSQL text cannot hold) are dropped, and messages longer than
// MaxLogMessageLength characters are cut. A line for an agent that is not
// mirrored fails the batch with a foreign key violation.
func (s *Store) InsertAgentLogs(ctx context.Context, logs []AgentLogRow) error {
	if len(logs) == 0 {
		return nil
	}
	rows := make([][]any, len(logs))
	now := time.Now()
	for i, l := range logs {
		row, err := agentLogValues(l, now)
		if err != nil {
			return fmt.Errorf("while inserting agent logs: line %d: %w", i, err)
		}
		rows[i] = row
	}
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{"agent_logs"},
		[]string{"agent_uid", "run_uid", "level", "message", "metadata", "ts"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("while inserting %d agent log lines: %w", len(logs), err)
	}
	if n != int64(len(logs)) {
		return fmt.Errorf("while inserting %d agent log lines: only %d were written", len(logs), n)
	}
	return nil
}

// agentLogValues is l as COPY column values. COPY uses the binary format,
// in which pgx cannot send a string as a uuid, hence pgtype.UUID.
func agentLogValues(l AgentLogRow, now time.Time) ([]any, error) {
	var agentUID, runUID pgtype.UUID
	if err := agentUID.Scan(l.AgentUID); err != nil || l.AgentUID == "" {
		return nil, fmt.Errorf("%w: agent UID %q is not a UUID", ErrInvalid, l.AgentUID)
	}
	if l.RunUID != "" {
		if err := runUID.Scan(l.RunUID); err != nil {
			return nil, fmt.Errorf("%w: run UID %q is not a UUID", ErrInvalid, l.RunUID)
		}
	}
	if !validLogLevel(l.Level) {
		return nil, fmt.Errorf("%w: level %q is not one of debug, info, warning, error", ErrInvalid, l.Level)
	}
	var metadata any // nil: SQL NULL
	if len(l.Metadata) > 0 {
		if !json.Valid(l.Metadata) {
			return nil, fmt.Errorf("%w: metadata is not valid JSON", ErrInvalid)
		}
		metadata = l.Metadata
	}
	ts := l.Time
	if ts.IsZero() {
		ts = now
	}
	return []any{agentUID, runUID, l.Level, cleanLogMessage(l.Message), metadata, ts}, nil
}

// cleanLogMessage makes msg storable in agent_logs.message.
func cleanLogMessage(msg string) string {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	msg = strings.ReplaceAll(msg, "\x00", "")
	if utf8.RuneCountInString(msg) <= MaxLogMessageLength {
		return msg
	}
	keep := MaxLogMessageLength - utf8.RuneCountInString(truncationMark)
	cut := 0
	for i := range msg {
		if keep == 0 {
			cut = i
			break
		}
		keep--
	}
	return msg[:cut] + truncationMark
}
