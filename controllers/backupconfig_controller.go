package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
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
	"github.com/backapp/backapp/internal/schedule"
)

// BackupConfig events, on the BackupConfig.
const (
	// EventRunCreated (Normal): a scheduled or run-now BackupRun was
	// created; the run is the event's related object.
	EventRunCreated = "RunCreated"
	// EventMissedSchedule (Warning): scheduled slots passed without a run,
	// because the manager was down, the spec was invalid, or the newest
	// slot was past startingDeadlineSeconds.
	EventMissedSchedule = "MissedSchedule"
	// EventSkippedConcurrent (Warning): a slot was skipped because another
	// run was active and concurrencyPolicy is Forbid.
	EventSkippedConcurrent = "SkippedConcurrent"
	// EventReplacedRun (Normal): an active run was cancelled to start a new
	// one (concurrencyPolicy Replace).
	EventReplacedRun = "ReplacedRun"
	// EventInvalidSpec (Warning): the spec has a mistake only its author
	// can fix; emitted once per distinct mistake.
	EventInvalidSpec = "InvalidSpec"
	// EventRunNowRejected (Warning): a run-now request was handled without
	// a run because the config cannot run (invalid spec, disabled agent).
	EventRunNowRejected = "RunNowRejected"
)

// Labels and annotations of the BackupConfig controller.
const (
	// LabelRunConfig on a BackupRun names its BackupConfig, for kubectl -l.
	// The BackApp server sets the same label (webapp.LabelConfig) on the
	// runs it creates.
	LabelRunConfig = "backapp.io/config"
	// AnnotationLastHandledSlot on a BackupConfig is the newest schedule
	// slot (RFC 3339, UTC) the manager handled without starting a run for
	// it: skipped past its starting deadline, forbidden by
	// concurrencyPolicy, or passed while the config was suspended. A slot
	// that got a run is remembered by the run and status.lastScheduleTime.
	// It is written with an optimistic lock, which is also what makes a
	// skipped slot counted once when two managers race. It stands in for a
	// status field (see the Controllers report).
	AnnotationLastHandledSlot = "backapp.io/last-handled-slot"
)

// Defaults of BackupConfigReconciler and the API.
const (
	// DefaultRecheckInterval is how long a config waits before looking
	// again for a Secret or PersistentVolumeClaim it names that does not
	// exist: the manager does not watch those, so it must look.
	DefaultRecheckInterval = 5 * time.Minute
	// defaultRunsHistoryLimit is the API default of both history limits.
	defaultRunsHistoryLimit = 3
	// conflictRetryDelay is how soon a reconcile that lost an optimistic
	// lock runs again, against the newer version.
	conflictRetryDelay = time.Second
	// eventReporter names the manager in events (reportingController).
	eventReporter = "backapp-manager"
)

// BackupConfigReconciler is the scheduler: for each BackupConfig it starts
// one BackupRun per due schedule slot and one per run-now request, applies
// the concurrency policy, prunes finished runs beyond the history limits,
// and rebuilds status from the runs it owns. It holds no schedule in
// memory: what is due follows from the clock, the spec and what the runs
// and status record, so a restarted or second manager picks up exactly
// where the first stopped, and run names derived from the slot make a
// duplicate run impossible.
type BackupConfigReconciler struct {
	client.Client
	// Scheme resolves the config's kind for owner references.
	Scheme *runtime.Scheme
	// Clock is the time source (a fake one in tests).
	Clock Clock
	// Recorder emits events, e.g. mgr.GetEventRecorder("backapp-manager").
	Recorder events.EventRecorder
	// APIReader reads uncached from the apiserver: the Secrets and
	// PersistentVolumeClaims a config names (RBAC grants get on them, never
	// list or watch), and a fresh config when a status patch conflicts.
	APIReader client.Reader
	// RecheckInterval is how long to wait before looking again for a
	// missing Secret or PersistentVolumeClaim. Zero: DefaultRecheckInterval.
	RecheckInterval time.Duration
	// MaxRequeueAfter, when positive, caps every RequeueAfter. Leave it
	// zero in the manager: RequeueAfter is then exactly the time to the
	// next slot. Tests with a fake clock set it so the manager reads the
	// clock again soon after the test steps it (a fake clock wakes nobody).
	MaxRequeueAfter time.Duration
}

var _ reconcile.Reconciler = (*BackupConfigReconciler)(nil)

