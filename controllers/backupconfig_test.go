package controllers_test

import (
	"context"
	"errors"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/controllers"
	"github.com/backapp/backapp/internal/index"
)

// The BackupConfig specs drive the scheduler two ways: through managers
// (the controller as deployed, with a fake clock and a short
// MaxRequeueAfter so it reads the clock again soon after a step), and by
// calling Reconcile directly where a spec needs to know a reconcile has
// finished (races, crashes, "nothing happens"). Both read and write the
// real apiserver; direct calls use a started manager's cache and indexes.
//
// Slots are at least a minute apart, and in a real cluster a manager's
// cache has long caught up with its own writes by the next slot. A fake
// clock can step faster than a cache, so before stepping past a slot the
// specs wait until every manager's cache has seen it handled
// (bcAwaitCachedSlot).

const (
	bcTimeout = 30 * time.Second
	bcPoll    = 50 * time.Millisecond
	// bcRequeueCap is the reconciler's MaxRequeueAfter in manager-driven
	// specs.
	bcRequeueCap = 100 * time.Millisecond
)

// bcConfig is an every-minute Agent-mode config (agent "laptop") with
// concurrencyPolicy Allow; mutate adjusts it.
func bcConfig(ns, name string, mutate ...func(*backappv1alpha1.BackupConfig)) *backappv1alpha1.BackupConfig {
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: "laptop"},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/ann/Documents"}},
			Destination:   backappv1alpha1.Destination{Bucket: "backups"},
			Schedule:      &backappv1alpha1.Schedule{Cron: "* * * * *", ConcurrencyPolicy: backappv1alpha1.ConcurrencyAllow},
		},
	}
	for _, m := range mutate {
		m(cfg)
	}
	return cfg
}

// bcCreate creates obj and returns it as stored.
func bcCreate[T client.Object](ctx context.Context, obj T) T {
	GinkgoHelper()
	Expect(k8s.Create(ctx, obj)).To(Succeed())
	return obj
}

// bcAgent creates the Agent name in ns.
func bcAgent(ctx context.Context, ns, name string) *backappv1alpha1.Agent {
	GinkgoHelper()
	return bcCreate(ctx, &backappv1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       backappv1alpha1.AgentSpec{DisplayName: "Ann's laptop", Owner: "ann"},
	})
}

// bcFirstSlot is the first every-minute slot since cfg was created: slots
// count from the creation second on, so one created at 10:00:00 has a
// slot at 10:00:00.
func bcFirstSlot(cfg *backappv1alpha1.BackupConfig) time.Time {
	created := cfg.CreationTimestamp.UTC()
	if slot := created.Truncate(time.Minute); slot.Equal(created) {
		return slot
	}
	return created.Truncate(time.Minute).Add(time.Minute)
}

// bcClock is a fake clock an hour before now, so nothing is due until a
// spec moves it past a config's creation.
func bcClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Now().Add(-time.Hour))
}

// bcReconciler is a reconciler for direct calls, reading through mgr's
// cache.
func bcReconciler(mgr ctrl.Manager, clk clock.PassiveClock) *controllers.BackupConfigReconciler {
	return &controllers.BackupConfigReconciler{
		Client:    mgr.GetClient(),
		Scheme:    mgr.GetScheme(),
		Clock:     clk,
		Recorder:  mgr.GetEventRecorder("backapp-manager"),
		APIReader: mgr.GetAPIReader(),
	}
}

// bcCacheManager starts a manager without controllers, for its cache.
func bcCacheManager(ctx context.Context, ns string) ctrl.Manager {
	GinkgoHelper()
	mgr := startManager(ctx, ns, func(ctrl.Manager) error { return nil })
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	return mgr
}

// bcControllerManager starts a manager running the BackupConfig
// controller on clk. Unlike startManager it can be stopped mid-spec (a
// manager restart); it is stopped at the end of the spec in any case.
func bcControllerManager(ctx context.Context, ns string, clk clock.PassiveClock) (ctrl.Manager, func()) {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(env.Kube.Config, ctrl.Options{
		Scheme:                 env.Kube.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             ctrlControllerOptions(),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(index.Register(ctx, mgr.GetFieldIndexer())).To(Succeed())
	r := &controllers.BackupConfigReconciler{Clock: clk, MaxRequeueAfter: bcRequeueCap}
	Expect(r.SetupWithManager(mgr)).To(Succeed())
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	DeferCleanup(stop)
	return mgr, stop
}

// bcReconcile calls Reconcile for cfg and fails on an error.
func bcReconcile(ctx context.Context, r *controllers.BackupConfigReconciler, cfg *backappv1alpha1.BackupConfig) ctrl.Result {
	GinkgoHelper()
	res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cfg)})
	Expect(err).NotTo(HaveOccurred())
	return res
}

// bcRace has two reconcilers reconcile cfg over and over at once, from
// four goroutines, and returns when all calls are done.
func bcRace(ctx context.Context, cfg *backappv1alpha1.BackupConfig, rA, rB *controllers.BackupConfigReconciler) {
	GinkgoHelper()
	var wg sync.WaitGroup
	for _, r := range []*controllers.BackupConfigReconciler{rA, rB, rA, rB} {
		wg.Go(func() {
			defer GinkgoRecover()
			for range 5 {
				bcReconcile(ctx, r, cfg)
			}
		})
	}
	wg.Wait()
}

