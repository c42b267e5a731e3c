package store

import (
	"context"
	"testing"
)

// benchBatch is how many log lines each benchmark iteration writes, so the
// two benchmarks' ns/op compare directly: their ratio is what batching with
// COPY buys over one autocommit INSERT per line.
const benchBatch = 1000

// benchLogStore is a migrated store with one agent, and a batch of its
// log lines.
func benchLogStore(b *testing.B) (*Store, []AgentLogRow) {
	b.Helper()
	s := newCluster(b).migrated(b)
	agentUID := newUID(b)
	if err := s.UpsertAgent(context.Background(), agentRow(agentUID, "laptop", 1)); err != nil {
		b.Fatal(err)
	}
	return s, logBatch(agentUID, benchBatch)
}

func BenchmarkInsertAgentLogs(b *testing.B) {
	s, logs := benchLogStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.InsertAgentLogs(ctx, logs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkInsertAgentLogSingleRow is the baseline InsertAgentLogs is
// measured against: the same lines, one autocommit INSERT each.
func BenchmarkInsertAgentLogSingleRow(b *testing.B) {
	s, logs := benchLogStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range logs {
			if _, err := s.Pool().Exec(ctx, `INSERT INTO agent_logs (agent_uid, run_uid, level, message, metadata, ts)
				VALUES ($1, $2, $3, $4, $5, $6)`,
				l.AgentUID, nullIfEmpty(l.RunUID), l.Level, l.Message, l.Metadata, l.Time); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
}
