// Package webapp will hold BackApp's HTTP side, served by `backapp server`:
// the agent API under /api/agent (API-key authenticated, JSON errors with a
// stable code), the user API and the server-rendered dashboard with its
// templates and assets embedded. It writes desired state as Kubernetes
// objects and reads history from PostgreSQL; it never proxies backup data,
// which agents send straight to S3 through pre-signed URLs.
package webapp