// bcGet reads cfg's current version from the apiserver.
func bcGet(ctx context.Context, cfg *backappv1alpha1.BackupConfig) *backappv1alpha1.BackupConfig {
	GinkgoHelper()
	out := &backappv1alpha1.BackupConfig{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cfg), out)).To(Succeed())
	return out
}

// bcRuns lists cfg's runs from the apiserver.
func bcRuns(ctx context.Context, cfg *backappv1alpha1.BackupConfig) []backappv1alpha1.BackupRun {
	GinkgoHelper()
	var list backappv1alpha1.BackupRunList
	Expect(k8s.List(ctx, &list, client.InNamespace(cfg.Namespace),
		client.MatchingLabels{controllers.LabelRunConfig: cfg.Name})).To(Succeed())
	return list.Items
}

// bcSlots counts cfg's scheduled runs per slot (RFC 3339, UTC).
func bcSlots(ctx context.Context, cfg *backappv1alpha1.BackupConfig) map[string]int {
	GinkgoHelper()
	out := map[string]int{}
	for _, run := range bcRuns(ctx, cfg) {
		if run.Spec.Trigger == backappv1alpha1.TriggerSchedule {
			out[run.Spec.ScheduledTime.UTC().Format(time.RFC3339)]++
		}
	}
	return out
}

// bcOnce is the bcSlots of exactly one run for each slot.
func bcOnce(slots ...time.Time) map[string]int {
	out := map[string]int{}
	for _, s := range slots {
		out[s.UTC().Format(time.RFC3339)] = 1
	}
	return out
}

// bcManualRuns names cfg's Manual runs.
func bcManualRuns(ctx context.Context, cfg *backappv1alpha1.BackupConfig) []string {
	GinkgoHelper()
	var names []string
	for _, run := range bcRuns(ctx, cfg) {
		if run.Spec.Trigger == backappv1alpha1.TriggerManual {
			names = append(names, run.Name)
		}
	}
	return names
}

// bcRunOf returns cfg's run for slot.
func bcRunOf(ctx context.Context, cfg *backappv1alpha1.BackupConfig, slot time.Time) *backappv1alpha1.BackupRun {
	GinkgoHelper()
	run := &backappv1alpha1.BackupRun{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.Namespace, Name: cfg.ScheduledRunName(slot)}, run)).To(Succeed())
	return run
}

// bcFinish sets a run's status as the server does when it ends.
func bcFinish(ctx context.Context, run *backappv1alpha1.BackupRun, phase backappv1alpha1.RunPhase, object *backappv1alpha1.StoredObject) {
	GinkgoHelper()
	now := metav1.Now()
	run.Status.Phase = phase
	run.Status.StartTime = &now
	run.Status.CompletionTime = &now
	run.Status.Object = object
	Expect(k8s.Status().Update(ctx, run)).To(Succeed())
}

// bcAwaitCachedSlot waits until each manager's cache shows cfg's
// lastScheduleTime at slot: the state a real manager is in by the next slot.
func bcAwaitCachedSlot(ctx context.Context, cfg *backappv1alpha1.BackupConfig, slot time.Time, mgrs ...ctrl.Manager) {
	GinkgoHelper()
	for _, mgr := range mgrs {
		Eventually(func(g Gomega) {
			var c backappv1alpha1.BackupConfig
			g.Expect(mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(cfg), &c)).To(Succeed())
			g.Expect(c.Status.LastScheduleTime).NotTo(BeNil())
			g.Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", slot))
		}).WithTimeout(bcTimeout).WithPolling(bcPoll).Should(Succeed())
	}
}

// bcAwaitCached waits until mgr's cache holds cfg with at least the
// given status (checked by f).
func bcAwaitCached(ctx context.Context, mgr ctrl.Manager, cfg *backappv1alpha1.BackupConfig, f func(Gomega, *backappv1alpha1.BackupConfig)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		var c backappv1alpha1.BackupConfig
		g.Expect(mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(cfg), &c)).To(Succeed())
		f(g, &c)
	}).WithTimeout(bcTimeout).WithPolling(bcPoll).Should(Succeed())
}

