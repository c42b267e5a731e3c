package webapp_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/backapp/backapp/internal/testenv"
)

// env is one apiserver and MinIO for the package; each test works in its
// own namespace.
var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Kube: true, MinIO: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}
