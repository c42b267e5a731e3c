package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/smithy-go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/index"
	"github.com/backapp/backapp/internal/objstore"
)

// Metadata the manager puts on BackupRuns and their children.
const (
	// FinalizerArchive is on every Succeeded run with a stored archive. It
	// lets retention delete the archive before the run object goes; a run
	// deleted for any other reason loses the finalizer without S3 being
	// touched (its archive stays, catalogued in the reporting database).
	FinalizerArchive = "backapp.io/archive"
	// AnnotationDeleteArchive: "true" on a run asks that its archive be
	// deleted with it. Retention sets it just before deleting the run.
	AnnotationDeleteArchive = "backapp.io/delete-archive"
	// LabelRun on a Job and its token Secret names their BackupRun.
	LabelRun = "backapp.io/run"
	// runLabelConfig names a run's config (the value of webapp.LabelConfig,
	// which this package must not import).
	runLabelConfig = "backapp.io/config"
)

// BackupRun events. Failures of the run itself use the condition reason
// (AgentOffline, AgentStoppedReporting, JobFailed, Cancelled ...).
const (
	// EventJobCreated (Normal): the Job of a Server-mode run was created.
	EventJobCreated = "JobCreated"
	// EventAbortFailed (Warning): the run's multipart upload could not be
	// aborted; it is retried.
	EventAbortFailed = "AbortFailed"
	// EventArchiveDeleted (Normal): retention deleted the run's archive.
	EventArchiveDeleted = "ArchiveDeleted"
	// EventArchiveDeleteFailed (Warning): the archive could not be deleted;
	// it is retried and the run object stays until it is gone.
	EventArchiveDeleteFailed = "ArchiveDeleteFailed"
	// EventArchiveKept (Warning): the run was marked for archive deletion
	// but its BackupConfig is gone, so the destination is unknown.
	EventArchiveKept = "ArchiveKept"
)

// Condition types and reasons the manager sets on BackupRuns beyond those
// of api/v1alpha1 (they belong in conditions.go).
const (
	// ConditionArchiveDeleted (BackupRun, while it is being deleted): False
	// while deleting its archive fails.
	ConditionArchiveDeleted = "ArchiveDeleted"
	// ReasonArchiveDeleteFailed: see ConditionArchiveDeleted.
	ReasonArchiveDeleteFailed = "ArchiveDeleteFailed"
	// ReasonConfigNotFound: the run's BackupConfig does not exist.
	ReasonConfigNotFound = "ConfigNotFound"
)

// Defaults of BackupRunReconciler's optional fields and of config fields.
const (
	// DefaultAgentImage runs Server-mode Jobs.
	DefaultAgentImage = "ghcr.io/backapp/backapp-agent:latest"
	// DefaultPendingDeadline is how long an Agent-mode run waits for an
	// unavailable agent when its config has no
	// schedule.startingDeadlineSeconds.
	DefaultPendingDeadline = time.Hour
	// DefaultVerifyGracePeriod is how long after its Job completed a run
	// may wait for the server's verdict before it fails.
	DefaultVerifyGracePeriod = 2 * time.Minute
	// DefaultProgressDeadline applies when options.progressDeadlineSeconds
	// is unset (the CRD defaults it to the same 600 s).
	DefaultProgressDeadline = 600 * time.Second
)

// BackupRunReconciler drives BackupRuns to an end. It never marks a run
// Succeeded: only the server does, after verifying the stored object.
//
//   - Agent mode: a Pending run fails when its agent stays unavailable past
//     the starting deadline; a Running run fails when progress stops for
//     longer than options.progressDeadlineSeconds, and its upload is aborted.
//   - Server mode: a Pending run gets a Job (the agent image in job mode)
//     and a per-run token Secret; the Job's failure, or its completion
//     without a verified archive, fails the run.
//   - Cancel (spec.cancel or the backapp.io/cancel annotation): the upload
//     is aborted, the Job deleted, the run Cancelled.
//   - Deletion: the backapp.io/archive finalizer deletes the archive first
//     when retention asked for it (AnnotationDeleteArchive).
//
// Phase changes use the resourceVersion read, so the manager never
// overwrites a verdict the server wrote meanwhile.
type BackupRunReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Clock is the time source (a fake one in tests).
	Clock Clock
	// Recorder emits events, e.g. mgr.GetEventRecorder("backapp-manager").
	Recorder events.EventRecorder
	// APIReader reads destination credential Secrets one by one, uncached
	// (mgr.GetAPIReader()); it also confirms a Job is really gone.
	APIReader client.Reader
	// DefaultS3 supplies credentials, region and endpoint where a config's
	// destination has none (the server's own S3 settings).
	DefaultS3 objstore.Config

	// ServerURL is the BackApp server's agent API base URL as seen from
	// Server-mode Job pods, e.g. http://backapp.backapp-system.svc:8080.
	// Required.
	ServerURL string
	// AgentImage is the backapp-agent image of Server-mode Jobs. Default:
	// DefaultAgentImage.
	AgentImage string
	// ImagePullPolicy of the Job container. Default: Kubernetes' default
	// for the image (Always for :latest, else IfNotPresent).
	ImagePullPolicy corev1.PullPolicy
	// PendingDeadline is how long an Agent-mode run waits for an
	// unavailable agent when its config sets no
	// schedule.startingDeadlineSeconds. Default: DefaultPendingDeadline.
	PendingDeadline time.Duration
	// VerifyGracePeriod is how long a run whose Job completed waits for
	// the server to verify its archive. Default: DefaultVerifyGracePeriod.
	VerifyGracePeriod time.Duration
}