// bcEventNotes returns the notes of the events with reason about cfg.
func bcEventNotes(ctx context.Context, cfg *backappv1alpha1.BackupConfig, reason string) []string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8s.List(ctx, &list, client.InNamespace(cfg.Namespace))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "BackupConfig" && e.Regarding.Name == cfg.Name && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// bcTime is t's time, zero when t is nil (so a matcher fails, not panics).
func bcTime(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// bcCondition returns cfg's condition of type t (or a zero one).
func bcCondition(cfg *backappv1alpha1.BackupConfig, t string) metav1.Condition {
	if c := meta.FindStatusCondition(cfg.Status.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// bcPatch changes obj by mutate with a merge patch (no lock: the
// controller writes the same objects meanwhile).
func bcPatch[T client.Object](ctx context.Context, obj T, mutate func()) {
	GinkgoHelper()
	orig := obj.DeepCopyObject().(T)
	mutate()
	Expect(k8s.Patch(ctx, obj, client.MergeFrom(orig))).To(Succeed())
}

// bcSetAnnotation sets one annotation on cfg.
func bcSetAnnotation(ctx context.Context, cfg *backappv1alpha1.BackupConfig, key, value string) {
	GinkgoHelper()
	c := bcGet(ctx, cfg)
	orig := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[key] = value
	Expect(k8s.Patch(ctx, c, client.MergeFrom(orig))).To(Succeed())
}

// bcEventually is Eventually with the BackupConfig specs' timeout.
func bcEventually(f any) AsyncAssertion {
	return Eventually(f).WithTimeout(bcTimeout).WithPolling(bcPoll)
}

// bcRecorder counts events by reason: the events API merges repeated
// events into a series only flushed minutes later, so how many times an
// event was emitted can only be seen at the recorder.
type bcRecorder struct {
	mu      sync.Mutex
	reasons map[string]int
}

func (r *bcRecorder) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reasons == nil {
		r.reasons = map[string]int{}
	}
	r.reasons[reason]++
}

func (r *bcRecorder) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reasons[reason]
}

// errManagerCrashed stands for a manager that died right after creating
// a run, before writing the config's status.
var errManagerCrashed = errors.New("manager crashed")

// bcCrashingClient fails every status write, as if the manager died just
// before it.
type bcCrashingClient struct{ client.Client }

func (c bcCrashingClient) Status() client.SubResourceWriter {
	return bcCrashingWriter{c.Client.Status()}
}

type bcCrashingWriter struct{ client.SubResourceWriter }

func (bcCrashingWriter) Patch(context.Context, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
	return errManagerCrashed
}

func (bcCrashingWriter) Update(context.Context, client.Object, ...client.SubResourceUpdateOption) error {
	return errManagerCrashed
}

var _ = Describe("BackupConfig scheduling", func() {
	var (
		ns  string
		clk *clocktesting.FakeClock
	)
	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		clk = bcClock()
		bcAgent(ctx, ns, "laptop")
	})

	It("starts exactly one run per slot across a manager restart mid-reconcile", func(ctx context.Context) {
		mgr1, stop1 := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs"))
		s1 := bcFirstSlot(cfg)

		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1)))
		bcAwaitCachedSlot(ctx, cfg, s1, mgr1)
		stop1()

		// The next manager crashes right after creating the run of slot 2,
		// before it records anything in the config's status.
		s2 := s1.Add(time.Minute)
		clk.SetTime(s2.Add(10 * time.Second))
		cacheMgr := bcCacheManager(ctx, ns)
		crashing := bcReconciler(cacheMgr, clk)
		crashing.Client = bcCrashingClient{cacheMgr.GetClient()}
		_, err := crashing.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cfg)})
		Expect(err).To(MatchError(errManagerCrashed))
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1, s2)))
		Expect(bcGet(ctx, cfg).Status.LastScheduleTime.Time).To(BeTemporally("==", s1))

		// A new manager picks up from what the runs say: no second run for
		// slot 2, and the status catches up.
		mgr3, _ := bcControllerManager(ctx, ns, clk)
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", s2))
			g.Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", s2.Add(time.Minute)))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1, s2)))
		bcAwaitCachedSlot(ctx, cfg, s2, mgr3)

		s3 := s2.Add(time.Minute)
		clk.SetTime(s3.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1, s2, s3)))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", s3))
			g.Expect(c.Status.Active).To(HaveLen(3))
			g.Expect(c.Status.MissedRuns).To(BeZero())
		}).Should(Succeed())

		run := bcRunOf(ctx, cfg, s3)
		Expect(run.Labels).To(HaveKeyWithValue(controllers.LabelRunConfig, cfg.Name))
		Expect(run.Spec.Trigger).To(Equal(backappv1alpha1.TriggerSchedule))
		Expect(metav1.IsControlledBy(run, cfg)).To(BeTrue())
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventRunCreated) }).
			Should(ContainElement(ContainSubstring(cfg.ScheduledRunName(s3))))
	})

	It("starts exactly one run per slot when two managers race", func(ctx context.Context) {
		mgrA, _ := bcControllerManager(ctx, ns, clk)
		mgrB, _ := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs"))

		var slots []time.Time
		for i := range 3 {
			slot := bcFirstSlot(cfg).Add(time.Duration(i) * time.Minute)
			slots = append(slots, slot)
			clk.SetTime(slot.Add(10 * time.Second))
			bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(slots...)))
			bcAwaitCachedSlot(ctx, cfg, slot, mgrA, mgrB)
		}
		// Each manager rebuilds status from its own cache; they agree once
		// both have seen every run.
		bcEventually(func() []backappv1alpha1.LocalObjectReference { return bcGet(ctx, cfg).Status.Active }).Should(HaveLen(3))
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(BeZero())
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(slots...)))
	})

	It("starts exactly one run per slot when two reconcilers race call for call", func(ctx context.Context) {
		mgrA, mgrB := bcCacheManager(ctx, ns), bcCacheManager(ctx, ns)
		rA, rB := bcReconciler(mgrA, clk), bcReconciler(mgrB, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs"))
		for _, mgr := range []ctrl.Manager{mgrA, mgrB} {
			bcAwaitCached(ctx, mgr, cfg, func(Gomega, *backappv1alpha1.BackupConfig) {})
		}

		var slots []time.Time
		for i := range 3 {
			slot := bcFirstSlot(cfg).Add(time.Duration(i) * time.Minute)
			slots = append(slots, slot)
			clk.SetTime(slot.Add(10 * time.Second))
			bcRace(ctx, cfg, rA, rB)
			Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(slots...)))
			bcAwaitCachedSlot(ctx, cfg, slot, mgrA, mgrB)
		}
		c := bcGet(ctx, cfg)
		Expect(c.Status.MissedRuns).To(BeZero())
		Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", slots[2]))
		Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", slots[2].Add(time.Minute)))
	})

	It("counts missed and skipped slots once when two reconcilers race call for call", func(ctx context.Context) {
		mgrA, mgrB := bcCacheManager(ctx, ns), bcCacheManager(ctx, ns)
		rA, rB := bcReconciler(mgrA, clk), bcReconciler(mgrB, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule.StartingDeadlineSeconds = ptr.To[int64](30)
		}))
		for _, mgr := range []ctrl.Manager{mgrA, mgrB} {
			bcAwaitCached(ctx, mgr, cfg, func(Gomega, *backappv1alpha1.BackupConfig) {})
		}
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcRace(ctx, cfg, rA, rB)
		bcAwaitCachedSlot(ctx, cfg, s1, mgrA, mgrB)

		// Catch-up: slots 2 and 3 missed, slot 4 runs.
		s4 := s1.Add(3 * time.Minute)
		clk.SetTime(s4.Add(10 * time.Second))
		bcRace(ctx, cfg, rA, rB)
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1, s4)))
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(Equal(int64(2)))
		bcAwaitCachedSlot(ctx, cfg, s4, mgrA, mgrB)

		// Deadline: slot 5 missed, slot 6 seen too late; both skipped.
		s6 := s4.Add(2 * time.Minute)
		clk.SetTime(s6.Add(40 * time.Second))
		bcRace(ctx, cfg, rA, rB)
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1, s4)))
		c := bcGet(ctx, cfg)
		Expect(c.Status.MissedRuns).To(Equal(int64(4)))
		Expect(c.Annotations).To(HaveKeyWithValue(controllers.AnnotationLastHandledSlot, s6.Format(time.RFC3339)))
	})

	It("starts one catch-up run for the slots missed while the manager was down, and counts them", func(ctx context.Context) {
		mgr, stop := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs"))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1)))
		bcAwaitCachedSlot(ctx, cfg, s1, mgr)
		stop()

		s6 := s1.Add(5 * time.Minute)
		clk.SetTime(s6.Add(10 * time.Second))
		bcControllerManager(ctx, ns, clk)
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", s6))
			g.Expect(c.Status.MissedRuns).To(Equal(int64(4)))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1, s6)))
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventMissedSchedule) }).
			Should(ContainElement(ContainSubstring("missed 4 scheduled run(s)")))
	})

	It("skips, counts and reports a slot past startingDeadlineSeconds", func(ctx context.Context) {
		mgr, _ := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule.StartingDeadlineSeconds = ptr.To[int64](30)
		}))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1)))
		bcAwaitCachedSlot(ctx, cfg, s1, mgr)

		// Slot 2 passes unseen; slot 3 is seen 40 s late.
		s3 := s1.Add(2 * time.Minute)
		clk.SetTime(s3.Add(40 * time.Second))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(c.Annotations).To(HaveKeyWithValue(controllers.AnnotationLastHandledSlot, s3.Format(time.RFC3339)))
			g.Expect(c.Status.MissedRuns).To(Equal(int64(2)))
			g.Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", s3.Add(time.Minute)))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1)))
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventMissedSchedule) }).
			Should(ContainElement(ContainSubstring("more than startingDeadlineSeconds (30s) late")))

		// The skipped slot stays skipped; the next one runs on time.
		s4 := s3.Add(time.Minute)
		clk.SetTime(s4.Add(5 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1, s4)))
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(Equal(int64(2)))
	})

	It("runs a daily 02:30 Europe/Berlin config once, at 03:00, on the spring-forward night", func(ctx context.Context) {
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		// The next spring-forward day: the offset at noon exceeds the one
		// at midnight.
		day := time.Now().In(berlin)
		day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, berlin)
		for {
			day = day.AddDate(0, 0, 1)
			_, mid := day.Zone()
			_, noon := day.Add(12 * time.Hour).Zone()
			if noon > mid {
				break
			}
		}
		y, m, d := day.Date()
		threeAM := time.Date(y, m, d, 3, 0, 0, 0, berlin)
		Expect(threeAM.Add(-time.Minute).Hour()).To(Equal(1), "02:xx does not exist that night")
		nextDay := time.Date(y, m, d+1, 2, 30, 0, 0, berlin)

		mgr, _ := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "nightly", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = &backappv1alpha1.Schedule{
				Cron: "30 2 * * *", TimeZone: "Europe/Berlin",
				ConcurrencyPolicy: backappv1alpha1.ConcurrencyAllow,
				// The days between now and that night are skipped, not caught up.
				StartingDeadlineSeconds: ptr.To[int64](600),
			}
		}))

		clk.SetTime(threeAM.Add(-10 * time.Minute)) // 01:50 CET
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(c.Status.NextScheduleTime).NotTo(BeNil())
			g.Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", threeAM))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(BeEmpty())

		clk.SetTime(threeAM.Add(30 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(threeAM)))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcTime(c.Status.LastScheduleTime)).To(BeTemporally("==", threeAM))
			g.Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", nextDay))
		}).Should(Succeed())
		Expect(bcRunOf(ctx, cfg, threeAM).Spec.ScheduledTime.In(berlin).Format("15:04 MST")).To(Equal("03:00 CEST"))
		bcAwaitCachedSlot(ctx, cfg, threeAM, mgr)

		clk.SetTime(nextDay.Add(30 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(threeAM, nextDay)))
	})
})

