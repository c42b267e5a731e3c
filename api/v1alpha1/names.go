package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// maxRunNameLength keeps run names usable as Job names, whose value also
// becomes a Pod label (at most 63 characters).
const maxRunNameLength = 63

// ScheduledRunName is the name of the run of config for the schedule slot
// at t: the config name and the slot in Unix minutes. The same slot always
// gives the same name, so a retried or racing reconcile cannot create a
// second run for it (the create fails with AlreadyExists).
func (c *BackupConfig) ScheduledRunName(t time.Time) string {
	return runName(c.Name, strconv.FormatInt(t.Unix()/60, 10))
}

// ManualRunName is the name of the run asked for by request (the value of
// the run-now annotation): one request, one run, however often it is seen.
func (c *BackupConfig) ManualRunName(request string) string {
	sum := sha256.Sum256([]byte(request))
	return runName(c.Name, "manual-"+hex.EncodeToString(sum[:])[:10])
}

// AgentRunName is the name of a run an agent started by itself
// (`backapp-agent backup`); token is random per request.
func (c *BackupConfig) AgentRunName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return runName(c.Name, "agent-"+hex.EncodeToString(sum[:])[:10])
}

// runName joins base and suffix, shortening base (and making it unique
// again with a hash of the full base) when the result would be too long.
func runName(base, suffix string) string {
	name := base + "-" + suffix
	if len(name) <= maxRunNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(base))
	hash := hex.EncodeToString(sum[:])[:8]
	keep := maxRunNameLength - len(suffix) - len(hash) - 2
	short := strings.TrimRight(base[:keep], "-.")
	return short + "-" + hash + "-" + suffix
}
