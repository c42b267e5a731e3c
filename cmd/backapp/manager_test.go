package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/testenv"
)

func TestManagerNeedsAServerURL(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"manager"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--server-url is required") {
		t.Errorf("exit %d stderr %q", code, errb.String())
	}
}

// TestManagerRunsTheControllers runs `backapp manager` (with leader
// election and the PostgreSQL mirror) against a real apiserver: a run-now
// request on a config becomes exactly one BackupRun, and Ctrl-C stops it.
func TestManagerRunsTheControllers(t *testing.T) {
	env := testenv.New(t, testenv.Options{Kube: true, Postgres: true})
	ctx := t.Context()
	c := env.Kube.Client
	ns := "mgr"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	agent := &backappv1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "laptop"},
		Spec: backappv1alpha1.AgentSpec{DisplayName: "Laptop", Owner: "ann"}}
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs",
			Annotations: map[string]string{backappv1alpha1.AnnotationRunNow: "first"}},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent.Name},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/ann"}},
			Destination:   backappv1alpha1.Destination{Bucket: "backups"},
		},
	}
	for _, o := range []client.Object{agent, cfg} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("BACKAPP_DATABASE_URL", env.Postgres.URL)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(mctx, []string{"manager", "--kubeconfig", env.Kube.Kubeconfig, "--metrics-bind-address", "0",
			"--health-probe-bind-address", "0", "--leader-election-namespace", ns,
			"--server-url", "http://backapp.example:8080"}, &stdout, &stderr)
	}()

	want := cfg.ManualRunName("first")
	deadline := time.Now().Add(time.Minute)
	for {
		var run backappv1alpha1.BackupRun
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: want}, &run); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("manager exited with %d: %s", code, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run %s within a minute; stderr: %s", want, stderr.String())
		}
	}
	var runs backappv1alpha1.BackupRunList
	if err := c.List(ctx, &runs, client.InNamespace(ns)); err != nil || len(runs.Items) != 1 {
		t.Fatalf("runs: %d (%v), want exactly 1", len(runs.Items), err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("manager exited with %d after Ctrl-C: %s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("manager did not stop within a minute")
	}
	if strings.Contains(stdout.String()+stderr.String(), env.Postgres.Password) {
		t.Error("the database password was logged")
	}
}