var _ = Describe("BackupConfig concurrencyPolicy", func() {
	var (
		ns  string
		clk *clocktesting.FakeClock
	)
	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		clk = bcClock()
		bcAgent(ctx, ns, "laptop")
	})

	// start creates a config with policy and lets its first slot run; the
	// run stays Pending (nobody claims it).
	start := func(ctx context.Context, policy backappv1alpha1.ConcurrencyPolicy) (*backappv1alpha1.BackupConfig, time.Time) {
		mgr, _ := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule.ConcurrencyPolicy = policy
		}))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1)))
		bcAwaitCachedSlot(ctx, cfg, s1, mgr)
		return cfg, s1
	}

	It("Allow starts the next run beside the active one", func(ctx context.Context) {
		cfg, s1 := start(ctx, backappv1alpha1.ConcurrencyAllow)
		s2 := s1.Add(time.Minute)
		clk.SetTime(s2.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1, s2)))
		bcEventually(func() []backappv1alpha1.LocalObjectReference { return bcGet(ctx, cfg).Status.Active }).Should(ConsistOf(
			backappv1alpha1.LocalObjectReference{Name: cfg.ScheduledRunName(s1)},
			backappv1alpha1.LocalObjectReference{Name: cfg.ScheduledRunName(s2)}))
		Expect(bcRunOf(ctx, cfg, s1).Spec.Cancel).To(BeFalse())
	})

	It("Forbid skips and counts a slot while a run is active, and runs again once it finished", func(ctx context.Context) {
		cfg, s1 := start(ctx, backappv1alpha1.ConcurrencyForbid)
		s2 := s1.Add(time.Minute)
		clk.SetTime(s2.Add(10 * time.Second))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(c.Status.MissedRuns).To(Equal(int64(1)))
			g.Expect(c.Annotations).To(HaveKeyWithValue(controllers.AnnotationLastHandledSlot, s2.Format(time.RFC3339)))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(s1)))
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventSkippedConcurrent) }).
			Should(ContainElement(ContainSubstring(cfg.ScheduledRunName(s1) + " is still active")))

		bcFinish(ctx, bcRunOf(ctx, cfg, s1), backappv1alpha1.RunSucceeded, nil)
		bcEventually(func() []backappv1alpha1.LocalObjectReference { return bcGet(ctx, cfg).Status.Active }).Should(BeEmpty())
		s3 := s2.Add(time.Minute)
		clk.SetTime(s3.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1, s3)))
		c := bcGet(ctx, cfg)
		Expect(c.Status.MissedRuns).To(Equal(int64(1)))
		Expect(c.Status.LastSuccessfulRun).NotTo(BeNil())
		Expect(c.Status.LastSuccessfulRun.Name).To(Equal(cfg.ScheduledRunName(s1)))
	})

	It("Replace cancels the active run and starts the new one", func(ctx context.Context) {
		cfg, s1 := start(ctx, backappv1alpha1.ConcurrencyReplace)
		s2 := s1.Add(time.Minute)
		clk.SetTime(s2.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1, s2)))
		Expect(bcRunOf(ctx, cfg, s1).Spec.Cancel).To(BeTrue())
		Expect(bcRunOf(ctx, cfg, s2).Spec.Cancel).To(BeFalse())
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventReplacedRun) }).
			Should(ContainElement(ContainSubstring("cancelled run " + cfg.ScheduledRunName(s1))))
	})
})