var _ reconcile.Reconciler = (*BackupRunReconciler)(nil)

// errNoServerURL: the manager cannot start Server-mode Jobs without it.
var errNoServerURL = errors.New("the BackupRun controller needs the BackApp server URL for Server-mode Jobs")

// SetupWithManager registers the reconciler as the controller "backuprun".
// Client, Scheme, APIReader, Recorder and Clock left nil default to the
// manager's and the real clock; ServerURL is required. It watches the runs, the Jobs they own, and Agents (an agent going
// offline or coming back matters to its pending runs). Token Secrets are
// not watched: that would need a Secret informer, which the manager's RBAC
// does not allow; they are deleted when the run finishes and garbage
// collected with it.
func (r *BackupRunReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.ServerURL == "" {
		return errNoServerURL
	}
	managerDefaults(mgr, &r.Client, &r.Scheme, &r.APIReader, &r.Recorder, &r.Clock)
	cached := mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).
		For(&backappv1alpha1.BackupRun{}).
		Owns(&batchv1.Job{}).
		Watches(&backappv1alpha1.Agent{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				return activeRunsOfAgent(ctx, cached, o)
			})).
		Named("backuprun").
		Complete(r)
}

// activeRunsOfAgent lists the unfinished runs of the configs assigned to
// an agent, through the cache's field indexes.
func activeRunsOfAgent(ctx context.Context, c client.Reader, o client.Object) []reconcile.Request {
	var configs backappv1alpha1.BackupConfigList
	if err := c.List(ctx, &configs, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.ConfigAgent: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "while listing the configs of an agent", "agent", o.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for _, cfg := range configs.Items {
		var runs backappv1alpha1.BackupRunList
		if err := c.List(ctx, &runs, client.InNamespace(cfg.Namespace),
			client.MatchingFields{index.RunConfig: cfg.Name}); err != nil {
			logf.FromContext(ctx).Error(err, "while listing the runs of a config", "config", cfg.Name)
			continue
		}
		for _, run := range runs.Items {
			if !run.Status.Phase.IsFinished() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&run)})
			}
		}
	}
	return reqs
}

// Reconcile moves one BackupRun along its life; see BackupRunReconciler.
func (r *BackupRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var run backappv1alpha1.BackupRun
	if err := r.Get(ctx, req.NamespacedName, &run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if run.DeletionTimestamp != nil {
		return r.reconcileDelete(ctx, &run)
	}
	// A run can outlive its config for a moment (garbage collection) or
	// name one that never existed (created by hand); every step below
	// copes with a nil config.
	cfg, err := r.configOf(ctx, &run)
	if errors.Is(err, errConfigNotFound) {
		cfg = nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case run.Status.Phase.IsFinished():
		return ctrl.Result{}, r.reconcileFinished(ctx, &run, cfg)
	case runIsCancelled(&run):
		return r.reconcileCancel(ctx, &run, cfg)
	case cfg == nil:
		return r.reconcileWithoutConfig(ctx, &run)
	case cfg.Spec.ExecutionMode == backappv1alpha1.ExecutionModeAgent:
		return r.reconcileAgentRun(ctx, &run, cfg)
	default:
		return r.reconcileServerRun(ctx, &run, cfg)
	}
}

// errConfigNotFound: the run's BackupConfig does not exist.
var errConfigNotFound = errors.New("the run's BackupConfig does not exist")

// configOf returns the run's config; errConfigNotFound when there is none.
func (r *BackupRunReconciler) configOf(ctx context.Context, run *backappv1alpha1.BackupRun) (*backappv1alpha1.BackupConfig, error) {
	var cfg backappv1alpha1.BackupConfig
	err := r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Spec.ConfigRef.Name}, &cfg)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %s", errConfigNotFound, run.Spec.ConfigRef.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("while reading config %s of run %s: %w", run.Spec.ConfigRef.Name, run.Name, err)
	}
	return &cfg, nil
}

