package testenv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Options says which components Start brings up.
type Options struct {
	Kube     bool // kube-apiserver + etcd with the CRDs
	Postgres bool // a throwaway PostgreSQL cluster with a database
	MinIO    bool // a MinIO server with a bucket
}

// All is every component.
var All = Options{Kube: true, Postgres: true, MinIO: true}

// Env is one running test environment. Fields for components that were not
// asked for are nil.
type Env struct {
	Root     *Root
	Tools    Tools
	Kube     *Kube
	Postgres *Postgres
	MinIO    *MinIO

	stopOnce sync.Once
	stopErr  error
}

// Start brings up the components in opts side by side, each on random
// loopback ports with random credentials, all under one Root. If any fails,
// the others are stopped and everything is removed before Start returns.
func Start(ctx context.Context, opts Options) (*Env, error) {
	tools, err := FindTools()
	if err != nil {
		return nil, err
	}
	root, err := NewRoot()
	if err != nil {
		return nil, err
	}
	e := &Env{Root: root, Tools: tools}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(enabled bool, start func() error) {
		if !enabled {
			return
		}
		wg.Go(func() {
			if err := start(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	run(opts.Kube, func() (err error) { e.Kube, err = StartKube(ctx, root, tools); return })
	run(opts.Postgres, func() (err error) { e.Postgres, err = StartPostgres(ctx, root, tools); return })
	run(opts.MinIO, func() (err error) { e.MinIO, err = StartMinIO(ctx, root, tools); return })
	wg.Wait()

	if len(errs) > 0 {
		startErr := fmt.Errorf("while starting the test environment: %w", errors.Join(errs...))
		if stopErr := e.Stop(); stopErr != nil {
			return nil, errors.Join(startErr, stopErr)
		}
		return nil, startErr
	}
	return e, nil
}

// Stop stops every component and removes the Root, whatever failed on the
// way. Idempotent and safe on a partly started Env.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if e.MinIO != nil {
			errs = append(errs, e.MinIO.Close())
		}
		if e.Postgres != nil {
			errs = append(errs, e.Postgres.Close())
		}
		if e.Kube != nil {
			errs = append(errs, e.Kube.Close())
		}
		errs = append(errs, e.Root.Close())
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// New starts an Env for a test and stops it when the test ends; a failure
// to start fails the test.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	e, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("test environment: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping the test environment: %v", err)
		}
	})
	return e
}

// StartTimeout bounds how long Start may take on a busy machine; suites use
// it for their BeforeSuite.
const StartTimeout = kubeStartTimeout + 30*time.Second