var _ = Describe("BackupConfig suspend and run-now", func() {
	var (
		ns  string
		clk *clocktesting.FakeClock
	)
	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		clk = bcClock()
		bcAgent(ctx, ns, "laptop")
	})

	It("starts no scheduled run while suspended, one run per run-now value, and skips the suspended slots on resume", func(ctx context.Context) {
		mgr, _ := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Suspend = true
		}))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(2*time.Minute + 10*time.Second))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			ready := bcCondition(c, backappv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(backappv1alpha1.ReasonSuspended))
			g.Expect(c.Status.NextScheduleTime).To(BeNil())
		}).Should(Succeed())

		bcSetAnnotation(ctx, cfg, backappv1alpha1.AnnotationRunNow, "request-1")
		bcEventually(func() []string { return bcManualRuns(ctx, cfg) }).Should(ConsistOf(cfg.ManualRunName("request-1")))
		bcEventually(func() string { return bcGet(ctx, cfg).Status.LastRunNowRequest }).Should(Equal("request-1"))
		bcSetAnnotation(ctx, cfg, backappv1alpha1.AnnotationRunNow, "request-2")
		bcEventually(func() []string { return bcManualRuns(ctx, cfg) }).Should(ConsistOf(
			cfg.ManualRunName("request-1"), cfg.ManualRunName("request-2")))
		bcEventually(func() string { return bcGet(ctx, cfg).Status.LastRunNowRequest }).Should(Equal("request-2"))
		Expect(bcSlots(ctx, cfg)).To(BeEmpty())
		bcAwaitCached(ctx, mgr, cfg, func(g Gomega, c *backappv1alpha1.BackupConfig) {
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Reason).To(Equal(backappv1alpha1.ReasonSuspended))
		})

		// Resume: the three slots that passed while suspended neither run
		// late nor count as missed; the next one runs.
		c := bcGet(ctx, cfg)
		bcPatch(ctx, c, func() { c.Spec.Suspend = false })
		s3 := s1.Add(2 * time.Minute)
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Reason).To(Equal(backappv1alpha1.ReasonValid))
			g.Expect(c.Annotations).To(HaveKeyWithValue(controllers.AnnotationLastHandledSlot, s3.Format(time.RFC3339)))
			g.Expect(c.Status.NextScheduleTime).NotTo(BeNil())
			g.Expect(bcTime(c.Status.NextScheduleTime)).To(BeTemporally("==", s3.Add(time.Minute)))
		}).Should(Succeed())
		Expect(bcSlots(ctx, cfg)).To(BeEmpty())
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(BeZero())

		s4 := s3.Add(time.Minute)
		clk.SetTime(s4.Add(10 * time.Second))
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s4)))
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(BeZero())
	})

	It("handles a run-now request once, even after its run was pruned and the manager restarted", func(ctx context.Context) {
		mgr, stop := bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = nil
			c.Spec.SuccessfulRunsHistoryLimit = ptr.To[int32](0)
		}))
		bcSetAnnotation(ctx, cfg, backappv1alpha1.AnnotationRunNow, "2026-11-22T10:00:00Z")
		name := cfg.ManualRunName("2026-11-22T10:00:00Z")
		bcEventually(func() []string { return bcManualRuns(ctx, cfg) }).Should(ConsistOf(name))
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventRunCreated) }).
			Should(ContainElement(ContainSubstring(name)))

		// The run succeeds; with a history limit of 0 it is pruned at once,
		// but stays recorded as the last successful run.
		run := &backappv1alpha1.BackupRun{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
		bcFinish(ctx, run, backappv1alpha1.RunSucceeded, nil)
		bcEventually(func() []string { return bcManualRuns(ctx, cfg) }).Should(BeEmpty())
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(c.Status.LastSuccessfulRun).NotTo(BeNil())
			g.Expect(c.Status.LastSuccessfulRun.Name).To(Equal(name))
			g.Expect(c.Status.LastRunNowRequest).To(Equal("2026-11-22T10:00:00Z"))
		}).Should(Succeed())
		bcAwaitCached(ctx, mgr, cfg, func(g Gomega, c *backappv1alpha1.BackupConfig) {
			g.Expect(c.Status.LastSuccessfulRun).NotTo(BeNil())
		})
		stop()

		// What a restarted manager does first: reconcile from a fresh cache.
		r := bcReconciler(bcCacheManager(ctx, ns), clk)
		for range 3 {
			bcReconcile(ctx, r, cfg)
		}
		Expect(bcManualRuns(ctx, cfg)).To(BeEmpty())
	})
})

