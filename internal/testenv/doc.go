// Package testenv starts the real components BackApp's tests and `backapp dev`
// run against — a kube-apiserver and etcd (envtest), a throwaway PostgreSQL
// cluster and a MinIO server — on random loopback ports with random
// credentials, and always tears them down again.
//
// Every process it starts keeps its data and configuration under one private
// directory per run (a Root). A small reaper process watches the test process
// and, if it dies for any reason (failure, panic, timeout, Ctrl-C, even
// SIGKILL), kills every process whose command line names that directory and
// removes it, so nothing outlives the run.
//
// It must not be imported by production code other than cmd/backapp's dev
// command.
package testenv