// SetupWithManager registers the reconciler as the controller
// "backupconfig". Fields left nil default to the manager's client, scheme,
// uncached reader and event recorder, and to the real clock.
//
// A config is reconciled when its spec or annotations change (run-now), not
// on its own status writes; when a run it owns appears, goes, or changes
// phase (progress reports do not wake it); and when the Agent it names
// appears, goes or changes spec (a config waiting for its agent becomes
// Ready without being touched).
func (r *BackupConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	managerDefaults(mgr, &r.Client, &r.Scheme, &r.APIReader, &r.Recorder, &r.Clock)
	return ctrl.NewControllerManagedBy(mgr).
		For(&backappv1alpha1.BackupConfig{}, builder.WithPredicates(
			predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&backappv1alpha1.BackupRun{}, builder.WithPredicates(runChangedPredicate())).
		Watches(&backappv1alpha1.Agent{}, handler.EnqueueRequestsFromMapFunc(r.configsOfAgent),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("backupconfig").
		Complete(r)
}

// runChangedPredicate passes the run events that can change what the
// config controller does or shows: creation, deletion, and updates that
// change the phase, start or completion, the stored object, annotations
// or spec (cancel). Progress reports, every few seconds per running run,
// pass none of these.
func runChangedPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			before, ok1 := e.ObjectOld.(*backappv1alpha1.BackupRun)
			after, ok2 := e.ObjectNew.(*backappv1alpha1.BackupRun)
			if !ok1 || !ok2 {
				return true
			}
			return before.Status.Phase != after.Status.Phase ||
				!before.Status.StartTime.Equal(after.Status.StartTime) ||
				!before.Status.CompletionTime.Equal(after.Status.CompletionTime) ||
				(before.Status.Object == nil) != (after.Status.Object == nil) ||
				before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero() ||
				before.Generation != after.Generation ||
				!maps.Equal(before.Annotations, after.Annotations)
		},
	}
}

// configsOfAgent maps an Agent to the configs that name it.
func (r *BackupConfigReconciler) configsOfAgent(ctx context.Context, agent client.Object) []reconcile.Request {
	var list backappv1alpha1.BackupConfigList
	if err := r.List(ctx, &list, client.InNamespace(agent.GetNamespace()),
		client.MatchingFields{index.ConfigAgent: agent.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "Cannot list the BackupConfigs of an Agent", "agent", agent.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, cfg := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.Name}})
	}
	return reqs
}

// configState is what one reconcile of a BackupConfig learns and decides.
// The steps fill it in; the status is written from it once, at the end.
type configState struct {
	cfg *backappv1alpha1.BackupConfig
	// prev is the status as read, for transitions (events once per
	// change, resuming after a suspension).
	prev backappv1alpha1.BackupConfigStatus
	now  time.Time
	// runs are the config's runs, including those created by this
	// reconcile.
	runs []backappv1alpha1.BackupRun
	spec specCheck

	// next is the next slot (status.nextScheduleTime); nil when nothing is
	// scheduled.
	next *time.Time
	// scheduled is the newest slot known to have a run, beyond what the
	// listed runs show (a create that found the run already there).
	scheduled time.Time
	// missed is how many slots this reconcile adds to status.missedRuns.
	missed int64
	// runNow is the run-now request handled by this reconcile, if any.
	runNow string
}

// Reconcile brings one BackupConfig up to date: it checks the spec, starts
// the runs that are due (run-now, then the schedule), prunes run history,
// and patches the status rebuilt from the runs; it requeues for the next
// slot. Mistakes only the user can fix become conditions and events, not
// errors.
func (r *BackupConfigReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	// The clock is read before the cache, so what the cache shows is at
	// least as recent as the moment the decisions are made for.
	now := r.Clock.Now()
	var cfg backappv1alpha1.BackupConfig
	if err := r.Get(ctx, req.NamespacedName, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("while reading BackupConfig %s: %w", req.NamespacedName, err)
	}
	if !cfg.DeletionTimestamp.IsZero() {
		// The runs go with the config through their owner references;
		// there is nothing of ours to clean up and nothing to start.
		return ctrl.Result{}, nil
	}

	s := &configState{cfg: &cfg, prev: *cfg.Status.DeepCopy(), now: now}
	err := r.reconcileSteps(ctx, s)
	if apierrors.IsConflict(err) {
		// Someone (another manager, the user) changed the config or a run
		// since our cache saw it. Nothing was counted; decide again on the
		// newer version.
		log.V(1).Info("BackupConfig changed while reconciling; trying again", "reason", err.Error())
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.requeueAfter(s)}, nil
}

