package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/backapp/backapp/internal/index"
	"github.com/backapp/backapp/internal/testenv"
)

// The suite shares one apiserver and MinIO; every spec works in its own
// namespace with its own manager (see startManager), so specs cannot see
// each other's objects.
var (
	env *testenv.Env
	k8s client.Client
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers")
}

var _ = BeforeSuite(func(ctx context.Context) {
	ctrl.SetLogger(GinkgoLogr)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Kube: true, MinIO: true})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Kube.Client
}, NodeTimeout(testenv.StartTimeout))

var nsCount atomic.Int64

// newNamespace creates a fresh namespace for one spec.
func newNamespace(ctx context.Context) string {
	GinkgoHelper()
	ns := fmt.Sprintf("ctrl-%d", nsCount.Add(1))
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

// startManager runs a manager whose cache sees only ns, with BackApp's field
// indexes, after setup has added reconcilers to it. It stops when the spec
// ends. Metrics and health probes are off (no ports to collide).
func startManager(ctx context.Context, ns string, setup func(mgr ctrl.Manager) error) ctrl.Manager {
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
	Expect(setup(mgr)).To(Succeed())
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	DeferCleanup(func() {
		cancel()
		<-done
	})
	return mgr
}
