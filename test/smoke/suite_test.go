// Package smoke proves the test environment is real end to end: one suite
// brings up kube-apiserver+etcd, PostgreSQL and MinIO through
// internal/testenv and uses each of them the way BackApp will.
package smoke

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/backapp/backapp/internal/testenv"
)

var env *testenv.Env

func TestSmoke(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Smoke: apiserver, PostgreSQL, MinIO")
}

var _ = BeforeSuite(func(ctx context.Context) {
	var err error
	env, err = testenv.Start(ctx, testenv.All)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
}, NodeTimeout(testenv.StartTimeout))
