package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/controllers"
	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/testenv"
)

// runConvergeTimeout bounds how long a spec waits for the manager to
// converge (manager start, cache sync, S3 client retries). It is a bound on
// waiting, not an assertion on speed.
const runConvergeTimeout = 30 * time.Second

// runEventually is Eventually with runConvergeTimeout.
func runEventually(actual any) AsyncAssertion {
	return Eventually(actual).WithTimeout(runConvergeTimeout)
}

const (
	runTestServerURL  = "http://backapp.backapp-system.svc:8080"
	runTestAgentImage = "registry.example/backapp-agent:v1.2.3"
)

// runFixture is one spec's namespace and manager running the BackupRun and
// retention controllers on a fake clock, with MinIO as the destination.
type runFixture struct {
	ns    string
	t0    time.Time
	clock *clocktesting.FakeClock
	mgr   ctrl.Manager
	// direct is the BackupRun reconciler the manager runs, but reading
	// straight from the apiserver, so a spec can reconcile at an exact
	// instant without waiting for the manager's cache.
	direct *controllers.BackupRunReconciler
	// retention is the retention reconciler the manager runs.
	retention *controllers.RetentionReconciler
	// store reaches the MinIO bucket the configs write to.
	store *objstore.Store
}

func newRunFixture(ctx context.Context) *runFixture {
	GinkgoHelper()
	f := &runFixture{ns: newNamespace(ctx), t0: time.Now().UTC().Truncate(time.Second)}
	f.clock = clocktesting.NewFakeClock(f.t0)
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "s3"},
		StringData: map[string]string{"accessKeyID": env.MinIO.AccessKey, "secretAccessKey": env.MinIO.SecretKey},
	})).To(Succeed())
	var err error
	f.store, err = objstore.New(objstore.Config{
		Endpoint: env.MinIO.Endpoint, Region: env.MinIO.Region, Bucket: env.MinIO.Bucket,
		AccessKeyID: env.MinIO.AccessKey, SecretAccessKey: env.MinIO.SecretKey, ForcePathStyle: true,
		HTTPClient: noProxyHTTPClient(),
	})
	Expect(err).NotTo(HaveOccurred())
	f.mgr = startManager(ctx, f.ns, func(mgr ctrl.Manager) error {
		runs := &controllers.BackupRunReconciler{
			Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Clock: f.clock,
			Recorder:  mgr.GetEventRecorder("backapp-manager"),
			APIReader: mgr.GetAPIReader(),
			// Credentials come from each config's Secret.
			DefaultS3:  objstore.Config{Region: env.MinIO.Region, HTTPClient: noProxyHTTPClient()},
			ServerURL:  runTestServerURL,
			AgentImage: runTestAgentImage,
		}
		direct := *runs
		direct.Client, direct.APIReader = k8s, k8s
		f.direct = &direct
		f.retention = &controllers.RetentionReconciler{Client: mgr.GetClient(), Clock: f.clock, Recorder: runs.Recorder}
		if err := runs.SetupWithManager(mgr); err != nil {
			return err
		}
		return f.retention.SetupWithManager(mgr)
	})
	return f
}

// noProxyHTTPClient reaches the loopback MinIO directly, whatever
// HTTP_PROXY says.
func noProxyHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
}

// destination is a MinIO destination with the spec's credentials Secret.
func (f *runFixture) destination() backappv1alpha1.Destination {
	return backappv1alpha1.Destination{
		Bucket: env.MinIO.Bucket, Endpoint: env.MinIO.Endpoint, ForcePathStyle: true,
		CredentialsSecretRef: &backappv1alpha1.LocalObjectReference{Name: "s3"},
	}
}

func (f *runFixture) agentConfig(ctx context.Context, name, agent string, mutate func(*backappv1alpha1.BackupConfig)) *backappv1alpha1.BackupConfig {
	GinkgoHelper()
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/ann/Documents"}},
			Destination:   f.destination(),
		},
	}
	if mutate != nil {
		mutate(cfg)
	}
	Expect(k8s.Create(ctx, cfg)).To(Succeed())
	return cfg
}

func (f *runFixture) serverConfig(ctx context.Context, name string, mutate func(*backappv1alpha1.BackupConfig)) *backappv1alpha1.BackupConfig {
	GinkgoHelper()
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeServer,
			Sources: []backappv1alpha1.BackupSource{
				{Name: "files", PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "app-data", Path: "srv/files"}},
				{PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "app-logs"}},
				{Name: "db", PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "app-data", Path: "db"}},
			},
			Destination: f.destination(),
		},
	}
	if mutate != nil {
		mutate(cfg)
	}
	Expect(k8s.Create(ctx, cfg)).To(Succeed())
	return cfg
}

