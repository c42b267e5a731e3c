// Package e2e will hold the whole-system tests: the apiserver, PostgreSQL,
// MinIO, `backapp manager`, `backapp server` and several backapp-agent
// processes run as separate processes, under faults (a proxy that cuts
// connections, expiring URLs, kill -9, full disks) and bad input, and every
// scenario ends by restoring each successful backup and comparing it with
// the source.
package e2e
