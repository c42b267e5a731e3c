package webapp

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// AgentLogEntry is one line an agent sent through `POST /api/agent/log`.
type AgentLogEntry struct {
	Time     time.Time
	Level    string
	Message  string
	Metadata map[string]string
}

// agentLogs keeps the newest entries of each agent in memory, bounded per
// agent, for the dashboard until the PostgreSQL mirror stores them.
type agentLogs struct {
	perAgent int
	mu       sync.Mutex
	logs     map[types.UID][]AgentLogEntry
}

func newAgentLogs(perAgent int) *agentLogs {
	return &agentLogs{perAgent: perAgent, logs: make(map[types.UID][]AgentLogEntry)}
}

func (l *agentLogs) add(agent types.UID, entries ...AgentLogEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := append(l.logs[agent], entries...)
	if over := len(buf) - l.perAgent; over > 0 {
		buf = append([]AgentLogEntry(nil), buf[over:]...)
	}
	l.logs[agent] = buf
}

// RecentAgentLogs returns up to n of an agent's newest log entries, oldest
// first, for the dashboard.
func (s *Server) RecentAgentLogs(agent types.UID, n int) []AgentLogEntry {
	return s.logs.recent(agent, n)
}

// recent returns up to n of the agent's newest entries, oldest first.
func (l *agentLogs) recent(agent types.UID, n int) []AgentLogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.logs[agent]
	if len(buf) > n {
		buf = buf[len(buf)-n:]
	}
	return append([]AgentLogEntry(nil), buf...)
}