// agent creates an Agent; lastSeen, when set, is written as the server
// writes a heartbeat.
func (f *runFixture) agent(ctx context.Context, name string, lastSeen *time.Time) *backappv1alpha1.Agent {
	GinkgoHelper()
	agent := &backappv1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       backappv1alpha1.AgentSpec{DisplayName: name, Owner: "ann"},
	}
	Expect(k8s.Create(ctx, agent)).To(Succeed())
	if lastSeen != nil {
		seen := metav1.NewTime(*lastSeen)
		agent.Status.Phase = backappv1alpha1.AgentOnline
		agent.Status.LastSeen = &seen
		Expect(k8s.Status().Update(ctx, agent)).To(Succeed())
	}
	return agent
}

// run creates a run of cfg owned by it, as the scheduler does.
func (f *runFixture) run(ctx context.Context, cfg *backappv1alpha1.BackupConfig, name string, mutate func(*backappv1alpha1.BackupRun)) *backappv1alpha1.BackupRun {
	GinkgoHelper()
	run := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: map[string]string{"backapp.io/config": cfg.Name}},
		Spec: backappv1alpha1.BackupRunSpec{
			ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name},
			Trigger:   backappv1alpha1.TriggerManual,
		},
	}
	Expect(controllerutil.SetControllerReference(cfg, run, env.Kube.Scheme)).To(Succeed())
	if mutate != nil {
		mutate(run)
	}
	Expect(k8s.Create(ctx, run)).To(Succeed())
	return run
}

// setStatus changes a run's status as the BackApp server does, on the
// newest version.
func (f *runFixture) setStatus(ctx context.Context, run *backappv1alpha1.BackupRun, mutate func(*backappv1alpha1.BackupRunStatus)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
			return err
		}
		mutate(&run.Status)
		return k8s.Status().Update(ctx, run)
	})).To(Succeed())
}

// reconcileAt runs the BackupRun reconciler once with the clock at t.
func (f *runFixture) reconcileAt(ctx context.Context, t time.Time, run *backappv1alpha1.BackupRun) ctrl.Result {
	GinkgoHelper()
	f.clock.SetTime(t)
	res, err := f.direct.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(run)})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(run), run)).To(Succeed())
	return res
}

// fetch returns a poller of the run's current state, for Eventually.
func (f *runFixture) fetch(ctx context.Context, run *backappv1alpha1.BackupRun) func(Gomega) *backappv1alpha1.BackupRun {
	return func(g Gomega) *backappv1alpha1.BackupRun {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(run), run)).To(Succeed())
		return run
	}
}

// events lists the events about the named object with reason.
func (f *runFixture) events(ctx context.Context, name, reason string) func() []eventsv1.Event {
	return func() []eventsv1.Event {
		var list eventsv1.EventList
		Expect(k8s.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				out = append(out, e)
			}
		}
		return out
	}
}

// key is an object key of this spec under the bucket.
func (f *runFixture) key(name string) string {
	return fmt.Sprintf("test/%s/%s.tar.gz", f.ns, name)
}

// putObject stores a small object at key and deletes it when the spec ends.
func (f *runFixture) putObject(ctx context.Context, key string) {
	GinkgoHelper()
	_, err := env.MinIO.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("archive " + key)),
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) { Expect(f.store.Delete(ctx, key)).To(Succeed()) })
}

func (f *runFixture) objectExists(ctx context.Context, key string) func() bool {
	return func() bool {
		_, err := f.store.Head(ctx, key)
		if errors.Is(err, objstore.ErrNotFound) {
			return false
		}
		Expect(err).NotTo(HaveOccurred())
		return true
	}
}

// startUpload opens a real multipart upload with one part, as an agent's
// run would have, and aborts it when the spec ends whatever happened.
func (f *runFixture) startUpload(ctx context.Context, key string) string {
	GinkgoHelper()
	id, err := f.store.CreateUpload(ctx, key)
	Expect(err).NotTo(HaveOccurred())
	_, err = env.MinIO.Client().UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(key), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), Body: bytes.NewReader(bytes.Repeat([]byte("x"), 1024)),
	})
	Expect(err).NotTo(HaveOccurred())
	parts, err := f.store.ListParts(ctx, key, id)
	Expect(err).NotTo(HaveOccurred())
	Expect(parts).To(HaveLen(1))
	DeferCleanup(func(ctx context.Context) { Expect(f.store.Abort(ctx, key, id)).To(Succeed()) })
	return id
}

