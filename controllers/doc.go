// Package controllers holds BackApp's reconcilers, one per kind: the
// BackupConfig scheduler (cron math with an injected clock, deterministic
// run names, history pruning, retention), the BackupRun lifecycle (Jobs in
// Server mode, agent claims and deadlines in Agent mode, cancellation) and
// Agent liveness. The manager (`backapp manager`) is the only scheduler.
//
// The reconcilers arrive with the Controllers issue; this file already
// carries the manager's RBAC, so config/rbac is generated from one place.
// The package must not import webapp or agent.
package controllers

// The manager's permissions, least privilege: it reads only the Secrets a
// BackupConfig names (get, never list or watch across the cluster), and
// reads PersistentVolumeClaims only to report a missing one.
//
// +kubebuilder:rbac:groups=backapp.io,resources=backupconfigs;agents;backupruns,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=backapp.io,resources=backupconfigs/status;agents/status;backupruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=backapp.io,resources=backupconfigs/finalizers;agents/finalizers;backupruns/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