// reconcileSteps runs the steps of one reconcile in order.
func (r *BackupConfigReconciler) reconcileSteps(ctx context.Context, s *configState) error {
	var err error
	if s.runs, err = r.listRuns(ctx, s.cfg); err != nil {
		return err
	}
	if s.spec, err = r.checkSpec(ctx, s.cfg); err != nil {
		return err
	}
	r.reportInvalidSpec(s)
	if err := r.reconcileRunNow(ctx, s); err != nil {
		return err
	}
	if err := r.reconcileSchedule(ctx, s); err != nil {
		return err
	}
	// The status is built before pruning, so a run pruned right away (a
	// history limit of 0) is still recorded as the last (successful) run.
	status := s.buildStatus()
	if err := r.pruneHistory(ctx, s); err != nil {
		return err
	}
	return r.patchStatus(ctx, s, status)
}

// listRuns returns the runs of cfg from the cache, leaving out runs that
// a previous config of the same name controls (they wait for garbage
// collection). Runs created by hand without an owner are included.
func (r *BackupConfigReconciler) listRuns(ctx context.Context, cfg *backappv1alpha1.BackupConfig) ([]backappv1alpha1.BackupRun, error) {
	var list backappv1alpha1.BackupRunList
	if err := r.List(ctx, &list, client.InNamespace(cfg.Namespace),
		client.MatchingFields{index.RunConfig: cfg.Name}); err != nil {
		return nil, fmt.Errorf("while listing the runs of BackupConfig %s: %w", cfg.Name, err)
	}
	runs := make([]backappv1alpha1.BackupRun, 0, len(list.Items))
	for _, run := range list.Items {
		if owner := metav1.GetControllerOf(&run); owner != nil && owner.UID != cfg.UID {
			continue
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// specCheck is what checkSpec found.
type specCheck struct {
	// schedule is the parsed schedule, anchored at the config's creation;
	// nil without a schedule or when it is invalid.
	schedule *schedule.Schedule
	// problems are the mistakes found, in spec order.
	problems []specProblem
	// disabledAgent names the config's Agent when it is disabled.
	disabledAgent string
}

// specProblem is a mistake in a spec that only its author can fix.
type specProblem struct {
	// reason is the condition reason (ReasonInvalidSchedule ...).
	reason string
	// message names the field and says what is wrong.
	message string
	// recheck: the object at fault is one the manager does not watch (a
	// Secret, a PersistentVolumeClaim), so it must look again later.
	recheck bool
}

func (c *specCheck) add(reason, message string, recheck bool) {
	c.problems = append(c.problems, specProblem{reason: reason, message: message, recheck: recheck})
}

// valid reports whether no problem was found.
func (c *specCheck) valid() bool { return len(c.problems) == 0 }

// reason is the condition reason of the first problem.
func (c *specCheck) reason() string { return c.problems[0].reason }

// message joins the problems' messages.
func (c *specCheck) message() string {
	msgs := make([]string, len(c.problems))
	for i, p := range c.problems {
		msgs[i] = p.message
	}
	return strings.Join(msgs, "; ")
}

// recheck reports whether a problem is with an object the manager cannot
// watch.
func (c *specCheck) recheck() bool {
	for _, p := range c.problems {
		if p.recheck {
			return true
		}
	}
	return false
}

// checkSpec checks what CRD validation cannot: that the schedule parses
// and that the Agent, PersistentVolumeClaims and Secret the spec names
// exist. Problems are returned in the specCheck; the error is for
// failures to look (the apiserver unreachable, RBAC).
func (r *BackupConfigReconciler) checkSpec(ctx context.Context, cfg *backappv1alpha1.BackupConfig) (specCheck, error) {
	var c specCheck
	if sc := cfg.Spec.Schedule; sc != nil {
		sched, err := schedule.Parse(sc.Cron, sc.TimeZone)
		switch {
		case errors.Is(err, schedule.ErrInvalidCron):
			c.add(backappv1alpha1.ReasonInvalidSchedule, "spec.schedule.cron: "+err.Error(), false)
		case errors.Is(err, schedule.ErrUnknownTimeZone):
			c.add(backappv1alpha1.ReasonUnknownTimeZone, "spec.schedule.timeZone: "+err.Error(), false)
		case err != nil:
			return c, fmt.Errorf("while parsing the schedule of BackupConfig %s: %w", cfg.Name, err)
		default:
			// @every slots count from the config's creation, so the first
			// run is one interval after it.
			c.schedule = sched.WithAnchor(cfg.CreationTimestamp.Time)
		}
	}

	if cfg.Spec.ExecutionMode == backappv1alpha1.ExecutionModeAgent {
		if err := r.checkAgent(ctx, cfg, &c); err != nil {
			return c, err
		}
	} else {
		for i, src := range cfg.Spec.Sources {
			if src.PersistentVolumeClaim == nil {
				continue
			}
			field := fmt.Sprintf("spec.sources[%d].persistentVolumeClaim.claimName", i)
			if err := r.checkExists(ctx, cfg, "PersistentVolumeClaim", src.PersistentVolumeClaim.ClaimName,
				field, backappv1alpha1.ReasonPVCNotFound, &c); err != nil {
				return c, err
			}
		}
	}

	if ref := cfg.Spec.Destination.CredentialsSecretRef; ref != nil {
		if err := r.checkExists(ctx, cfg, "Secret", ref.Name,
			"spec.destination.credentialsSecretRef.name", backappv1alpha1.ReasonSecretNotFound, &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkAgent looks up the config's Agent in the cache (Agents are
// watched, so a config waiting for its agent is reconciled when it
// appears).
func (r *BackupConfigReconciler) checkAgent(ctx context.Context, cfg *backappv1alpha1.BackupConfig, c *specCheck) error {
	ref := cfg.Spec.AgentRef
	if ref == nil {
		// CRD validation requires it; an object stored before that rule
		// may still lack it.
		c.add(backappv1alpha1.ReasonAgentNotFound, "spec.agentRef: an Agent is required when executionMode is Agent", false)
		return nil
	}
	var agent backappv1alpha1.Agent
	err := r.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: ref.Name}, &agent)
	switch {
	case apierrors.IsNotFound(err):
		c.add(backappv1alpha1.ReasonAgentNotFound,
			fmt.Sprintf("spec.agentRef.name: Agent %q does not exist in namespace %q", ref.Name, cfg.Namespace), false)
	case err != nil:
		return fmt.Errorf("while reading Agent %s of BackupConfig %s: %w", ref.Name, cfg.Name, err)
	case agent.Spec.Disabled:
		c.disabledAgent = agent.Name
	}
	return nil
}

// checkExists GETs one object's metadata through the uncached reader:
// the manager may get Secrets and PersistentVolumeClaims, never list or
// watch them, and has no use for a Secret's data here.
func (r *BackupConfigReconciler) checkExists(ctx context.Context, cfg *backappv1alpha1.BackupConfig,
	kind, name, field, reason string, c *specCheck) error {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		c.add(reason, fmt.Sprintf("%s: %s %q does not exist in namespace %q", field, kind, name, cfg.Namespace), true)
		return nil
	}
	if err != nil {
		return fmt.Errorf("while reading %s %s of BackupConfig %s: %w", kind, name, cfg.Name, err)
	}
	return nil
}

// reportInvalidSpec emits the InvalidSpec event once per distinct
// mistake: when the InvalidSpec condition was not already true with the
// same message.
func (r *BackupConfigReconciler) reportInvalidSpec(s *configState) {
	if s.spec.valid() {
		return
	}
	msg := s.spec.message()
	for _, c := range s.prev.Conditions {
		if c.Type == backappv1alpha1.ConditionInvalidSpec && c.Status == metav1.ConditionTrue && c.Message == msg {
			return
		}
	}
	r.event(s.cfg, nil, corev1.EventTypeWarning, EventInvalidSpec, "Validate", "%s", msg)
}

// reconcileRunNow handles the run-now annotation: a value not yet in
// status.lastRunNowRequest starts one Manual run whose name derives from
// the value, so a retried reconcile, a restart or a second manager cannot
// start a second one for it. It works while suspended; it is subject to no
// concurrency policy (it is an explicit request). A config that cannot run
// (invalid spec, disabled agent) records the request as handled with a
// RunNowRejected event, rather than starting a surprise run whenever the
// mistake is fixed; the user asks again with a new value.
func (r *BackupConfigReconciler) reconcileRunNow(ctx context.Context, s *configState) error {
	request := s.cfg.Annotations[backappv1alpha1.AnnotationRunNow]
	if request == "" || request == s.cfg.Status.LastRunNowRequest {
		return nil
	}
	switch {
	case !s.spec.valid():
		r.event(s.cfg, nil, corev1.EventTypeWarning, EventRunNowRejected, "Create",
			"run-now request %q not started: %s", request, s.spec.message())
	case s.spec.disabledAgent != "":
		r.event(s.cfg, nil, corev1.EventTypeWarning, EventRunNowRejected, "Create",
			"run-now request %q not started: Agent %q is disabled", request, s.spec.disabledAgent)
	default:
		if _, err := r.createRun(ctx, s, s.cfg.ManualRunName(request), backappv1alpha1.TriggerManual, time.Time{}); err != nil {
			return err
		}
	}
	s.runNow = request
	return nil
}

// createRun creates a run of the config, owned by it (so it goes with it
// and wakes it). It reports whether this call created it: a run that
// already exists under the deterministic name was created by an earlier
// attempt or another manager, and is not an error.
func (r *BackupConfigReconciler) createRun(ctx context.Context, s *configState, name string,
	trigger backappv1alpha1.RunTrigger, slot time.Time) (bool, error) {
	cfg := s.cfg
	run := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: cfg.Namespace, Name: name},
		Spec: backappv1alpha1.BackupRunSpec{
			ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name},
			Trigger:   trigger,
		},
	}
	// A label value holds at most 63 characters, a config name up to 253;
	// a longer name goes without the label (spec.configRef still says it).
	if len(validation.IsValidLabelValue(cfg.Name)) == 0 {
		run.Labels = map[string]string{LabelRunConfig: cfg.Name}
	}
	if !slot.IsZero() {
		run.Spec.ScheduledTime = &metav1.Time{Time: slot.UTC()}
	}
	if err := controllerutil.SetControllerReference(cfg, run, r.Scheme); err != nil {
		return false, fmt.Errorf("while making BackupConfig %s the owner of run %s: %w", cfg.Name, name, err)
	}
	err := r.Create(ctx, run)
	if apierrors.IsAlreadyExists(err) {
		logf.FromContext(ctx).V(1).Info("BackupRun already exists", "run", name)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("while creating BackupRun %s of BackupConfig %s: %w", name, cfg.Name, err)
	}
	s.runs = append(s.runs, *run)
	logf.FromContext(ctx).Info("Created BackupRun", "run", name, "trigger", trigger)
	if slot.IsZero() {
		r.event(cfg, run, corev1.EventTypeNormal, EventRunCreated, "Create",
			"created %s run %s", strings.ToLower(string(trigger)), name)
	} else {
		r.event(cfg, run, corev1.EventTypeNormal, EventRunCreated, "Create",
			"created run %s for the slot at %s", name, slot.UTC().Format(time.RFC3339))
	}
	return true, nil
}

// requeueAfter is when to look again: at the next slot, or after
// RecheckInterval while a Secret or PVC the spec names is missing;
// otherwise only when something watched changes.
func (r *BackupConfigReconciler) requeueAfter(s *configState) time.Duration {
	var after time.Duration
	switch {
	case s.spec.recheck():
		after = r.RecheckInterval
		if after <= 0 {
			after = DefaultRecheckInterval
		}
	case s.next != nil:
		after = s.next.Sub(s.now)
		if after <= 0 {
			// Next is always after now; this guards the arithmetic only.
			after = time.Second
		}
	}
	if after > 0 && r.MaxRequeueAfter > 0 && after > r.MaxRequeueAfter {
		after = r.MaxRequeueAfter
	}
	return after
}

// event emits an event on cfg; related is the run it is about, or nil.
func (r *BackupConfigReconciler) event(cfg *backappv1alpha1.BackupConfig, related *backappv1alpha1.BackupRun,
	eventType, reason, action, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	if related == nil {
		// A nil *BackupRun in a runtime.Object is not a nil interface.
		r.Recorder.Eventf(cfg, nil, eventType, reason, action, note, args...)
		return
	}
	r.Recorder.Eventf(cfg, related, eventType, reason, action, note, args...)
}