func (f *runFixture) uploadGone(ctx context.Context, key, id string) {
	GinkgoHelper()
	_, err := f.store.ListParts(ctx, key, id)
	Expect(err).To(MatchError(objstore.ErrNotFound))
}

// running is the status the server writes when an agent claims a run.
func running(agent, key, uploadID string, at time.Time) func(*backappv1alpha1.BackupRunStatus) {
	return func(st *backappv1alpha1.BackupRunStatus) {
		now := metav1.NewTime(at)
		st.Phase = backappv1alpha1.RunRunning
		st.ClaimedBy = agent
		st.StartTime, st.LastProgressTime = &now, &now
		st.Object = &backappv1alpha1.StoredObject{Bucket: env.MinIO.Bucket, Key: key}
		st.UploadID = uploadID
	}
}

// succeeded is the status the server writes after verifying an archive.
func succeeded(key string, at time.Time) func(*backappv1alpha1.BackupRunStatus) {
	return func(st *backappv1alpha1.BackupRunStatus) {
		done := metav1.NewTime(at)
		st.Phase = backappv1alpha1.RunSucceeded
		st.StartTime, st.CompletionTime = &done, &done
		st.Object = &backappv1alpha1.StoredObject{Bucket: env.MinIO.Bucket, Key: key, Size: 42}
		st.UploadID = ""
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: backappv1alpha1.ConditionVerified, Status: metav1.ConditionTrue,
			Reason: backappv1alpha1.ReasonObjectVerified, Message: "verified",
		})
	}
}

func expectFailed(run *backappv1alpha1.BackupRun, reason string, message types.GomegaMatcher) {
	GinkgoHelper()
	Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunFailed))
	Expect(run.Status.Message).To(message)
	Expect(run.Status.CompletionTime).NotTo(BeNil())
	ready := meta.FindStatusCondition(run.Status.Conditions, backappv1alpha1.ConditionReady)
	Expect(ready).NotTo(BeNil())
	Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	Expect(ready.Reason).To(Equal(reason))
}

