package webapp

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// agentInfo is what a heartbeat reports about the agent's machine.
type agentInfo struct {
	Version, Platform, Arch, Hostname string
}

// liveness remembers each agent's last heartbeat in memory, so that a
// heartbeat costs no apiserver write unless the agent's status must change
// (it was not Online, its reported machine changed) or the last write is
// older than the write interval.
type liveness struct {
	mu     sync.Mutex
	agents map[types.UID]*agentLive
}

type agentLive struct {
	lastSeen  time.Time
	lastWrite time.Time
	written   agentInfo
}

func newLiveness() *liveness {
	return &liveness{agents: make(map[types.UID]*agentLive)}
}

// seen records a heartbeat at now and reports whether Agent status should
// be written. statusOnline says whether the stored status already shows the
// agent Online with this info.
func (l *liveness) seen(uid types.UID, info agentInfo, now time.Time, statusOnline bool, interval time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.agents[uid]
	if !ok {
		a = &agentLive{}
		l.agents[uid] = a
	}
	a.lastSeen = now
	if !statusOnline || a.written != info || now.Sub(a.lastWrite) >= interval {
		return true
	}
	return false
}

// written records that status was written at now with info.
func (l *liveness) wrote(uid types.UID, info agentInfo, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.agents[uid]; ok {
		a.lastWrite = now
		a.written = info
	}
}

// progressThrottle bounds how often one run's progress is written.
type progressThrottle struct {
	mu   sync.Mutex
	last map[types.NamespacedName]time.Time
}

func newProgressThrottle() *progressThrottle {
	return &progressThrottle{last: make(map[types.NamespacedName]time.Time)}
}

// due reports whether run's progress may be written at now, and if so
// counts it as written.
func (p *progressThrottle) due(run types.NamespacedName, now time.Time, interval time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.last[run]; ok && now.Sub(last) < interval {
		return false
	}
	p.last[run] = now
	return true
}

// forget drops a finished run.
func (p *progressThrottle) forget(run types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, run)
}
