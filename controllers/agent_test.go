package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/controllers"
)

var _ = Describe("Agent liveness", func() {
	var (
		ns    string
		clock *clocktesting.FakeClock
		t0    time.Time
		// direct is the reconciler the manager runs, but reading straight
		// from the apiserver, so a spec can reconcile at an exact instant
		// without waiting for the manager's cache.
		direct *controllers.AgentReconciler
	)

	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		t0 = time.Now().UTC().Truncate(time.Second)
		clock = clocktesting.NewFakeClock(t0)
		startManager(ctx, ns, func(mgr ctrl.Manager) error {
			r := &controllers.AgentReconciler{
				Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Clock: clock,
				Recorder: mgr.GetEventRecorder("backapp-manager"),
			}
			direct = &controllers.AgentReconciler{Client: k8s, Scheme: r.Scheme, Clock: clock, Recorder: r.Recorder}
			return r.SetupWithManager(mgr)
		})
	})

	newAgent := func(ctx context.Context, name string) *backappv1alpha1.Agent {
		GinkgoHelper()
		agent := &backappv1alpha1.Agent{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       backappv1alpha1.AgentSpec{DisplayName: "Ann's laptop", Owner: "ann"},
		}
		Expect(k8s.Create(ctx, agent)).To(Succeed())
		return agent
	}

	// heartbeat writes status as the BackApp server does on a heartbeat.
	heartbeat := func(ctx context.Context, agent *backappv1alpha1.Agent, at time.Time) {
		GinkgoHelper()
		runEventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(agent), agent)).To(Succeed())
			orig := agent.DeepCopy()
			seen := metav1.NewTime(at)
			agent.Status.Phase = backappv1alpha1.AgentOnline
			agent.Status.LastSeen = &seen
			meta.SetStatusCondition(&agent.Status.Conditions, metav1.Condition{
				Type: backappv1alpha1.ConditionOnline, Status: metav1.ConditionTrue,
				Reason: backappv1alpha1.ReasonHeartbeatReceived, Message: "heartbeats arrive",
			})
			g.Expect(k8s.Status().Patch(ctx, agent, client.MergeFrom(orig))).To(Succeed())
		}).Should(Succeed())
	}

	reconcileAt := func(ctx context.Context, at time.Time, agent *backappv1alpha1.Agent) ctrl.Result {
		GinkgoHelper()
		clock.SetTime(at)
		res, err := direct.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(agent)})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(agent), agent)).To(Succeed())
		return res
	}

	agentEvents := func(ctx context.Context, name, reason string) func() []eventsv1.Event {
		return func() []eventsv1.Event {
			var list eventsv1.EventList
			Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var out []eventsv1.Event
			for _, e := range list.Items {
				if e.Regarding.Kind == "Agent" && e.Regarding.Name == name && e.Reason == reason {
					out = append(out, e)
				}
			}
			return out
		}
	}

	It("is Pending until the first heartbeat", func(ctx context.Context) {
		agent := newAgent(ctx, "laptop")
		runEventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(agent), agent)).To(Succeed())
			g.Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentPending))
			online := meta.FindStatusCondition(agent.Status.Conditions, backappv1alpha1.ConditionOnline)
			g.Expect(online).NotTo(BeNil())
			g.Expect(online.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(online.Reason).To(Equal(backappv1alpha1.ReasonNeverSeen))
			g.Expect(meta.IsStatusConditionFalse(agent.Status.Conditions, backappv1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
		// Nothing will change by itself: no requeue.
		Expect(reconcileAt(ctx, t0.Add(time.Hour), agent)).To(Equal(ctrl.Result{}))
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentPending))
	})

	It("goes Offline exactly 5 minutes after the last heartbeat, without polling, and back Online on the next", func(ctx context.Context) {
		agent := newAgent(ctx, "laptop")
		heartbeat(ctx, agent, t0)

		// Just after the heartbeat: Online, and the only requeue is for the
		// instant it would go offline.
		res := reconcileAt(ctx, t0.Add(10*time.Second), agent)
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentOnline))
		Expect(meta.IsStatusConditionTrue(agent.Status.Conditions, backappv1alpha1.ConditionReady)).To(BeTrue())
		Expect(res.RequeueAfter).To(Equal(5*time.Minute - 10*time.Second))

		// A minute later nothing changed, so nothing is written.
		version := agent.ResourceVersion
		reconcileAt(ctx, t0.Add(time.Minute), agent)
		Expect(agent.ResourceVersion).To(Equal(version))

		res = reconcileAt(ctx, t0.Add(4*time.Minute+59*time.Second), agent)
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentOnline))
		Expect(res.RequeueAfter).To(Equal(time.Second))

		res = reconcileAt(ctx, t0.Add(5*time.Minute), agent)
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentOffline))
		Expect(res.RequeueAfter).To(BeZero())
		online := meta.FindStatusCondition(agent.Status.Conditions, backappv1alpha1.ConditionOnline)
		Expect(online.Status).To(Equal(metav1.ConditionFalse))
		Expect(online.Reason).To(Equal(backappv1alpha1.ReasonHeartbeatMissed))
		Expect(online.Message).To(ContainSubstring(t0.Format(time.RFC3339)))
		ready := meta.FindStatusCondition(agent.Status.Conditions, backappv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		Expect(ready.Reason).To(Equal(backappv1alpha1.ReasonHeartbeatMissed))
		runEventually(agentEvents(ctx, agent.Name, controllers.EventAgentOffline)).Should(HaveLen(1))

		// The server records the next heartbeat; the manager agrees and
		// says the agent is back.
		back := t0.Add(7 * time.Minute)
		heartbeat(ctx, agent, back)
		res = reconcileAt(ctx, back, agent)
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentOnline))
		Expect(meta.IsStatusConditionTrue(agent.Status.Conditions, backappv1alpha1.ConditionReady)).To(BeTrue())
		Expect(res.RequeueAfter).To(Equal(5 * time.Minute))
		runEventually(agentEvents(ctx, agent.Name, controllers.EventAgentOnline)).ShouldNot(BeEmpty())
	})

	It("is Disabled while spec.disabled is set, whatever its heartbeats", func(ctx context.Context) {
		agent := newAgent(ctx, "laptop")
		heartbeat(ctx, agent, t0)
		runEventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(agent), agent)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(agent.Status.Conditions, backappv1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())

		orig := agent.DeepCopy()
		agent.Spec.Disabled = true
		Expect(k8s.Patch(ctx, agent, client.MergeFrom(orig))).To(Succeed())
		runEventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(agent), agent)).To(Succeed())
			g.Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentDisabled))
			ready := meta.FindStatusCondition(agent.Status.Conditions, backappv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(backappv1alpha1.ReasonAgentDisabled))
			g.Expect(agent.Status.ObservedGeneration).To(Equal(agent.Generation))
		}).Should(Succeed())

		// Still Disabled once the heartbeats stop.
		reconcileAt(ctx, t0.Add(10*time.Minute), agent)
		Expect(agent.Status.Phase).To(Equal(backappv1alpha1.AgentDisabled))
	})
})