var _ = Describe("BackupRun in Agent mode", func() {
	var f *runFixture
	BeforeEach(func(ctx context.Context) { f = newRunFixture(ctx) })

	It("fails a Pending run when its agent stays offline past the starting deadline", func(ctx context.Context) {
		lastSeen := f.t0.Add(-10 * time.Minute)
		f.agent(ctx, "offline", &lastSeen)
		f.agent(ctx, "never", nil)
		deadline := func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = &backappv1alpha1.Schedule{Cron: "0 3 * * *", StartingDeadlineSeconds: ptr.To[int64](120)}
		}
		slot := func(r *backappv1alpha1.BackupRun) {
			r.Spec.Trigger = backappv1alpha1.TriggerSchedule
			r.Spec.ScheduledTime = &metav1.Time{Time: f.t0}
		}
		offline := f.run(ctx, f.agentConfig(ctx, "docs", "offline", deadline), "docs-1", slot)
		never := f.run(ctx, f.agentConfig(ctx, "pics", "never", deadline), "pics-1", slot)

		for _, run := range []*backappv1alpha1.BackupRun{offline, never} {
			res := f.reconcileAt(ctx, f.t0.Add(119*time.Second), run)
			Expect(run.Status.Phase).NotTo(BeElementOf(backappv1alpha1.RunFailed, backappv1alpha1.RunCancelled))
			Expect(res.RequeueAfter).To(Equal(time.Second), "requeued for the deadline itself")
		}

		f.reconcileAt(ctx, f.t0.Add(120*time.Second), offline)
		expectFailed(offline, backappv1alpha1.ReasonAgentOffline, Equal("agent offline since "+lastSeen.Format(time.RFC3339)))
		f.reconcileAt(ctx, f.t0.Add(120*time.Second), never)
		expectFailed(never, backappv1alpha1.ReasonAgentOffline, Equal("agent never connected"))
		runEventually(f.events(ctx, offline.Name, backappv1alpha1.ReasonAgentOffline)).ShouldNot(BeEmpty())
	})

	It("keeps a late run waiting while its agent is online, and fails it the instant the agent goes offline", func(ctx context.Context) {
		seen := f.t0.Add(100 * time.Second)
		f.agent(ctx, "laptop", &seen)
		cfg := f.agentConfig(ctx, "docs", "laptop", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Schedule = &backappv1alpha1.Schedule{Cron: "0 3 * * *", StartingDeadlineSeconds: ptr.To[int64](120)}
		})
		run := f.run(ctx, cfg, "docs-1", func(r *backappv1alpha1.BackupRun) {
			r.Spec.Trigger = backappv1alpha1.TriggerSchedule
			r.Spec.ScheduledTime = &metav1.Time{Time: f.t0}
		})

		res := f.reconcileAt(ctx, f.t0.Add(130*time.Second), run)
		Expect(run.Status.Phase).NotTo(Equal(backappv1alpha1.RunFailed))
		offlineAt := seen.Add(5 * time.Minute)
		Expect(res.RequeueAfter).To(Equal(offlineAt.Sub(f.t0.Add(130 * time.Second))))

		f.reconcileAt(ctx, offlineAt, run)
		expectFailed(run, backappv1alpha1.ReasonAgentOffline, Equal("agent offline since "+seen.Format(time.RFC3339)))
	})

	It("fails a manual run after the default hour when the config has no starting deadline", func(ctx context.Context) {
		f.agent(ctx, "laptop", nil)
		run := f.run(ctx, f.agentConfig(ctx, "docs", "laptop", nil), "docs-manual", nil)
		created := run.CreationTimestamp.Time
		res := f.reconcileAt(ctx, created.Add(time.Hour-time.Second), run)
		Expect(res.RequeueAfter).To(Equal(time.Second))
		Expect(run.Status.Phase).NotTo(Equal(backappv1alpha1.RunFailed))
		f.reconcileAt(ctx, created.Add(time.Hour), run)
		expectFailed(run, backappv1alpha1.ReasonAgentOffline, Equal("agent never connected"))
	})

	It("fails a Running run that stops reporting progress and aborts its upload", func(ctx context.Context) {
		f.agent(ctx, "laptop", &f.t0)
		cfg := f.agentConfig(ctx, "docs", "laptop", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Options.ProgressDeadlineSeconds = ptr.To[int32](60)
		})
		run := f.run(ctx, cfg, "docs-1", nil)
		key := f.key("docs-1")
		upload := f.startUpload(ctx, key)
		f.setStatus(ctx, run, running("laptop", key, upload, f.t0))
		lastProgress := f.t0.Add(30 * time.Second)
		f.setStatus(ctx, run, func(st *backappv1alpha1.BackupRunStatus) { st.LastProgressTime = &metav1.Time{Time: lastProgress} })

		res := f.reconcileAt(ctx, lastProgress.Add(59*time.Second), run)
		Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunRunning))
		Expect(res.RequeueAfter).To(Equal(time.Second))
		Expect(f.store.ListParts(ctx, key, upload)).To(HaveLen(1), "the upload is still open")

		f.reconcileAt(ctx, lastProgress.Add(60*time.Second), run)
		expectFailed(run, backappv1alpha1.ReasonAgentStoppedReporting, HavePrefix("agent stopped reporting"))
		// Whichever reconcile (this one or the manager's) failed the run
		// aborts the upload right after.
		runEventually(f.fetch(ctx, run)).Should(HaveField("Status.UploadID", BeEmpty()))
		f.uploadGone(ctx, key, upload)
		runEventually(f.events(ctx, run.Name, backappv1alpha1.ReasonAgentStoppedReporting)).ShouldNot(BeEmpty())

		// A finished run is never touched again.
		version := run.ResourceVersion
		f.reconcileAt(ctx, lastProgress.Add(24*time.Hour), run)
		Expect(run.ResourceVersion).To(Equal(version))
	})
})

