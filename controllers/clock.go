package controllers

import "k8s.io/utils/clock"

// Clock is the time source of every reconciler: the real clock in the
// manager, a fake one (k8s.io/utils/clock/testing) in tests, so schedule
// and deadline behaviour is tested at exact instants.
type Clock = clock.PassiveClock
