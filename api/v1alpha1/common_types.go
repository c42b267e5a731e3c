package v1alpha1

// LocalObjectReference names an object in the same namespace as the object
// that holds the reference.
// +structType=atomic
type LocalObjectReference struct {
	// name is the referenced object's name (a DNS-1123 subdomain).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}
