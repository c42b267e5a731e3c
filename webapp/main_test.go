package webapp_test

import (
	"testing"

	"github.com/backapp/backapp/internal/testenv"
)

// env is one apiserver and MinIO for the package; each test works in its
// own namespace.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Kube: true, MinIO: true}, &env) }
