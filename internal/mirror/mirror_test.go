package mirror

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/store"
)

var (
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

// runStart is a run's start time as the API keeps it (whole seconds).
var runStart = time.Date(2031, time.March, 4, 2, 30, 0, 0, time.UTC)

func TestMirrorFollowsCreateUpdateDeleteOfEachKind(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.startMirror()

	agent := newAgent("ann-laptop", "user-ann")
	h.create(agent)
	cfg := newAgentConfig("ann-docs", agent.Name)
	h.create(cfg)
	owned := newServerConfig("orders-db")
	owned.Annotations = map[string]string{OwnerKey: "user-bob"}
	h.create(owned)
	unowned := newServerConfig("metrics-db")
	h.create(unowned)
	run := h.newRun("ann-docs-manual-1", cfg)
	h.create(run)

	// Created: every row as the objects say, observed at t0.
	h.g.Eventually(func(g Gomega) {
		a, err := h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.ResourceVersion).To(Equal(agent.ResourceVersion))
		g.Expect([]string{a.Namespace, a.Name, a.Owner, a.DisplayName, a.Phase}).To(Equal(
			[]string{h.ns, "ann-laptop", "user-ann", "Agent ann-laptop", "Pending"}))
		g.Expect(a.CreatedAt).To(BeTemporally("==", agent.CreationTimestamp.Time))
		g.Expect(a.ObservedAt).To(BeTemporally("==", t0))
		g.Expect(a.DeletedAt).To(BeNil())

		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.ResourceVersion).To(Equal(cfg.ResourceVersion))
		g.Expect([]string{c.Owner, c.ExecutionMode, c.AgentName, c.AgentUID, c.Schedule, c.TimeZone, c.DestinationBucket, c.DestinationEndpoint}).To(Equal(
			[]string{"user-ann", "Agent", "ann-laptop", string(agent.UID), "30 2 * * *", "Europe/Berlin", "laptops", "https://s3.example.com"}))
		var spec backappv1alpha1.BackupConfigSpec
		g.Expect(json.Unmarshal(c.Spec, &spec)).To(Succeed())
		g.Expect(spec).To(Equal(cfg.Spec))
		g.Expect(c.Suspended).To(BeFalse())

		c, err = h.st.GetConfig(ctx, string(owned.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{c.Owner, c.ExecutionMode, c.AgentName, c.AgentUID}).To(Equal([]string{"user-bob", "Server", "", ""}))
		c, err = h.st.GetConfig(ctx, string(unowned.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Owner).To(Equal(DefaultOwner))

		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(run.ResourceVersion))
		g.Expect([]string{r.ConfigName, r.ConfigUID, r.Owner, r.AgentUID, r.Trigger, r.Phase}).To(Equal(
			[]string{"ann-docs", string(cfg.UID), "user-ann", string(agent.UID), "Manual", "Pending"}))
		g.Expect(r.ObservedAt).To(BeTemporally("==", t0))
	}).Should(Succeed())

	// Updated: specs, metadata and statuses, observed at t1.
	h.clk.SetTime(t1)
	h.updateStatus(agent, func() {
		agent.Status.Phase = backappv1alpha1.AgentOnline
		agent.Status.LastSeen = &metav1.Time{Time: runStart}
		agent.Status.Platform, agent.Status.Arch = "linux", "arm64"
		agent.Status.Version, agent.Status.Hostname = "1.4.0", "ann-laptop.local"
	})
	h.update(agent, func() { agent.Spec.DisplayName = "Ann's laptop" })
	h.update(cfg, func() {
		cfg.Spec.Suspend = true
		cfg.Spec.Schedule.Cron = "0 4 * * 1"
	})
	h.update(owned, func() { owned.Annotations[OwnerKey] = "user-carol" })
	h.updateStatus(run, func() {
		run.Status.Phase = backappv1alpha1.RunRunning
		run.Status.ClaimedBy = agent.Name
		run.Status.StartTime = &metav1.Time{Time: runStart}
		run.Status.BytesTransferred = 1000
	})
	h.succeed(run, runStart, 4096)

	h.g.Eventually(func(g Gomega) {
		a, err := h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.ResourceVersion).To(Equal(agent.ResourceVersion))
		g.Expect([]string{a.DisplayName, a.Phase, a.Platform, a.Arch, a.Version, a.Hostname}).To(Equal(
			[]string{"Ann's laptop", "Online", "linux", "arm64", "1.4.0", "ann-laptop.local"}))
		g.Expect(a.LastSeen).NotTo(BeNil())
		g.Expect(*a.LastSeen).To(BeTemporally("==", runStart))
		g.Expect(a.ObservedAt).To(BeTemporally("==", t1))

		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.ResourceVersion).To(Equal(cfg.ResourceVersion))
		g.Expect(c.Suspended).To(BeTrue())
		g.Expect(c.Schedule).To(Equal("0 4 * * 1"))

		c, err = h.st.GetConfig(ctx, string(owned.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Owner).To(Equal("user-carol"))

		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(run.ResourceVersion))
		expectSucceededRun(g, r, run, 4096)
		g.Expect(r.ObservedAt).To(BeTemporally("==", t1))
	}).Should(Succeed())

	// Deleted: the rows stay, marked deleted at t2, as they last were.
	h.clk.SetTime(t2)
	h.delete(run)
	h.delete(cfg)
	h.delete(owned)
	h.delete(unowned)
	h.delete(agent)

	h.g.Eventually(func(g Gomega) {
		a, err := h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.DeletedAt).NotTo(BeNil())
		g.Expect(*a.DeletedAt).To(BeTemporally("==", t2))
		g.Expect(a.Phase).To(Equal("Online"))

		for _, uid := range uidsOf(cfg, owned, unowned) {
			c, err := h.st.GetConfig(ctx, uid)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.DeletedAt).NotTo(BeNil())
			g.Expect(*c.DeletedAt).To(BeTemporally("==", t2))
		}
		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{c.Owner, c.AgentUID}).To(Equal([]string{"user-ann", string(agent.UID)}))

		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).NotTo(BeNil())
		g.Expect(*r.DeletedFromClusterAt).To(BeTemporally("==", t2))
		expectSucceededRun(g, r, run, 4096)

		g.Expect(h.uids(g, "agents")).To(ConsistOf(uidsOf(agent)))
		g.Expect(h.uids(g, "backup_configs")).To(ConsistOf(uidsOf(cfg, owned, unowned)))
		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(run)))
	}).Should(Succeed())
}