func runIsCancelled(run *backappv1alpha1.BackupRun) bool {
	return run.Spec.Cancel || run.Annotations[backappv1alpha1.AnnotationCancel] != ""
}

// reconcileFinished tidies a run that has ended: the archive finalizer on
// a stored archive, an upload the manager failed to abort, the Job of a
// cancelled or hung run, the token. Each step is idempotent, so one that
// failed after the phase was written is retried here.
func (r *BackupRunReconciler) reconcileFinished(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) error {
	if run.Status.Phase == backappv1alpha1.RunSucceeded && run.Status.Object != nil &&
		!controllerutil.ContainsFinalizer(run, FinalizerArchive) {
		if err := r.addArchiveFinalizer(ctx, run); err != nil {
			return err
		}
	}
	if err := r.releaseUpload(ctx, run, cfg); err != nil {
		return err
	}
	if run.Status.JobRef == nil && (cfg == nil || cfg.Spec.ExecutionMode == backappv1alpha1.ExecutionModeAgent) {
		return nil
	}
	if stopJob(run) {
		if err := r.deleteJob(ctx, run); err != nil {
			return err
		}
	}
	return r.deleteToken(ctx, run)
}

// stopJob says whether a finished run's Job must be stopped: when the run
// was cancelled or its agent hung. Otherwise the Job is left to end by
// itself (it may be running the post-hook) and kept for its Pod's log.
func stopJob(run *backappv1alpha1.BackupRun) bool {
	if run.Status.Phase == backappv1alpha1.RunCancelled {
		return true
	}
	ready := meta.FindStatusCondition(run.Status.Conditions, backappv1alpha1.ConditionReady)
	return ready != nil && ready.Reason == backappv1alpha1.ReasonAgentStoppedReporting
}

func (r *BackupRunReconciler) addArchiveFinalizer(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	orig := run.DeepCopy()
	controllerutil.AddFinalizer(run, FinalizerArchive)
	err := r.Patch(ctx, run, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		// A newer version is on its way through the watch.
		return nil
	}
	if err != nil {
		return fmt.Errorf("while adding the archive finalizer to run %s: %w", run.Name, err)
	}
	return nil
}

// reconcileCancel ends a Pending or Running run as Cancelled, then aborts
// its upload and deletes its Job.
func (r *BackupRunReconciler) reconcileCancel(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	ok, err := r.finish(ctx, run, backappv1alpha1.RunCancelled, backappv1alpha1.ReasonCancelled, "cancelled on request")
	if !ok || err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.reconcileFinished(ctx, run, cfg)
}

// reconcileWithoutConfig fails a run whose config does not exist once it
// has waited as long as a run for an unavailable agent. (A config being
// deleted takes its runs with it; this is for runs created by hand.)
func (r *BackupRunReconciler) reconcileWithoutConfig(ctx context.Context, run *backappv1alpha1.BackupRun) (ctrl.Result, error) {
	now := r.Clock.Now()
	deadline := runWaitingSince(run).Add(r.pendingDeadline())
	if run.Status.Phase == backappv1alpha1.RunRunning {
		deadline = runLastProgress(run).Add(DefaultProgressDeadline)
	}
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	msg := fmt.Sprintf("BackupConfig %s does not exist", run.Spec.ConfigRef.Name)
	ok, err := r.finish(ctx, run, backappv1alpha1.RunFailed, ReasonConfigNotFound, msg)
	if !ok || err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.reconcileFinished(ctx, run, nil)
}