var _ = Describe("BackupConfig run history", func() {
	var ns string
	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		bcAgent(ctx, ns, "laptop")
	})

	// run creates a finished run of cfg, owned by it, named cfg-<suffix>.
	run := func(ctx context.Context, cfg *backappv1alpha1.BackupConfig, suffix string, phase backappv1alpha1.RunPhase,
		object *backappv1alpha1.StoredObject, annotations map[string]string) {
		GinkgoHelper()
		r := &backappv1alpha1.BackupRun{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: cfg.Name + "-" + suffix, Annotations: annotations,
				Labels: map[string]string{controllers.LabelRunConfig: cfg.Name},
			},
			Spec: backappv1alpha1.BackupRunSpec{ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name}},
		}
		Expect(ctrl.SetControllerReference(cfg, r, env.Kube.Scheme)).To(Succeed())
		bcCreate(ctx, r)
		bcFinish(ctx, r, phase, object)
	}
	names := func(ctx context.Context, cfg *backappv1alpha1.BackupConfig) func() []string {
		return func() []string {
			var out []string
			for _, r := range bcRuns(ctx, cfg) {
				out = append(out, r.Name)
			}
			return out
		}
	}
	stored := func(key string) *backappv1alpha1.StoredObject {
		return &backappv1alpha1.StoredObject{Bucket: "backups", Key: key, Size: 1}
	}

	It("keeps the newest runs up to each history limit", func(ctx context.Context) {
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = nil
			c.Spec.SuccessfulRunsHistoryLimit = ptr.To[int32](2)
			c.Spec.FailedRunsHistoryLimit = ptr.To[int32](1)
		}))
		run(ctx, cfg, "h1", backappv1alpha1.RunSucceeded, stored("a"), nil)
		run(ctx, cfg, "h2", backappv1alpha1.RunFailed, nil, nil)
		run(ctx, cfg, "h3", backappv1alpha1.RunSucceeded, stored("b"), nil)
		run(ctx, cfg, "h4", backappv1alpha1.RunCancelled, nil, nil)
		run(ctx, cfg, "h5", backappv1alpha1.RunSucceeded, stored("c"), nil)
		run(ctx, cfg, "h6", backappv1alpha1.RunFailed, nil, nil)

		bcControllerManager(ctx, ns, bcClock())
		bcEventually(names(ctx, cfg)).Should(ConsistOf("docs-h3", "docs-h5", "docs-h6"))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(c.Status.LastRun).NotTo(BeNil())
			g.Expect(c.Status.LastRun.Name).To(Equal("docs-h6"))
			g.Expect(c.Status.LastRun.Phase).To(Equal(backappv1alpha1.RunFailed))
			g.Expect(c.Status.LastSuccessfulRun).NotTo(BeNil())
			g.Expect(c.Status.LastSuccessfulRun.Name).To(Equal("docs-h5"))
			g.Expect(c.Status.LastSuccessfulRun.CompletionTime).NotTo(BeNil())
		}).Should(Succeed())
	})

	It("leaves successful runs with a stored archive to retention", func(ctx context.Context) {
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = nil
			c.Spec.SuccessfulRunsHistoryLimit = ptr.To[int32](1)
			c.Spec.FailedRunsHistoryLimit = ptr.To[int32](0)
			c.Spec.Options.Retention = &backappv1alpha1.Retention{KeepLast: ptr.To[int32](1)}
		}))
		deleted := map[string]string{controllers.AnnotationDeleteArchive: "true"}
		run(ctx, cfg, "h1", backappv1alpha1.RunSucceeded, stored("a"), nil)
		run(ctx, cfg, "h2", backappv1alpha1.RunSucceeded, nil, nil)
		run(ctx, cfg, "h3", backappv1alpha1.RunSucceeded, stored("c"), deleted)
		run(ctx, cfg, "h4", backappv1alpha1.RunSucceeded, stored("d"), nil)
		run(ctx, cfg, "h5", backappv1alpha1.RunSucceeded, nil, nil)
		run(ctx, cfg, "h6", backappv1alpha1.RunFailed, nil, nil)
		run(ctx, cfg, "h7", backappv1alpha1.RunSucceeded, stored("g"), nil)

		bcControllerManager(ctx, ns, bcClock())
		// Stored archives h1, h4, h7 stay; of h2, h3, h5 (archive gone)
		// only the newest is kept; the failed h6 goes (limit 0).
		bcEventually(names(ctx, cfg)).Should(ConsistOf("docs-h1", "docs-h4", "docs-h5", "docs-h7"))
	})
})