var _ = Describe("BackupRun cancellation", func() {
	var f *runFixture
	BeforeEach(func(ctx context.Context) { f = newRunFixture(ctx) })

	It("cancels a Pending run at once", func(ctx context.Context) {
		f.agent(ctx, "laptop", &f.t0)
		run := f.run(ctx, f.agentConfig(ctx, "docs", "laptop", nil), "docs-1", func(r *backappv1alpha1.BackupRun) {
			r.Spec.Cancel = true
		})
		runEventually(f.fetch(ctx, run)).Should(HaveField("Status.Phase", backappv1alpha1.RunCancelled))
		ready := meta.FindStatusCondition(run.Status.Conditions, backappv1alpha1.ConditionReady)
		Expect(ready).NotTo(BeNil())
		Expect(ready.Reason).To(Equal(backappv1alpha1.ReasonCancelled))
		Expect(run.Status.CompletionTime).NotTo(BeNil())
	})

	It("cancels a Running run through the annotation and aborts its upload", func(ctx context.Context) {
		f.agent(ctx, "laptop", &f.t0)
		run := f.run(ctx, f.agentConfig(ctx, "docs", "laptop", nil), "docs-1", nil)
		key := f.key("docs-1")
		upload := f.startUpload(ctx, key)
		f.setStatus(ctx, run, running("laptop", key, upload, f.t0))

		orig := run.DeepCopy()
		run.Annotations = map[string]string{backappv1alpha1.AnnotationCancel: "by ann"}
		Expect(k8s.Patch(ctx, run, client.MergeFrom(orig))).To(Succeed())

		runEventually(func(g Gomega) {
			f.fetch(ctx, run)(g)
			g.Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunCancelled))
			g.Expect(run.Status.UploadID).To(BeEmpty())
		}).Should(Succeed())
		f.uploadGone(ctx, key, upload)
	})

	It("tolerates the server having finished the run first", func(ctx context.Context) {
		f.agent(ctx, "laptop", &f.t0)
		run := f.run(ctx, f.agentConfig(ctx, "docs", "laptop", nil), "docs-1", nil)
		f.setStatus(ctx, run, func(st *backappv1alpha1.BackupRunStatus) {
			now := metav1.NewTime(f.t0)
			st.Phase, st.CompletionTime, st.Message = backappv1alpha1.RunCancelled, &now, "aborted by the agent"
		})
		orig := run.DeepCopy()
		run.Spec.Cancel = true
		Expect(k8s.Patch(ctx, run, client.MergeFrom(orig))).To(Succeed())
		f.reconcileAt(ctx, f.t0.Add(time.Minute), run)
		Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunCancelled))
		Expect(run.Status.Message).To(Equal("aborted by the agent"))
	})
})

