// Package crd tests BackApp's CRDs on a real kube-apiserver: the samples
// are accepted and defaulted, and every validation rule rejects the object
// it is written for with its own message, leaving stored objects intact.
package crd

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backapp/backapp/internal/testenv"
)

var (
	env *testenv.Env
	k8s client.Client
)

func TestCRDs(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CRD validation")
}

var _ = BeforeSuite(func(ctx context.Context) {
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Kube: true})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Kube.Client
}, NodeTimeout(testenv.StartTimeout))
