package mirror

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/store"
	"github.com/backapp/backapp/internal/testenv"
)

// The tests share one apiserver and one PostgreSQL server, started by the
// first test that needs them and stopped by TestMain. Each test works in a
// namespace and a database of its own, with managers of its own, so row
// counts and the resync's view are the test's alone. The tests do not run
// in parallel: the outage test stops the shared PostgreSQL server.

var shared struct {
	once sync.Once
	env  *testenv.Env
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test environment:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func sharedEnv(t *testing.T) *testenv.Env {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
		defer cancel()
		shared.env, shared.err = testenv.Start(ctx, testenv.Options{Kube: true, Postgres: true})
	})
	if shared.err != nil {
		t.Fatalf("test environment: %v", shared.err)
	}
	return shared.env
}

// testLogger discards the managers' logs unless BACKAPP_TEST_LOG is set,
// which sends them to stderr (for debugging a failing test).
func testLogger() logr.Logger {
	if os.Getenv("BACKAPP_TEST_LOG") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1, LogTimestamp: true})
}

// t0 is where every test's clock starts; PostgreSQL keeps microseconds,
// so times are compared exactly.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// harness is one test's namespace, database, store and clock.
type harness struct {
	t   *testing.T
	g   Gomega
	env *testenv.Env
	k8s client.Client
	ns  string
	st  *store.Store
	clk *testingclock.FakePassiveClock
}

var nsCount atomic.Int64

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := sharedEnv(t)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	h := &harness{t: t, g: g, env: env, k8s: env.Kube.Client, clk: testingclock.NewFakePassiveClock(t0)}

	h.ns = fmt.Sprintf("mirror-%d", nsCount.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}
	if err := h.k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", h.ns, err)
	}
	// envtest runs no namespace controller, so the namespace stays
	// Terminating; deleting it still keeps later runs' lists apart.
	t.Cleanup(func() { _ = h.k8s.Delete(context.Background(), ns) })

	st, err := store.Open(context.Background(), h.freshDB())
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(st.Close)
	if _, err := store.Migrate(context.Background(), st.Pool()); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	h.st = st
	return h
}

