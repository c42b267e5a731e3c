// Package v1alpha1 contains the BackApp API types of group backapp.io,
// version v1alpha1: BackupConfig (what to back up, where to and when), Agent
// (a registered backapp-agent) and BackupRun (one execution).
//
// The types carry their own validation (OpenAPI markers and CEL rules), so the
// apiserver rejects a bad object before any controller sees it. Small methods
// on the types (deterministic child names, phase predicates) live beside them.
// This package must import nothing from BackApp outside api/.
//
// +kubebuilder:object:generate=true
// +groupName=backapp.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the BackApp API.
	GroupVersion = schema.GroupVersion{Group: "backapp.io", Version: "v1alpha1"}

	// SchemeBuilder registers the BackApp types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the BackApp types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