var _ = Describe("BackupConfig spec problems", func() {
	var (
		ns  string
		clk *clocktesting.FakeClock
	)
	BeforeEach(func(ctx context.Context) {
		ns = newNamespace(ctx)
		clk = bcClock()
		bcAgent(ctx, ns, "laptop")
	})

	DescribeTable("become InvalidSpec conditions, without runs or errors",
		func(ctx context.Context, mutate func(*backappv1alpha1.BackupConfig), reason, message string, recheck bool) {
			mgr := bcCacheManager(ctx, ns)
			rec := &bcRecorder{}
			r := bcReconciler(mgr, clk)
			r.Recorder = rec
			cfg := bcCreate(ctx, bcConfig(ns, "docs", mutate, func(c *backappv1alpha1.BackupConfig) {
				c.Annotations = map[string]string{backappv1alpha1.AnnotationRunNow: "please"}
			}))
			clk.SetTime(bcFirstSlot(cfg).Add(10 * time.Second))
			bcAwaitCached(ctx, mgr, cfg, func(Gomega, *backappv1alpha1.BackupConfig) {})

			res := bcReconcile(ctx, r, cfg)
			if recheck {
				Expect(res.RequeueAfter).To(Equal(controllers.DefaultRecheckInterval))
			} else {
				Expect(res.RequeueAfter).To(BeZero())
			}
			c := bcGet(ctx, cfg)
			invalid := bcCondition(c, backappv1alpha1.ConditionInvalidSpec)
			Expect(invalid.Status).To(Equal(metav1.ConditionTrue))
			Expect(invalid.Reason).To(Equal(reason))
			Expect(invalid.Message).To(ContainSubstring(message))
			ready := bcCondition(c, backappv1alpha1.ConditionReady)
			Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			Expect(ready.Reason).To(Equal(reason))
			Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))
			Expect(c.Status.NextScheduleTime).To(BeNil())
			Expect(c.Status.LastRunNowRequest).To(Equal("please"))

			// Reconciling again changes nothing and reports nothing twice.
			bcAwaitCached(ctx, mgr, cfg, func(g Gomega, c *backappv1alpha1.BackupConfig) {
				g.Expect(c.Status.LastRunNowRequest).To(Equal("please"))
			})
			bcReconcile(ctx, r, cfg)
			Expect(bcGet(ctx, cfg).ResourceVersion).To(Equal(c.ResourceVersion))
			Expect(bcRuns(ctx, cfg)).To(BeEmpty())
			Expect(rec.count(controllers.EventInvalidSpec)).To(Equal(1))
			Expect(rec.count(controllers.EventRunNowRejected)).To(Equal(1))
			Expect(rec.count(controllers.EventRunCreated)).To(BeZero())
		},
		Entry("a cron the CRD lets through but no clock has", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule.Cron = "61 * * * *"
		}, backappv1alpha1.ReasonInvalidSchedule, `spec.schedule.cron: cron "61 * * * *": minute 61`, false),
		Entry("an unknown time zone", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule.TimeZone = "Mars/Base"
		}, backappv1alpha1.ReasonUnknownTimeZone, `spec.schedule.timeZone: unknown time zone "Mars/Base"`, false),
		Entry("a missing agent", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.AgentRef.Name = "desktop"
		}, backappv1alpha1.ReasonAgentNotFound, `spec.agentRef.name: Agent "desktop" does not exist`, false),
		Entry("a missing PersistentVolumeClaim", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.ExecutionMode = backappv1alpha1.ExecutionModeServer
			c.Spec.AgentRef = nil
			c.Spec.Sources = []backappv1alpha1.BackupSource{{PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "data"}}}
		}, backappv1alpha1.ReasonPVCNotFound,
			`spec.sources[0].persistentVolumeClaim.claimName: PersistentVolumeClaim "data" does not exist`, true),
		Entry("a missing credentials Secret", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Destination.CredentialsSecretRef = &backappv1alpha1.LocalObjectReference{Name: "s3-creds"}
		}, backappv1alpha1.ReasonSecretNotFound,
			`spec.destination.credentialsSecretRef.name: Secret "s3-creds" does not exist`, true),
	)

	It("reports a new mistake again, and a fixed Secret and PVC make the config Ready", func(ctx context.Context) {
		mgr := bcCacheManager(ctx, ns)
		rec := &bcRecorder{}
		r := bcReconciler(mgr, clk)
		r.Recorder = rec
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.ExecutionMode = backappv1alpha1.ExecutionModeServer
			c.Spec.AgentRef = nil
			c.Spec.Sources = []backappv1alpha1.BackupSource{{PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "data"}}}
			c.Spec.Destination.CredentialsSecretRef = &backappv1alpha1.LocalObjectReference{Name: "s3-creds"}
		}))
		clk.SetTime(bcFirstSlot(cfg).Add(10 * time.Second))
		bcAwaitCached(ctx, mgr, cfg, func(Gomega, *backappv1alpha1.BackupConfig) {})
		bcReconcile(ctx, r, cfg)
		c := bcGet(ctx, cfg)
		Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Message).To(And(
			ContainSubstring(`PersistentVolumeClaim "data"`), ContainSubstring(`Secret "s3-creds"`)))
		Expect(bcCondition(c, backappv1alpha1.ConditionReady).Reason).To(Equal(backappv1alpha1.ReasonPVCNotFound))

		bcCreate(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse("1Gi"),
				}},
			},
		})
		bcAwaitCached(ctx, mgr, cfg, func(g Gomega, c *backappv1alpha1.BackupConfig) {
			g.Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Message).To(ContainSubstring("PersistentVolumeClaim"))
		})
		bcReconcile(ctx, r, cfg)
		c = bcGet(ctx, cfg)
		Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Message).NotTo(ContainSubstring("PersistentVolumeClaim"))
		Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Reason).To(Equal(backappv1alpha1.ReasonSecretNotFound))
		Expect(rec.count(controllers.EventInvalidSpec)).To(Equal(2))

		bcCreate(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
			StringData: map[string]string{"accessKeyID": "id", "secretAccessKey": "secret"},
		})
		bcAwaitCached(ctx, mgr, cfg, func(g Gomega, c *backappv1alpha1.BackupConfig) {
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Reason).To(Equal(backappv1alpha1.ReasonSecretNotFound))
		})
		res := bcReconcile(ctx, r, cfg)
		c = bcGet(ctx, cfg)
		Expect(bcCondition(c, backappv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Status).To(Equal(metav1.ConditionFalse))
		Expect(bcSlots(ctx, cfg)).To(Equal(bcOnce(bcFirstSlot(cfg))))
		Expect(res.RequeueAfter).To(Equal(50 * time.Second))
		Expect(rec.count(controllers.EventInvalidSpec)).To(Equal(2))
	})

	It("waits for a missing agent and becomes Ready when it is created, without the config being touched", func(ctx context.Context) {
		bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.AgentRef.Name = "desktop"
		}))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Reason).To(Equal(backappv1alpha1.ReasonAgentNotFound))
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		bcEventually(func() []string { return bcEventNotes(ctx, cfg, controllers.EventInvalidSpec) }).
			Should(ConsistOf(ContainSubstring(`Agent "desktop" does not exist`)))
		Expect(bcRuns(ctx, cfg)).To(BeEmpty())
		generation := bcGet(ctx, cfg).Generation

		bcAgent(ctx, ns, "desktop")
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		bcEventually(func() map[string]int { return bcSlots(ctx, cfg) }).Should(Equal(bcOnce(s1)))
		Expect(bcGet(ctx, cfg).Generation).To(Equal(generation))
	})

	It("starts no run for a disabled agent, and resumes without catching up when it is enabled", func(ctx context.Context) {
		agent := bcCreate(ctx, &backappv1alpha1.Agent{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "desktop"},
			Spec:       backappv1alpha1.AgentSpec{DisplayName: "Ann's desktop", Owner: "ann", Disabled: true},
		})
		bcControllerManager(ctx, ns, clk)
		cfg := bcCreate(ctx, bcConfig(ns, "docs", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.AgentRef.Name = "desktop"
		}))
		s1 := bcFirstSlot(cfg)
		clk.SetTime(s1.Add(10 * time.Second))
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			ready := bcCondition(c, backappv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(backappv1alpha1.ReasonAgentDisabled))
			g.Expect(bcCondition(c, backappv1alpha1.ConditionInvalidSpec).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Status.NextScheduleTime).To(BeNil())
		}).Should(Succeed())
		Expect(bcRuns(ctx, cfg)).To(BeEmpty())

		bcPatch(ctx, agent, func() { agent.Spec.Disabled = false })
		bcEventually(func(g Gomega) {
			c := bcGet(ctx, cfg)
			g.Expect(bcCondition(c, backappv1alpha1.ConditionReady).Reason).To(Equal(backappv1alpha1.ReasonValid))
			g.Expect(c.Annotations).To(HaveKeyWithValue(controllers.AnnotationLastHandledSlot, s1.Format(time.RFC3339)))
		}).Should(Succeed())
		Expect(bcRuns(ctx, cfg)).To(BeEmpty())
		Expect(bcGet(ctx, cfg).Status.MissedRuns).To(BeZero())
	})
})
