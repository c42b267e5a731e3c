// Package webapp is BackApp's HTTP side, served by `backapp server`: today
// the agent API under /api/agent (API-key authenticated, JSON errors with a
// stable code, rate limited, size limited), later also the user API and the
// server-rendered dashboard.
//
// It writes desired state as Kubernetes objects (Agents, BackupRuns) and
// reads them from an informer cache of one namespace; it reads Secrets one
// by one and never watches them. It never proxies backup data: agents send
// archives straight to S3 through pre-signed URLs minted per run, and the
// server completes and verifies the uploads. It must not import agent/ or
// controllers/.
package webapp