// expectSucceededRun checks the row of a run that h.succeed finished.
func expectSucceededRun(g Gomega, r store.RunRow, run *backappv1alpha1.BackupRun, bytes int64) {
	g.Expect(r.Phase).To(Equal("Succeeded"))
	g.Expect(r.StartTime).NotTo(BeNil())
	g.Expect(*r.StartTime).To(BeTemporally("==", run.Status.StartTime.Time))
	g.Expect(r.EndTime).NotTo(BeNil())
	g.Expect(*r.EndTime).To(BeTemporally("==", run.Status.CompletionTime.Time))
	g.Expect(r.Duration).To(HaveValue(Equal(90 * time.Second)))
	g.Expect([]int64{r.FilesProcessed, r.FilesSkipped, r.TotalBytes, r.BytesTransferred, r.ObjectSize, r.ErrorCount}).To(Equal(
		[]int64{120, 3, bytes, bytes, bytes / 2, 3}))
	g.Expect([]string{r.Bucket, r.ObjectKey, r.SHA256, r.Message}).To(Equal([]string{
		"laptops", "users/u/" + run.Name + ".tar.gz", run.Status.Object.SHA256, "done"}))
	g.Expect(r.Errors).To(Equal([]store.RunError{{Path: "/home/ann/locked.db", Message: "permission denied"}}))
}

func TestMirrorOwnerFollowsTheAgent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.startMirror()

	// The config names an agent that does not exist yet: nobody owns it.
	cfg := newAgentConfig("bob-docs", "bob-laptop")
	h.create(cfg)
	run := h.newRun("bob-docs-manual-1", cfg)
	h.create(run)
	h.g.Eventually(func(g Gomega) {
		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{c.AgentName, c.Owner, c.AgentUID}).To(Equal([]string{"bob-laptop", "", ""}))
		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{r.ConfigUID, r.Owner, r.AgentUID}).To(Equal([]string{string(cfg.UID), "", ""}))
	}).Should(Succeed())

	// The agent appears: the config and its run follow, though neither
	// changed.
	agent := newAgent("bob-laptop", "user-bob")
	h.create(agent)
	h.g.Eventually(func(g Gomega) {
		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{c.Owner, c.AgentUID}).To(Equal([]string{"user-bob", string(agent.UID)}))
		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{r.Owner, r.AgentUID}).To(Equal([]string{"user-bob", string(agent.UID)}))
	}).Should(Succeed())

	// The agent goes; the config and run change afterwards and keep their
	// owner and agent.
	h.delete(agent)
	h.g.Eventually(func(g Gomega) {
		a, err := h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.DeletedAt).NotTo(BeNil())
	}).Should(Succeed())
	h.clk.SetTime(t1)
	h.update(cfg, func() { cfg.Spec.Suspend = true })
	h.succeed(run, runStart, 10)
	h.g.Eventually(func(g Gomega) {
		c, err := h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.ResourceVersion).To(Equal(cfg.ResourceVersion))
		g.Expect([]string{c.Owner, c.AgentUID}).To(Equal([]string{"user-bob", string(agent.UID)}))
		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(run.ResourceVersion))
		g.Expect([]string{r.Owner, r.AgentUID, r.Phase}).To(Equal([]string{"user-bob", string(agent.UID), "Succeeded"}))
	}).Should(Succeed())
}