// finish ends run in phase (Failed or Cancelled) with reason and msg,
// keeping status.uploadID so that releaseUpload can abort it afterwards.
// The update carries the resourceVersion read: ok is false when the run
// changed meanwhile (the server may have finished it), and then nothing was
// written; the watch brings the newer version back here.
func (r *BackupRunReconciler) finish(ctx context.Context, run *backappv1alpha1.BackupRun, phase backappv1alpha1.RunPhase, reason, msg string) (bool, error) {
	now := metav1.NewTime(r.Clock.Now())
	run.Status.Phase = phase
	run.Status.CompletionTime = &now
	run.Status.Message = truncateMessage(msg, 1024)
	run.Status.ObservedGeneration = run.Generation
	for _, typ := range []string{backappv1alpha1.ConditionVerified, backappv1alpha1.ConditionReady} {
		meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
			Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: run.Status.Message,
			ObservedGeneration: run.Generation, LastTransitionTime: now,
		})
	}
	err := r.Status().Update(ctx, run)
	if apierrors.IsConflict(err) {
		logf.FromContext(ctx).V(1).Info("BackupRun changed while finishing it; waiting for the newer version", "phase", phase)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("while marking run %s %s: %w", run.Name, phase, err)
	}
	logf.FromContext(ctx).Info("Finished BackupRun", "phase", phase, "reason", reason)
	eventType := corev1.EventTypeWarning
	if phase == backappv1alpha1.RunCancelled {
		eventType = corev1.EventTypeNormal
	}
	r.event(run, eventType, reason, "Finish", "%s: %s", phase, run.Status.Message)
	return true, nil
}

// releaseUpload aborts a finished run's multipart upload and clears
// status.uploadID. A failure is reported and returned, so it is retried
// with backoff; the uploadID stays recorded until the abort succeeds.
func (r *BackupRunReconciler) releaseUpload(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) error {
	if run.Status.UploadID == "" || run.Status.Object == nil {
		return nil
	}
	if cfg == nil {
		// Without the config the destination is unknown; the bucket's
		// lifecycle rule for incomplete uploads is the backstop.
		logf.FromContext(ctx).Info("Cannot abort the upload of a run whose config is gone", "key", run.Status.Object.Key)
		return nil
	}
	st, err := r.storeFor(ctx, cfg, run.Status.Object.Bucket)
	if err == nil {
		err = st.Abort(ctx, run.Status.Object.Key, run.Status.UploadID)
	}
	if err != nil {
		r.event(run, corev1.EventTypeWarning, EventAbortFailed, "AbortUpload",
			"could not abort the upload of s3://%s/%s: %v", run.Status.Object.Bucket, run.Status.Object.Key, err)
		return fmt.Errorf("while aborting the upload of run %s: %w", run.Name, err)
	}
	orig := run.DeepCopy()
	run.Status.UploadID = ""
	err = r.Status().Patch(ctx, run, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return nil // aborting again is harmless
	}
	if err != nil {
		return fmt.Errorf("while clearing the upload id of run %s: %w", run.Name, err)
	}
	logf.FromContext(ctx).Info("Aborted the upload of BackupRun", "key", run.Status.Object.Key)
	return nil
}

// storeFor opens cfg's destination on bucket (the one an object was
// recorded in, which outlives a later change of the config's bucket).
func (r *BackupRunReconciler) storeFor(ctx context.Context, cfg *backappv1alpha1.BackupConfig, bucket string) (*objstore.Store, error) {
	if bucket != "" && bucket != cfg.Spec.Destination.Bucket {
		cfg = cfg.DeepCopy()
		cfg.Spec.Destination.Bucket = bucket
	}
	st, err := destination.Open(ctx, r.APIReader, cfg, r.DefaultS3)
	if err != nil {
		return nil, fmt.Errorf("while opening the destination of config %s: %w", cfg.Name, err)
	}
	return st, nil
}

// reconcileDelete runs the archive finalizer: the archive is deleted first
// when retention asked for it, otherwise left alone.
func (r *BackupRunReconciler) reconcileDelete(ctx context.Context, run *backappv1alpha1.BackupRun) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(run, FinalizerArchive) {
		return ctrl.Result{}, nil
	}
	if run.Annotations[AnnotationDeleteArchive] == "true" && run.Status.Object != nil {
		obj := run.Status.Object
		cfg, err := r.configOf(ctx, run)
		if err != nil && !errors.Is(err, errConfigNotFound) {
			return ctrl.Result{}, err
		}
		if cfg == nil {
			r.event(run, corev1.EventTypeWarning, EventArchiveKept, "DeleteArchive",
				"BackupConfig %s is gone, so the destination of s3://%s/%s is unknown; the archive is kept",
				run.Spec.ConfigRef.Name, obj.Bucket, obj.Key)
		} else if err := r.deleteArchive(ctx, run, cfg); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := run.DeepCopy()
	controllerutil.RemoveFinalizer(run, FinalizerArchive)
	err := r.Patch(ctx, run, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("while removing the archive finalizer of run %s: %w", run.Name, err)
	}
	return ctrl.Result{}, nil
}

