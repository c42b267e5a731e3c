package controllers

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// managerDefaults fills the reconciler fields left nil from the manager
// (its client, scheme, uncached reader, event recorder) and the real
// clock. A nil pointer is a field the reconciler does not have.
func managerDefaults(mgr ctrl.Manager, c *client.Client, s **runtime.Scheme, api *client.Reader,
	rec *events.EventRecorder, clk *Clock) {
	if c != nil && *c == nil {
		*c = mgr.GetClient()
	}
	if s != nil && *s == nil {
		*s = mgr.GetScheme()
	}
	if api != nil && *api == nil {
		*api = mgr.GetAPIReader()
	}
	if rec != nil && *rec == nil {
		*rec = mgr.GetEventRecorder(eventReporter)
	}
	if clk != nil && *clk == nil {
		*clk = clock.RealClock{}
	}
}
