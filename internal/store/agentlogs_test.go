package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestInsertAgentLogs(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	s := c.migrated(t)
	agentUID, runUID := newUID(t), newUID(t)
	if err := s.UpsertAgent(ctx, agentRow(agentUID, "laptop", 1)); err != nil {
		t.Fatal(err)
	}
	logCount := func() int {
		return count(t, s, "SELECT count(*) FROM agent_logs WHERE agent_uid = $1", agentUID)
	}

	t.Run("10,000 lines in one call", func(t *testing.T) {
		logs := logBatch(agentUID, 10_000)
		logs[42].RunUID = runUID
		logs[42].Metadata = json.RawMessage(`{"filesFound": 150}`)
		if err := s.InsertAgentLogs(ctx, logs); err != nil {
			t.Fatal(err)
		}
		if n := logCount(); n != 10_000 {
			t.Fatalf("%d lines stored, want 10000", n)
		}
		var (
			level, message string
			files          int
		)
		if err := s.Pool().QueryRow(ctx, `SELECT level, message, (metadata->>'filesFound')::int FROM agent_logs
			WHERE run_uid = $1 AND ts = $2`, runUID, logs[42].Time).Scan(&level, &message, &files); err != nil {
			t.Fatal(err)
		}
		if level != logs[42].Level || message != logs[42].Message || files != 150 {
			t.Errorf("line 42 stored as %s %q %d, want %s %q 150", level, message, files, logs[42].Level, logs[42].Message)
		}
	})

	t.Run("one bad line fails the batch before anything is written", func(t *testing.T) {
		before := logCount()
		tests := []struct {
			name string
			bad  func(*AgentLogRow)
		}{
			{"unknown level", func(l *AgentLogRow) { l.Level = "trace" }},
			{"agent UID not a UUID", func(l *AgentLogRow) { l.AgentUID = "laptop" }},
			{"empty agent UID", func(l *AgentLogRow) { l.AgentUID = "" }},
			{"run UID not a UUID", func(l *AgentLogRow) { l.RunUID = "nightly-1" }},
			{"metadata not JSON", func(l *AgentLogRow) { l.Metadata = json.RawMessage(`{files: 1`) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				logs := logBatch(agentUID, 100)
				tt.bad(&logs[50])
				err := s.InsertAgentLogs(ctx, logs)
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 50") {
					t.Errorf("error = %v, want ErrInvalid naming line 50", err)
				}
				if n := logCount(); n != before {
					t.Errorf("%d lines written from a refused batch", n-before)
				}
			})
		}
	})

	t.Run("lines of an unknown agent fail the whole batch", func(t *testing.T) {
		before := count(t, s, "SELECT count(*) FROM agent_logs")
		logs := logBatch(agentUID, 100)
		logs[99].AgentUID = newUID(t)
		if err := s.InsertAgentLogs(ctx, logs); pgCode(err) != foreignKeyViolation {
			t.Errorf("error = %v, want a foreign key violation", err)
		}
		if n := count(t, s, "SELECT count(*) FROM agent_logs"); n != before {
			t.Errorf("%d lines written from a failed batch", n-before)
		}
	})

	t.Run("odd messages are cleaned, not refused", func(t *testing.T) {
		runes := strings.Repeat("ä", MaxLogMessageLength+100)
		logs := []AgentLogRow{
			{AgentUID: agentUID, RunUID: runUID, Level: "error", Message: "bad \xff byte and a \x00 NUL"},
			{AgentUID: agentUID, RunUID: runUID, Level: "error", Message: runes},
		}
		if err := s.InsertAgentLogs(ctx, logs); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Pool().Query(ctx, `SELECT message FROM agent_logs WHERE run_uid = $1 AND level = 'error' ORDER BY id`, runUID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%d lines stored, want 2", len(got))
		}
		if got[0] != "bad \uFFFD byte and a  NUL" {
			t.Errorf("cleaned message = %q", got[0])
		}
		if n := utf8.RuneCountInString(got[1]); n != MaxLogMessageLength || !strings.HasSuffix(got[1], truncationMark) {
			t.Errorf("long message stored with %d characters ending %q, want %d ending %q",
				n, got[1][len(got[1])-20:], MaxLogMessageLength, truncationMark)
		}
	})

	t.Run("an empty batch is a no-op", func(t *testing.T) {
		if err := s.InsertAgentLogs(ctx, nil); err != nil {
			t.Error(err)
		}
	})
}

func TestCleanLogMessage(t *testing.T) {
	long := strings.Repeat("x", MaxLogMessageLength)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "scanning /Users/ann", "scanning /Users/ann"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"NUL", "a\x00b", "ab"},
		{"exactly the limit", long, long},
		{"one over the limit", long + "y", long[:MaxLogMessageLength-utf8.RuneCountInString(truncationMark)] + truncationMark},
		{"multi-byte runes are not split", strings.Repeat("日", MaxLogMessageLength+1),
			strings.Repeat("日", MaxLogMessageLength-utf8.RuneCountInString(truncationMark)) + truncationMark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cleanLogMessage(tt.in)
			if got != tt.want {
				t.Errorf("cleanLogMessage = %.40q... (%d runes), want %.40q... (%d runes)",
					got, utf8.RuneCountInString(got), tt.want, utf8.RuneCountInString(tt.want))
			}
			if !utf8.ValidString(got) {
				t.Error("result is not valid UTF-8")
			}
		})
	}
}

// logBatch is n log lines of agentUID with distinct times.
func logBatch(agentUID string, n int) []AgentLogRow {
	levels := []string{"debug", "info", "warning", "error"}
	logs := make([]AgentLogRow, n)
	for i := range logs {
		logs[i] = AgentLogRow{
			AgentUID: agentUID,
			Level:    levels[i%len(levels)],
			Message:  fmt.Sprintf("uploaded part %d of /Users/ann/Documents", i),
			Time:     at(0).Add(time.Duration(i) * time.Millisecond),
		}
	}
	return logs
}