// deleteArchive deletes the run's object (idempotent). A failure becomes an
// event and the ArchiveDeleted condition, and is returned for a retry with
// backoff.
func (r *BackupRunReconciler) deleteArchive(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) error {
	obj := run.Status.Object
	st, err := r.storeFor(ctx, cfg, obj.Bucket)
	if err == nil {
		err = st.Delete(ctx, obj.Key)
	}
	if err == nil {
		logf.FromContext(ctx).Info("Deleted the archive of BackupRun", "bucket", obj.Bucket, "key", obj.Key)
		r.event(run, corev1.EventTypeNormal, EventArchiveDeleted, "DeleteArchive", "deleted s3://%s/%s", obj.Bucket, obj.Key)
		return nil
	}
	r.event(run, corev1.EventTypeWarning, EventArchiveDeleteFailed, "DeleteArchive",
		"could not delete s3://%s/%s (retrying): %v", obj.Bucket, obj.Key, err)
	// The condition message must not vary between attempts (S3 request
	// ids): every status change re-queues the run at once and would defeat
	// the backoff.
	orig := run.DeepCopy()
	meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: ConditionArchiveDeleted, Status: metav1.ConditionFalse, Reason: ReasonArchiveDeleteFailed,
		Message:            fmt.Sprintf("could not delete s3://%s/%s: %s; retrying", obj.Bucket, obj.Key, s3Problem(err)),
		ObservedGeneration: run.Generation, LastTransitionTime: metav1.NewTime(r.Clock.Now()),
	})
	if !sameConditions(orig.Status.Conditions, run.Status.Conditions) {
		if perr := r.Status().Patch(ctx, run, client.MergeFrom(orig)); perr != nil && !apierrors.IsNotFound(perr) {
			logf.FromContext(ctx).Error(perr, "while recording the failed archive deletion")
		}
	}
	return fmt.Errorf("while deleting the archive of run %s: %w", run.Name, err)
}

// s3Problem names what went wrong in a stable way: the S3 error code, or
// the destination's own error class.
func s3Problem(err error) string {
	var apiErr smithy.APIError
	switch {
	case errors.Is(err, destination.ErrSecretNotFound):
		return destination.ErrSecretNotFound.Error()
	case errors.Is(err, destination.ErrMisconfigured):
		return destination.ErrMisconfigured.Error()
	case errors.As(err, &apiErr):
		return "object storage answered " + apiErr.ErrorCode()
	default:
		return "object storage is unreachable"
	}
}

func sameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason || a[i].Message != b[i].Message {
			return false
		}
	}
	return true
}

// event records an event when a recorder is set.
func (r *BackupRunReconciler) event(obj runtime.Object, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}

// runWaitingSince is when a run started waiting: its schedule slot, else its
// creation.
func runWaitingSince(run *backappv1alpha1.BackupRun) time.Time {
	if run.Spec.ScheduledTime != nil {
		return run.Spec.ScheduledTime.Time
	}
	return run.CreationTimestamp.Time
}

// runLastProgress is the last sign of life of a Running run.
func runLastProgress(run *backappv1alpha1.BackupRun) time.Time {
	switch {
	case run.Status.LastProgressTime != nil:
		return run.Status.LastProgressTime.Time
	case run.Status.StartTime != nil:
		return run.Status.StartTime.Time
	}
	return run.CreationTimestamp.Time
}

func (r *BackupRunReconciler) pendingDeadline() time.Duration {
	if r.PendingDeadline > 0 {
		return r.PendingDeadline
	}
	return DefaultPendingDeadline
}

// startingDeadline is how long a run may wait for an unavailable agent:
// the config's schedule.startingDeadlineSeconds, else PendingDeadline.
func (r *BackupRunReconciler) startingDeadline(cfg *backappv1alpha1.BackupConfig) time.Duration {
	if s := cfg.Spec.Schedule; s != nil && s.StartingDeadlineSeconds != nil {
		return time.Duration(*s.StartingDeadlineSeconds) * time.Second
	}
	return r.pendingDeadline()
}

func progressDeadline(cfg *backappv1alpha1.BackupConfig) time.Duration {
	if p := cfg.Spec.Options.ProgressDeadlineSeconds; p != nil && *p > 0 {
		return time.Duration(*p) * time.Second
	}
	return DefaultProgressDeadline
}

func truncateMessage(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