var _ = Describe("BackupRun in Server mode", func() {
	var f *runFixture
	BeforeEach(func(ctx context.Context) { f = newRunFixture(ctx) })

	jobOf := func(ctx context.Context, run *backappv1alpha1.BackupRun) *batchv1.Job {
		GinkgoHelper()
		var job batchv1.Job
		runEventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(run), &job)).To(Succeed())
			// Once the run records its Job, the manager has nothing more to
			// write until the Job or the clock moves.
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(run), run)).To(Succeed())
			g.Expect(run.Status.JobRef).NotTo(BeNil())
		}).Should(Succeed())
		return &job
	}

	// finishJob sets the Job's status as the Job controller would when the
	// Pod ended (envtest has no Job controller).
	finishJob := func(ctx context.Context, job *batchv1.Job, typ batchv1.JobConditionType, at time.Time, message string) {
		GinkgoHelper()
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
				return err
			}
			t := metav1.NewTime(at)
			start := metav1.NewTime(at.Add(-time.Minute))
			job.Status.StartTime = &start
			cond := func(typ batchv1.JobConditionType, reason string) batchv1.JobCondition {
				return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message,
					LastProbeTime: t, LastTransitionTime: t}
			}
			if typ == batchv1.JobFailed {
				job.Status.Failed = 3
				job.Status.Conditions = []batchv1.JobCondition{
					cond(batchv1.JobFailureTarget, "BackoffLimitExceeded"), cond(batchv1.JobFailed, "BackoffLimitExceeded")}
			} else {
				job.Status.Succeeded = 1
				job.Status.CompletionTime = &t
				job.Status.Conditions = []batchv1.JobCondition{
					cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached")}
			}
			return k8s.Status().Update(ctx, job)
		})).To(Succeed())
	}

	It("starts a locked-down Job that mounts the sources read-only and gets its token from a Secret", func(ctx context.Context) {
		cfg := f.serverConfig(ctx, "app", nil)
		run := f.run(ctx, cfg, "app-1", nil)
		job := jobOf(ctx, run)

		Expect(metav1.IsControlledBy(job, run)).To(BeTrue())
		Expect(job.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To[int64](86400)))
		Expect(job.Spec.BackoffLimit).To(Equal(ptr.To[int32](2)))
		pod := job.Spec.Template.Spec
		Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
		Expect(pod.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
		Expect(pod.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
		Expect(pod.Containers).To(HaveLen(1))
		c := pod.Containers[0]
		Expect(c.Image).To(Equal(runTestAgentImage))
		Expect(c.Command).To(BeEmpty(), "the image's entrypoint is backapp-agent")
		Expect(c.Args).To(Equal([]string{"job", "--server", runTestServerURL, "--run", "app-1", "--namespace", f.ns}))

		Expect(c.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(Equal(ptr.To(true)))
		Expect(c.SecurityContext.AllowPrivilegeEscalation).To(Equal(ptr.To(false)))
		Expect(c.SecurityContext.Capabilities.Drop).To(Equal([]corev1.Capability{"ALL"}))
		Expect(c.SecurityContext.Capabilities.Add).To(BeEmpty())

		Expect(c.Resources.Requests.Cpu().Equal(resource.MustParse("100m"))).To(BeTrue())
		Expect(c.Resources.Requests.Memory().Equal(resource.MustParse("128Mi"))).To(BeTrue())
		Expect(c.Resources.Limits.Memory().Equal(resource.MustParse("1Gi"))).To(BeTrue())

		// Sources: one read-only volume per claim, one read-only mount per
		// source, at /sources/<name or claim>, subPath = the path inside.
		claims := map[string]string{} // volume -> claim
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil {
				Expect(v.PersistentVolumeClaim.ReadOnly).To(BeTrue(), v.Name)
				claims[v.Name] = v.PersistentVolumeClaim.ClaimName
			}
		}
		Expect(claims).To(HaveLen(2))
		type mount struct{ claim, path, subPath string }
		var mounts []mount
		for _, m := range c.VolumeMounts {
			if claim, ok := claims[m.Name]; ok {
				Expect(m.ReadOnly).To(BeTrue(), m.MountPath)
				mounts = append(mounts, mount{claim, m.MountPath, m.SubPath})
			}
		}
		Expect(mounts).To(Equal([]mount{
			{"app-data", "/sources/files", "srv/files"},
			{"app-logs", "/sources/app-logs", ""},
			{"app-data", "/sources/db", "db"},
		}))

		// The token reaches the container only through the Secret.
		Expect(c.Env).To(HaveLen(1))
		Expect(c.Env[0].Name).To(Equal(controllers.EnvRunToken))
		Expect(c.Env[0].Value).To(BeEmpty())
		Expect(c.Env[0].ValueFrom.SecretKeyRef.Name).To(Equal(controllers.TokenSecretName("app-1")))
		Expect(c.Env[0].ValueFrom.SecretKeyRef.Key).To(Equal(controllers.RunTokenKey))
		var secret corev1.Secret
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: controllers.TokenSecretName("app-1")}, &secret)).To(Succeed())
		Expect(metav1.IsControlledBy(&secret, run)).To(BeTrue())
		token := string(secret.Data[controllers.RunTokenKey])
		Expect(token).To(MatchRegexp(`^[0-9a-f]{64}$`))
		jobJSON, err := json.Marshal(job)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(jobJSON)).NotTo(ContainSubstring(token))

		runEventually(func(g Gomega) {
			f.fetch(ctx, run)(g)
			g.Expect(run.Status.JobRef).To(Equal(&backappv1alpha1.LocalObjectReference{Name: "app-1"}))
			g.Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunPending), "Running is the server's to set")
		}).Should(Succeed())
		runEventually(f.events(ctx, run.Name, controllers.EventJobCreated)).Should(HaveLen(1))
	})

	It("takes resources, deadline, retries and service account from spec.job", func(ctx context.Context) {
		cfg := f.serverConfig(ctx, "app", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Job = &backappv1alpha1.JobOptions{
				Resources: &corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")},
				},
				ActiveDeadlineSeconds: ptr.To[int64](3600),
				BackoffLimit:          ptr.To[int32](0),
				ServiceAccountName:    "backup-reader",
			}
		})
		job := jobOf(ctx, f.run(ctx, cfg, "app-1", nil))
		Expect(job.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To[int64](3600)))
		Expect(job.Spec.BackoffLimit).To(Equal(ptr.To[int32](0)))
		Expect(job.Spec.Template.Spec.ServiceAccountName).To(Equal("backup-reader"))
		res := job.Spec.Template.Spec.Containers[0].Resources
		Expect(res.Requests.Cpu().Equal(resource.MustParse("2"))).To(BeTrue())
		Expect(res.Limits.Memory().Equal(resource.MustParse("4Gi"))).To(BeTrue())
		Expect(res.Requests).NotTo(HaveKey(corev1.ResourceMemory), "a setting is taken as given")
	})

	It("fails the run when the Job fails, and revokes the token", func(ctx context.Context) {
		run := f.run(ctx, f.serverConfig(ctx, "app", nil), "app-1", nil)
		job := jobOf(ctx, run)
		key := f.key("app-1")
		upload := f.startUpload(ctx, key)
		f.setStatus(ctx, run, running("", key, upload, f.t0))

		finishJob(ctx, job, batchv1.JobFailed, f.t0.Add(time.Minute), "Job has reached the specified backoff limit")
		runEventually(func(g Gomega) {
			f.fetch(ctx, run)(g)
			g.Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunFailed))
			g.Expect(run.Status.UploadID).To(BeEmpty())
		}).Should(Succeed())
		expectFailed(run, backappv1alpha1.ReasonJobFailed, Equal("the job failed: Job has reached the specified backoff limit"))
		f.uploadGone(ctx, key, upload)
		runEventually(func() bool {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: controllers.TokenSecretName("app-1")}, &corev1.Secret{})
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
		// The Job stays, with its Pod's log, until the run goes.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
	})

	It("leaves a run the server verified Succeeded when its Job completes", func(ctx context.Context) {
		run := f.run(ctx, f.serverConfig(ctx, "app", nil), "app-1", nil)
		job := jobOf(ctx, run)
		f.setStatus(ctx, run, succeeded(f.key("app-1"), f.t0.Add(time.Minute)))
		finishJob(ctx, job, batchv1.JobComplete, f.t0.Add(time.Minute), "")

		// The manager has seen the Succeeded run: it put the archive
		// finalizer on it.
		runEventually(f.fetch(ctx, run)).Should(HaveField("Finalizers", ContainElement(controllers.FinalizerArchive)))
		f.reconcileAt(ctx, f.t0.Add(24*time.Hour), run)
		Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunSucceeded))
		runEventually(func() bool {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: controllers.TokenSecretName("app-1")}, &corev1.Secret{})
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
	})

	It("fails a run whose Job completed without a verified archive after the grace period", func(ctx context.Context) {
		run := f.run(ctx, f.serverConfig(ctx, "app", nil), "app-1", nil)
		job := jobOf(ctx, run)
		done := f.t0.Add(10 * time.Minute)
		finishJob(ctx, job, batchv1.JobComplete, done, "")

		res := f.reconcileAt(ctx, done.Add(2*time.Minute-time.Second), run)
		Expect(run.Status.Phase).NotTo(Equal(backappv1alpha1.RunFailed))
		Expect(res.RequeueAfter).To(Equal(time.Second))

		f.reconcileAt(ctx, done.Add(2*time.Minute), run)
		expectFailed(run, backappv1alpha1.ReasonJobFailed, Equal("the job finished but the server never verified an archive"))
	})

	It("fails a Running run whose Job stops reporting, and stops the Job", func(ctx context.Context) {
		run := f.run(ctx, f.serverConfig(ctx, "app", nil), "app-1", nil)
		job := jobOf(ctx, run)
		f.setStatus(ctx, run, running("", f.key("app-1"), "", f.t0))

		res := f.reconcileAt(ctx, f.t0.Add(600*time.Second-time.Second), run)
		Expect(res.RequeueAfter).To(Equal(time.Second), "the default progress deadline is 600 s")
		Expect(run.Status.Phase).To(Equal(backappv1alpha1.RunRunning))

		f.reconcileAt(ctx, f.t0.Add(600*time.Second), run)
		expectFailed(run, backappv1alpha1.ReasonAgentStoppedReporting, HavePrefix("agent stopped reporting"))
		runEventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{}))
		}).Should(BeTrue())
	})

	It("cancels a run with a Job: the Job is deleted", func(ctx context.Context) {
		run := f.run(ctx, f.serverConfig(ctx, "app", nil), "app-1", nil)
		job := jobOf(ctx, run)
		orig := run.DeepCopy()
		run.Spec.Cancel = true
		Expect(k8s.Patch(ctx, run, client.MergeFrom(orig))).To(Succeed())
		runEventually(f.fetch(ctx, run)).Should(HaveField("Status.Phase", backappv1alpha1.RunCancelled))
		runEventually(func() bool {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
			// envtest has no garbage collector: with background
			// propagation the Job is gone at once.
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
	})
})