// freshDB creates an empty database, dropped when the test ends, and
// returns its URL.
func (h *harness) freshDB() string {
	h.t.Helper()
	ctx := context.Background()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "mirror_" + hex.EncodeToString(suffix)
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, h.env.Postgres.URL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		h.t.Fatalf("creating database %s: %v", name, err)
	}
	h.t.Cleanup(func() {
		if err := exec("DROP DATABASE " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			h.t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(h.env.Postgres.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// startMirror runs a manager whose cache sees only the test's namespace,
// with the mirror set up, until stop is called or the test ends. It
// returns the mirror, so tests can wait for its internal state.
func (h *harness) startMirror() (m *mirror, stop func()) {
	h.t.Helper()
	return h.startMirrorWith(defaultOptions())
}

func (h *harness) startMirrorWith(opts options) (m *mirror, stop func()) {
	h.t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(h.env.Kube.Config, ctrl.Options{
		Scheme:                 h.env.Kube.Scheme,
		Logger:                 testLogger(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}},
		// Every test starts managers with the same controller names.
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		h.t.Fatalf("creating a manager: %v", err)
	}
	m, err = setup(mgr, h.st, h.clk, opts)
	if err != nil {
		h.t.Fatalf("setting up the mirror: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("manager: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return m, stop
}

// --- objects ------------------------------------------------------------

func (h *harness) create(obj client.Object) {
	h.t.Helper()
	obj.SetNamespace(h.ns)
	if err := h.k8s.Create(context.Background(), obj); err != nil {
		h.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func (h *harness) delete(obj client.Object) {
	h.t.Helper()
	if err := h.k8s.Delete(context.Background(), obj); err != nil {
		h.t.Fatalf("deleting %T %s: %v", obj, obj.GetName(), err)
	}
}

// update changes obj (spec or metadata) with change, retrying on conflicts.
func (h *harness) update(obj client.Object, change func()) {
	h.t.Helper()
	h.write(obj, change, func(ctx context.Context) error { return h.k8s.Update(ctx, obj) })
}

// updateStatus changes obj's status with change, retrying on conflicts.
func (h *harness) updateStatus(obj client.Object, change func()) {
	h.t.Helper()
	h.write(obj, change, func(ctx context.Context) error { return h.k8s.Status().Update(ctx, obj) })
}

func (h *harness) write(obj client.Object, change func(), write func(context.Context) error) {
	h.t.Helper()
	ctx := context.Background()
	h.g.Eventually(func() error {
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return write(ctx)
	}).Should(Succeed())
}

func newAgent(name, owner string) *backappv1alpha1.Agent {
	return &backappv1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       backappv1alpha1.AgentSpec{DisplayName: "Agent " + name, Owner: owner},
	}
}

// newAgentConfig is an Agent-mode config run by the agent named agent.
func newAgentConfig(name, agent string) *backappv1alpha1.BackupConfig {
	return &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/ann/Documents", Exclude: []string{"*.tmp"}}},
			Destination:   backappv1alpha1.Destination{Bucket: "laptops", Endpoint: "https://s3.example.com", Prefix: "ann"},
			Schedule:      &backappv1alpha1.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"},
		},
	}
}

// newServerConfig is a Server-mode config.
func newServerConfig(name string) *backappv1alpha1.BackupConfig {
	return &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeServer,
			Sources: []backappv1alpha1.BackupSource{{
				PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "data", Path: "dumps"},
			}},
			Destination: backappv1alpha1.Destination{Bucket: "cluster"},
		},
	}
}

// newRun is a manual run of cfg, controlled by it as the manager's runs
// are.
func (h *harness) newRun(name string, cfg *backappv1alpha1.BackupConfig) *backappv1alpha1.BackupRun {
	h.t.Helper()
	run := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: backappv1alpha1.BackupRunSpec{
			ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name},
			Trigger:   backappv1alpha1.TriggerManual,
		},
	}
	if err := controllerutil.SetControllerReference(cfg, run, h.env.Kube.Scheme); err != nil {
		h.t.Fatal(err)
	}
	return run
}

// succeed makes run a succeeded run with a stored archive.
func (h *harness) succeed(run *backappv1alpha1.BackupRun, start time.Time, bytes int64) {
	h.t.Helper()
	h.updateStatus(run, func() {
		run.Status.Phase = backappv1alpha1.RunSucceeded
		run.Status.ClaimedBy = ""
		run.Status.StartTime = &metav1.Time{Time: start}
		run.Status.CompletionTime = &metav1.Time{Time: start.Add(90 * time.Second)}
		run.Status.FilesProcessed, run.Status.FilesSkipped = 120, 3
		run.Status.BytesTotal, run.Status.BytesTransferred = bytes, bytes
		run.Status.Object = &backappv1alpha1.StoredObject{
			Bucket: "laptops", Key: "users/u/" + run.Name + ".tar.gz", Size: bytes / 2,
			SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		}
		run.Status.Errors = []backappv1alpha1.RunError{{Path: "/home/ann/locked.db", Message: "permission denied"}}
		run.Status.ErrorCount = 3
		run.Status.Message = "done"
	})
}

// --- rows -----------------------------------------------------------------

// uids lists the UIDs in table, to check with ConsistOf that each object
// has exactly one row and nothing else has one.
func (h *harness) uids(g Gomega, table string) []string {
	rows, err := h.st.Pool().Query(context.Background(), `SELECT uid::text FROM `+table+``)
	g.Expect(err).NotTo(HaveOccurred())
	uids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	g.Expect(err).NotTo(HaveOccurred())
	return uids
}

// uidsOf returns the UIDs of objs.
func uidsOf(objs ...client.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, string(o.GetUID()))
	}
	return out
}
