package controllers_test

import (
	"sigs.k8s.io/controller-runtime/pkg/config"
)

// ctrlControllerOptions lets several managers in one test binary register
// controllers with the same names (one manager per spec).
func ctrlControllerOptions() config.Controller {
	skip := true
	return config.Controller{SkipNameValidation: &skip}
}