var _ = Describe("Retention", func() {
	var f *runFixture
	BeforeEach(func(ctx context.Context) { f = newRunFixture(ctx) })

	day := 24 * time.Hour

	// finishedRun creates a run that finished age ago: Succeeded with an
	// archive in MinIO, or Failed.
	finishedRun := func(ctx context.Context, cfg *backappv1alpha1.BackupConfig, name string, age time.Duration, ok bool) *backappv1alpha1.BackupRun {
		GinkgoHelper()
		run := f.run(ctx, cfg, name, nil)
		at := f.t0.Add(-age)
		if !ok {
			f.setStatus(ctx, run, func(st *backappv1alpha1.BackupRunStatus) {
				t := metav1.NewTime(at)
				st.Phase, st.CompletionTime, st.Message = backappv1alpha1.RunFailed, &t, "failed"
			})
			return run
		}
		f.putObject(ctx, f.key(name))
		f.setStatus(ctx, run, succeeded(f.key(name), at))
		return run
	}

	gone := func(ctx context.Context, run *backappv1alpha1.BackupRun) func() bool {
		return func() bool {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(run), &backappv1alpha1.BackupRun{})
			if apierrors.IsNotFound(err) {
				return true
			}
			Expect(err).NotTo(HaveOccurred())
			return false
		}
	}

	It("deletes expired runs with their archives, keeping the newest keepLast successes", func(ctx context.Context) {
		f.agent(ctx, "laptop", &f.t0)
		cfg := f.agentConfig(ctx, "docs", "laptop", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Options.Retention = &backappv1alpha1.Retention{Days: ptr.To[int32](7), KeepLast: ptr.To[int32](2)}
		})
		newest := finishedRun(ctx, cfg, "docs-a", 2*day, true)
		oldButKept := finishedRun(ctx, cfg, "docs-b", 8*day, true)
		expired := []*backappv1alpha1.BackupRun{
			finishedRun(ctx, cfg, "docs-c", 9*day, true),
			finishedRun(ctx, cfg, "docs-d", 12*day, true),
			finishedRun(ctx, cfg, "docs-e", 30*day, true),
			finishedRun(ctx, cfg, "docs-oldfail", 10*day, false),
		}
		recentFail := finishedRun(ctx, cfg, "docs-newfail", 1*day, false)

		for _, run := range expired {
			runEventually(gone(ctx, run)).Should(BeTrue(), run.Name)
			if run.Status.Object != nil {
				Expect(f.objectExists(ctx, run.Status.Object.Key)()).To(BeFalse(), run.Name)
			}
		}
		for _, run := range []*backappv1alpha1.BackupRun{newest, oldButKept, recentFail} {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(run), run)).To(Succeed())
			Expect(run.DeletionTimestamp).To(BeNil(), run.Name)
		}
		for _, run := range []*backappv1alpha1.BackupRun{newest, oldButKept} {
			Expect(f.objectExists(ctx, run.Status.Object.Key)()).To(BeTrue(), run.Name)
			runEventually(f.fetch(ctx, run)).Should(HaveField("Finalizers", ContainElement(controllers.FinalizerArchive)))
		}
		runEventually(f.events(ctx, "docs-e", controllers.EventArchiveDeleted)).ShouldNot(BeEmpty())
		runEventually(f.events(ctx, "docs", controllers.EventRetentionDeleted)).ShouldNot(BeEmpty())

		// The next expiry is the recent failure's, 6 days from now.
		res, err := f.retention.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cfg)})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.RequeueAfter).To(Equal(6 * day))

		// A run deleted by anyone else keeps its archive.
		Expect(k8s.Delete(ctx, oldButKept)).To(Succeed())
		runEventually(gone(ctx, oldButKept)).Should(BeTrue())
		Expect(f.objectExists(ctx, oldButKept.Status.Object.Key)()).To(BeTrue())
	})

	It("retries a failed archive deletion, reports it, and keeps the run until it succeeds", func(ctx context.Context) {
		port, err := testenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		f.agent(ctx, "laptop", &f.t0)
		cfg := f.agentConfig(ctx, "docs", "laptop", func(c *backappv1alpha1.BackupConfig) {
			c.Spec.Options.Retention = &backappv1alpha1.Retention{Days: ptr.To[int32](7)}
			// Nothing listens there.
			c.Spec.Destination.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
		})
		finishedRun(ctx, cfg, "docs-new", 1*day, true)
		old := finishedRun(ctx, cfg, "docs-old", 10*day, true)
		key := old.Status.Object.Key

		runEventually(func(g Gomega) {
			f.fetch(ctx, old)(g)
			g.Expect(old.DeletionTimestamp).NotTo(BeNil())
			c := meta.FindStatusCondition(old.Status.Conditions, controllers.ConditionArchiveDeleted)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(controllers.ReasonArchiveDeleteFailed))
			g.Expect(c.Message).To(ContainSubstring(key))
		}).Should(Succeed())
		runEventually(f.events(ctx, old.Name, controllers.EventArchiveDeleteFailed)).ShouldNot(BeEmpty())
		// Still there: the run outlives a failed deletion, and so does the
		// archive.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(old), old)).To(Succeed())
		Expect(old.Finalizers).To(ContainElement(controllers.FinalizerArchive))
		Expect(f.objectExists(ctx, key)()).To(BeTrue())

		// The endpoint is fixed; the retry deletes the archive, then the run.
		orig := cfg.DeepCopy()
		cfg.Spec.Destination.Endpoint = env.MinIO.Endpoint
		Expect(k8s.Patch(ctx, cfg, client.MergeFrom(orig))).To(Succeed())
		runEventually(gone(ctx, old)).Should(BeTrue())
		Expect(f.objectExists(ctx, key)()).To(BeFalse())
	})
})
