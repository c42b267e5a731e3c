package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// reconcileAgentRun handles an unfinished, uncancelled Agent-mode run. The
// agent claims it through the server (Pending -> Running); the manager only
// ends runs the agent cannot or does not finish.
func (r *BackupRunReconciler) reconcileAgentRun(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	if run.Status.Phase == backappv1alpha1.RunRunning {
		return r.reconcileProgressDeadline(ctx, run, cfg)
	}
	return r.reconcileAgentPending(ctx, run, cfg)
}

// reconcileAgentPending fails a run whose agent is unavailable once the
// run has waited past its starting deadline. An agent that is online may
// still claim it, so the run then waits on: until the instant the agent
// would go offline, or the agent's next change (the Agent watch).
func (r *BackupRunReconciler) reconcileAgentPending(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	now := r.Clock.Now()
	deadline := runWaitingSince(run).Add(r.startingDeadline(cfg))
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	available, why, offlineAt, err := r.agentAvailability(ctx, cfg, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if available {
		return ctrl.Result{RequeueAfter: offlineAt.Sub(now)}, nil
	}
	ok, err := r.finish(ctx, run, backappv1alpha1.RunFailed, backappv1alpha1.ReasonAgentOffline, why)
	if !ok || err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.reconcileFinished(ctx, run, cfg)
}

// agentAvailability says whether cfg's agent can claim a run at now; when
// it cannot, why says so in the words of the run's message, and when it
// can, offlineAt is when it would stop being able to.
func (r *BackupRunReconciler) agentAvailability(ctx context.Context, cfg *backappv1alpha1.BackupConfig, now time.Time) (available bool, why string, offlineAt time.Time, err error) {
	if cfg.Spec.AgentRef == nil {
		// The CRD's validation rules make this unreachable.
		return false, "the config names no agent", time.Time{}, nil
	}
	name := cfg.Spec.AgentRef.Name
	var agent backappv1alpha1.Agent
	err = r.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: name}, &agent)
	if apierrors.IsNotFound(err) {
		return false, fmt.Sprintf("agent %s does not exist", name), time.Time{}, nil
	}
	if err != nil {
		return false, "", time.Time{}, fmt.Errorf("while reading agent %s: %w", name, err)
	}
	live := agentLivenessAt(&agent, now)
	switch {
	case agent.Spec.Disabled:
		return false, fmt.Sprintf("agent %s is disabled", name), time.Time{}, nil
	case !live.seen:
		return false, "agent never connected", time.Time{}, nil
	case !live.online:
		return false, "agent offline since " + live.lastSeen.UTC().Format(time.RFC3339), time.Time{}, nil
	}
	return true, "", live.offlineAt, nil
}

// reconcileProgressDeadline fails a Running run that has reported no
// progress for the config's progressDeadlineSeconds ("agent stopped
// reporting"), aborts its upload and, in Server mode, deletes its Job (see
// reconcileFinished).
func (r *BackupRunReconciler) reconcileProgressDeadline(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	now := r.Clock.Now()
	last := runLastProgress(run)
	deadline := last.Add(progressDeadline(cfg))
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	msg := "agent stopped reporting: no progress since " + last.UTC().Format(time.RFC3339)
	ok, err := r.finish(ctx, run, backappv1alpha1.RunFailed, backappv1alpha1.ReasonAgentStoppedReporting, msg)
	if !ok || err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.reconcileFinished(ctx, run, cfg)
}
