package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/index"
)

// EventRetentionDeleted (Normal, on the BackupConfig): retention deleted a
// run and asked for its archive to be deleted with it; the run is the
// event's related object.
const EventRetentionDeleted = "RetentionDeleted"

// RetentionReconciler applies each BackupConfig's options.retention: it
// deletes the runs that expired (see planRetention), each marked with
// AnnotationDeleteArchive so the BackupRun controller's finalizer deletes
// the archive before the run object goes, and requeues for the instant the
// next run expires.
//
// It is a controller of its own, beside the scheduler, so that retention
// has one small job and the scheduler's status stays out of it.
type RetentionReconciler struct {
	client.Client
	// Clock is the time source (a fake one in tests).
	Clock Clock
	// Recorder emits events, e.g. mgr.GetEventRecorder("backapp-manager").
	Recorder events.EventRecorder
}

var _ reconcile.Reconciler = (*RetentionReconciler)(nil)

// SetupWithManager registers the reconciler as the controller "retention".
// A config is reconciled when its spec changes and when one of its runs
// finishes, changes while finished, or goes; progress reports of running
// runs do not wake it. It needs the field index index.RunConfig. Client,
// Recorder and Clock left nil default to the manager's and the real clock.
func (r *RetentionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	managerDefaults(mgr, &r.Client, nil, nil, &r.Recorder, &r.Clock)
	finished := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return isFinishedRun(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return isFinishedRun(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backappv1alpha1.BackupConfig{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&backappv1alpha1.BackupRun{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request {
				run := o.(*backappv1alpha1.BackupRun)
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: run.Namespace, Name: run.Spec.ConfigRef.Name}}}
			}), builder.WithPredicates(finished)).
		Named("retention").
		Complete(r)
}

func isFinishedRun(o client.Object) bool {
	run, ok := o.(*backappv1alpha1.BackupRun)
	return ok && run.Status.Phase.IsFinished()
}

// Reconcile deletes one config's expired runs and requeues for the next
// expiry.
func (r *RetentionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cfg backappv1alpha1.BackupConfig
	if err := r.Get(ctx, req.NamespacedName, &cfg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ret := cfg.Spec.Options.Retention
	if ret == nil || cfg.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	var runs backappv1alpha1.BackupRunList
	if err := r.List(ctx, &runs, client.InNamespace(cfg.Namespace), client.MatchingFields{index.RunConfig: cfg.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("while listing the runs of config %s: %w", cfg.Name, err)
	}
	now := r.Clock.Now()
	plan := planRetention(runs.Items, *ret, now)
	for _, run := range plan.expired {
		if err := r.expire(ctx, &cfg, run); err != nil {
			return ctrl.Result{}, err
		}
	}
	if plan.next.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: plan.next.Sub(now)}, nil
}

// expire marks run for archive deletion and deletes it. The mark and the
// finalizer go in one patch with the resourceVersion read, so the archive
// is deleted by the finalizer whatever happens next; a run changed
// meanwhile is left for the next reconcile.
func (r *RetentionReconciler) expire(ctx context.Context, cfg *backappv1alpha1.BackupConfig, run *backappv1alpha1.BackupRun) error {
	log := logf.FromContext(ctx).WithValues("run", run.Name)
	if run.Status.Phase == backappv1alpha1.RunSucceeded && run.Status.Object != nil &&
		(run.Annotations[AnnotationDeleteArchive] != "true" || !controllerutil.ContainsFinalizer(run, FinalizerArchive)) {
		orig := run.DeepCopy()
		if run.Annotations == nil {
			run.Annotations = map[string]string{}
		}
		run.Annotations[AnnotationDeleteArchive] = "true"
		controllerutil.AddFinalizer(run, FinalizerArchive)
		err := r.Patch(ctx, run, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			log.V(1).Info("BackupRun changed before retention could mark it; retrying on the newer version")
			return nil
		}
		if err != nil {
			return fmt.Errorf("while marking run %s for archive deletion: %w", run.Name, err)
		}
	}
	err := r.Delete(ctx, run, client.Preconditions{UID: &run.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while deleting run %s: %w", run.Name, err)
	}
	finished := run.Status.CompletionTime.UTC().Format(time.RFC3339)
	log.Info("Deleted BackupRun by retention", "completionTime", finished)
	if r.Recorder != nil {
		r.Recorder.Eventf(cfg, run, corev1.EventTypeNormal, EventRetentionDeleted, "Retention",
			"deleted run %s (finished %s) by retention", run.Name, finished)
	}
	return nil
}