func TestMirrorConvergesAfterPostgresOutage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// A write that failed is not retried on its own for an hour: only the
	// resync after the outage can bring the rows back within the test.
	opts := defaultOptions()
	opts.newRetryLimiter = func() workqueue.TypedRateLimiter[reconcile.Request] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Hour, time.Hour)
	}
	m, _ := h.startMirrorWith(opts)

	agent := newAgent("ann-laptop", "user-ann")
	h.create(agent)
	cfg := newAgentConfig("ann-docs", agent.Name)
	h.create(cfg)
	finished := h.newRun("ann-docs-1", cfg)
	h.create(finished)
	pruned := h.newRun("ann-docs-2", cfg)
	h.create(pruned)
	h.g.Eventually(func(g Gomega) {
		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(finished, pruned)))
		g.Expect(h.uids(g, "backup_configs")).To(ConsistOf(uidsOf(cfg)))
		g.Expect(h.uids(g, "agents")).To(ConsistOf(uidsOf(agent)))
	}).Should(Succeed())

	if err := h.env.Postgres.Stop(); err != nil {
		t.Fatalf("stopping PostgreSQL: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = h.env.Postgres.Restart(ctx)
		}
	})

	// While PostgreSQL is away: an update, a deletion of a mirrored run,
	// new objects, and a run that comes and goes.
	h.clk.SetTime(t1)
	h.succeed(finished, runStart, 2048)
	h.delete(pruned)
	running := h.newRun("ann-docs-3", cfg)
	h.create(running)
	h.updateStatus(running, func() {
		running.Status.Phase = backappv1alpha1.RunRunning
		running.Status.ClaimedBy = agent.Name
		running.Status.BytesTransferred = 512
	})
	brief := h.newRun("ann-docs-4", cfg)
	h.create(brief)
	h.delete(brief)
	server := newServerConfig("orders-db")
	h.create(server)
	h.updateStatus(agent, func() { agent.Status.Phase = backappv1alpha1.AgentOnline })

	// The mirror has seen both deletions and could not write them.
	h.g.Eventually(func() []string {
		var uids []string
		for _, t := range m.runs.tombstones.all() {
			uids = append(uids, string(t.obj.GetUID()))
		}
		return uids
	}).Should(ConsistOf(uidsOf(pruned, brief)))

	if err := h.env.Postgres.Restart(ctx); err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
	restarted = true

	h.g.Eventually(func(g Gomega) {
		r, err := h.st.GetRun(ctx, string(finished.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(finished.ResourceVersion))
		expectSucceededRun(g, r, finished, 2048)

		r, err = h.st.GetRun(ctx, string(pruned.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).To(HaveValue(BeTemporally("==", t1)))

		r, err = h.st.GetRun(ctx, string(running.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(running.ResourceVersion))
		g.Expect([]string{r.Phase, r.Owner, r.AgentUID}).To(Equal([]string{"Running", "user-ann", string(agent.UID)}))
		g.Expect(r.BytesTransferred).To(Equal(int64(512)))

		// Created and deleted while PostgreSQL was away, and still in
		// the history.
		r, err = h.st.GetRun(ctx, string(brief.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([]string{r.Name, r.ConfigUID, r.Owner}).To(Equal([]string{"ann-docs-4", string(cfg.UID), "user-ann"}))
		g.Expect(r.DeletedFromClusterAt).To(HaveValue(BeTemporally("==", t1)))

		c, err := h.st.GetConfig(ctx, string(server.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Owner).To(Equal(DefaultOwner))

		a, err := h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.ResourceVersion).To(Equal(agent.ResourceVersion))
		g.Expect(a.Phase).To(Equal("Online"))

		// One row per object, none lost, none extra.
		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(finished, pruned, running, brief)))
		g.Expect(h.uids(g, "backup_configs")).To(ConsistOf(uidsOf(cfg, server)))
		g.Expect(h.uids(g, "agents")).To(ConsistOf(uidsOf(agent)))
		g.Expect(m.runs.tombstones.all()).To(BeEmpty())
	}).Should(Succeed())
}

func TestMirrorCatchesUpAfterManagerRestart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	_, stop := h.startMirror()

	agent := newAgent("ann-laptop", "user-ann")
	h.create(agent)
	retired := newAgent("old-desktop", "user-ann")
	h.create(retired)
	cfg := newAgentConfig("ann-docs", agent.Name)
	h.create(cfg)
	server := newServerConfig("orders-db")
	h.create(server)
	finished := h.newRun("ann-docs-1", cfg)
	h.create(finished)
	pruned := h.newRun("ann-docs-2", cfg)
	h.create(pruned)
	h.g.Eventually(func(g Gomega) {
		g.Expect(h.uids(g, "agents")).To(ConsistOf(uidsOf(agent, retired)))
		g.Expect(h.uids(g, "backup_configs")).To(ConsistOf(uidsOf(cfg, server)))
		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(finished, pruned)))
	}).Should(Succeed())

	// No mirror runs while objects change and go.
	stop()
	h.clk.SetTime(t1)
	h.delete(retired)
	h.delete(server)
	h.delete(pruned)
	h.succeed(finished, runStart, 100)
	h.update(cfg, func() { cfg.Spec.Suspend = true })
	later := h.newRun("ann-docs-3", cfg)
	h.create(later)

	h.startMirror()
	h.g.Eventually(func(g Gomega) {
		a, err := h.st.GetAgent(ctx, string(retired.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.DeletedAt).To(HaveValue(BeTemporally("==", t1)))
		c, err := h.st.GetConfig(ctx, string(server.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.DeletedAt).To(HaveValue(BeTemporally("==", t1)))
		r, err := h.st.GetRun(ctx, string(pruned.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).To(HaveValue(BeTemporally("==", t1)))

		a, err = h.st.GetAgent(ctx, string(agent.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.DeletedAt).To(BeNil())
		c, err = h.st.GetConfig(ctx, string(cfg.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.DeletedAt).To(BeNil())
		g.Expect(c.Suspended).To(BeTrue())
		r, err = h.st.GetRun(ctx, string(finished.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(finished.ResourceVersion))
		expectSucceededRun(g, r, finished, 100)
		r, err = h.st.GetRun(ctx, string(later.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).To(BeNil())

		g.Expect(h.uids(g, "agents")).To(ConsistOf(uidsOf(agent, retired)))
		g.Expect(h.uids(g, "backup_configs")).To(ConsistOf(uidsOf(cfg, server)))
		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(finished, pruned, later)))
	}).Should(Succeed())
}

func TestPrunedRunStaysAsHistory(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.startMirror()

	cfg := newServerConfig("nightly")
	h.create(cfg)
	run := h.newRun("nightly-1", cfg)
	h.create(run)
	h.succeed(run, runStart, 1<<20)
	h.g.Eventually(func(g Gomega) {
		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.ResourceVersion).To(Equal(run.ResourceVersion))
	}).Should(Succeed())

	// The history limit prunes the run; a later run takes its name.
	h.clk.SetTime(t1)
	h.delete(run)
	again := h.newRun("nightly-1", cfg)
	h.create(again)

	h.g.Eventually(func(g Gomega) {
		r, err := h.st.GetRun(ctx, string(run.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).To(HaveValue(BeTemporally("==", t1)))
		expectSucceededRun(g, r, run, 1<<20)
		g.Expect([]string{r.Name, r.ConfigUID, r.Owner}).To(Equal([]string{"nightly-1", string(cfg.UID), DefaultOwner}))

		r, err = h.st.GetRun(ctx, string(again.UID))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.DeletedFromClusterAt).To(BeNil())
		g.Expect(r.Phase).To(Equal("Pending"))

		g.Expect(h.uids(g, "backup_runs")).To(ConsistOf(uidsOf(run, again)))
	}).Should(Succeed())
}
