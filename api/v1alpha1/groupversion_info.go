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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the BackApp API.
	GroupVersion = schema.GroupVersion{Group: "backapp.io", Version: "v1alpha1"}

	// SchemeBuilder registers the BackApp types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the BackApp types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes lists every kind of the group in one place (no init()).
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&BackupConfig{}, &BackupConfigList{},
		&Agent{}, &AgentList{},
		&BackupRun{}, &BackupRunList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
