package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// Agent events.
const (
	// EventAgentOffline (Warning, on the Agent): no heartbeat for
	// AgentOfflineAfter.
	EventAgentOffline = "AgentOffline"
	// EventAgentOnline (Normal, on the Agent): heartbeats arrive again after
	// the agent was Offline.
	EventAgentOnline = "AgentOnline"
)

// reasonAgentError is the Ready reason of an agent in phase Error (set by
// the server from the agent's report; the manager keeps it while heartbeats
// arrive). It belongs in api/v1alpha1/conditions.go.
const reasonAgentError = "AgentError"

// messageHeartbeatsArrive is the Online condition message the BackApp
// server writes on a heartbeat (webapp.writeAgentOnline). The manager
// writes the same words, or the two would rewrite each other's status on
// every heartbeat.
const messageHeartbeatsArrive = "heartbeats arrive"

// AgentReconciler keeps each Agent's phase and its Online and Ready
// conditions true to its last heartbeat. The BackApp server records
// heartbeats (status.lastSeen, phase Online); the manager turns an agent
// Offline at exactly lastSeen + AgentOfflineAfter by requeueing for that
// instant, so liveness costs no polling and no write per heartbeat.
type AgentReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Clock is the time source (a fake one in tests).
	Clock Clock
	// Recorder emits events, e.g. mgr.GetEventRecorder("backapp-manager").
	Recorder events.EventRecorder
}

// SetupWithManager registers the reconciler as the controller "agent".
// Client, Scheme, Recorder and Clock left nil default to the manager's and
// the real clock.
func (r *AgentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	managerDefaults(mgr, &r.Client, &r.Scheme, nil, &r.Recorder, &r.Clock)
	return ctrl.NewControllerManagedBy(mgr).
		For(&backappv1alpha1.Agent{}).
		Named("agent").
		Complete(r)
}

var _ reconcile.Reconciler = (*AgentReconciler)(nil)

// Reconcile rebuilds one Agent's phase and conditions from spec.disabled
// and status.lastSeen, patches status when that changed, and requeues for
// the instant the agent would go Offline.
func (r *AgentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	var agent backappv1alpha1.Agent
	if err := r.Get(ctx, req.NamespacedName, &agent); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if agent.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	now := r.Clock.Now()
	orig := agent.DeepCopy()
	live := agentLivenessAt(&agent, now)
	r.rebuildStatus(&agent, live, now)
	var result ctrl.Result
	if live.online {
		result.RequeueAfter = live.offlineAt.Sub(now)
	}
	if equality.Semantic.DeepEqual(orig.Status, agent.Status) {
		return result, nil
	}
	// The optimistic lock keeps a stale cache from turning Offline an agent
	// whose fresh heartbeat the server has just written: the patch then
	// conflicts, and the server's write brings us back here.
	err := r.Status().Patch(ctx, &agent, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		log.V(1).Info("Agent changed while reconciling; waiting for the newer version")
		return result, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("while updating the status of agent %s: %w", agent.Name, err)
	}
	r.recordTransition(orig, &agent)
	log.V(1).Info("Updated Agent status", "phase", agent.Status.Phase)
	return result, nil
}

// agentLiveness is what an Agent's last heartbeat says at one instant.
type agentLiveness struct {
	// seen: a heartbeat was ever recorded.
	seen bool
	// online: the last heartbeat is younger than AgentOfflineAfter.
	online bool
	// lastSeen is the last recorded heartbeat (zero when never seen).
	lastSeen time.Time
	// offlineAt is when the agent goes (or went) Offline.
	offlineAt time.Time
}

// agentOfflineAfter is backappv1alpha1.AgentOfflineAfter as a Duration.
const agentOfflineAfter = time.Duration(backappv1alpha1.AgentOfflineAfter) * time.Second

// agentLivenessAt computes an agent's liveness at now from status.lastSeen
// alone, so the Agent and BackupRun reconcilers agree without depending on
// which of them ran first.
func agentLivenessAt(agent *backappv1alpha1.Agent, now time.Time) agentLiveness {
	if agent.Status.LastSeen == nil {
		return agentLiveness{}
	}
	last := agent.Status.LastSeen.Time
	offlineAt := last.Add(agentOfflineAfter)
	return agentLiveness{seen: true, online: now.Before(offlineAt), lastSeen: last, offlineAt: offlineAt}
}

// rebuildStatus sets phase, Online and Ready. Messages must not change
// while the state does not (no timestamps of ongoing states in them), so a
// heartbeat costs the manager no write.
func (r *AgentReconciler) rebuildStatus(agent *backappv1alpha1.Agent, live agentLiveness, now time.Time) {
	gen := agent.Generation
	at := metav1.NewTime(now)
	set := func(typ string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&agent.Status.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: gen, LastTransitionTime: at,
		})
	}

	switch {
	case !live.seen:
		set(backappv1alpha1.ConditionOnline, false, backappv1alpha1.ReasonNeverSeen, "no heartbeat has arrived yet")
	case live.online:
		set(backappv1alpha1.ConditionOnline, true, backappv1alpha1.ReasonHeartbeatReceived, messageHeartbeatsArrive)
	default:
		set(backappv1alpha1.ConditionOnline, false, backappv1alpha1.ReasonHeartbeatMissed,
			"no heartbeat since "+live.lastSeen.UTC().Format(time.RFC3339))
	}

	phase := agent.Status.Phase
	switch {
	case agent.Spec.Disabled:
		phase = backappv1alpha1.AgentDisabled
		set(backappv1alpha1.ConditionReady, false, backappv1alpha1.ReasonAgentDisabled, "the agent is disabled")
	case !live.seen:
		phase = backappv1alpha1.AgentPending
		set(backappv1alpha1.ConditionReady, false, backappv1alpha1.ReasonNeverSeen, "the agent has never connected")
	case !live.online:
		phase = backappv1alpha1.AgentOffline
		set(backappv1alpha1.ConditionReady, false, backappv1alpha1.ReasonHeartbeatMissed,
			"no heartbeat since "+live.lastSeen.UTC().Format(time.RFC3339))
	case phase == backappv1alpha1.AgentError:
		// The server set Error from the agent's own report; it stays until
		// the server clears it or heartbeats stop.
		set(backappv1alpha1.ConditionReady, false, reasonAgentError, "the agent reported an error")
	default:
		phase = backappv1alpha1.AgentOnline
		set(backappv1alpha1.ConditionReady, true, backappv1alpha1.ReasonHeartbeatReceived, "the agent is online")
	}
	agent.Status.Phase = phase
	agent.Status.ObservedGeneration = gen
}

// recordTransition emits AgentOffline when the manager turns an agent
// Offline, and AgentOnline when one it had found Offline is heard again.
// Ready remembers the manager's last verdict: the server rewrites phase and
// Online on a heartbeat, but never Ready.
func (r *AgentReconciler) recordTransition(before, after *backappv1alpha1.Agent) {
	if r.Recorder == nil {
		return
	}
	if after.Status.Phase == backappv1alpha1.AgentOffline && before.Status.Phase != backappv1alpha1.AgentOffline {
		r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, EventAgentOffline, "CheckHeartbeat",
			"no heartbeat since %s", after.Status.LastSeen.UTC().Format(time.RFC3339))
		return
	}
	wasMissed := meta.FindStatusCondition(before.Status.Conditions, backappv1alpha1.ConditionReady)
	if wasMissed != nil && wasMissed.Reason == backappv1alpha1.ReasonHeartbeatMissed &&
		after.Status.Phase != backappv1alpha1.AgentOffline && after.Status.LastSeen != nil {
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, EventAgentOnline, "CheckHeartbeat",
			"heartbeats arrive again (last at %s)", after.Status.LastSeen.UTC().Format(time.RFC3339))
	}
}
