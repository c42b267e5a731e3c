package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// The Job of a Server-mode run.
const (
	// SourcesDir is where a Job mounts the source volumes; see
	// SourceMountPaths.
	SourcesDir = "/sources"
	// EnvRunToken is the Job container's variable holding the per-run
	// token, taken from the run's token Secret (key RunTokenKey).
	EnvRunToken = "BACKAPP_RUN_TOKEN"
	// RunTokenKey is the key of the token in the run's token Secret.
	RunTokenKey = "token"
	// jobContainerName is the backup container of a run's Job.
	jobContainerName = "backup"
)

// Job defaults (JobOptions in api/v1alpha1 documents them).
const (
	defaultActiveDeadlineSeconds int64 = 86400
	defaultBackoffLimit          int32 = 2
)

// defaultJobResources are the backup container's resources when the
// config sets none: requests of 100m CPU and 128Mi, a 1Gi memory limit.
func defaultJobResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("1Gi"),
		},
	}
}

// TokenSecretName is the name of a run's token Secret.
func TokenSecretName(runName string) string { return runName + "-token" }

// SourceMountPaths are the paths a run's Job mounts sources at, in order:
// SourcesDir/<name>, the name being the source's name, else its claim name;
// a name an earlier source already took gets "-<index>" appended, so every
// path is distinct. The agent's job mode finds source i at element i.
func SourceMountPaths(sources []backappv1alpha1.BackupSource) []string {
	taken := make(map[string]bool, len(sources))
	out := make([]string, len(sources))
	for i, s := range sources {
		name := s.Name
		if name == "" && s.PersistentVolumeClaim != nil {
			name = s.PersistentVolumeClaim.ClaimName
		}
		if name == "" {
			name = "source"
		}
		for taken[name] {
			name += "-" + strconv.Itoa(i)
		}
		taken[name] = true
		out[i] = path.Join(SourcesDir, name)
	}
	return out
}

// reconcileServerRun handles an unfinished, uncancelled Server-mode run:
// it starts the Job, then maps the Job's end to the run. Running is the
// server's to set (when the Job's agent calls backup/start), and Succeeded
// too (after it verified the archive).
func (r *BackupRunReconciler) reconcileServerRun(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	var job batchv1.Job
	err := r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Name}, &job)
	if apierrors.IsNotFound(err) {
		return r.reconcileMissingJob(ctx, run, cfg)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("while reading the job of run %s: %w", run.Name, err)
	}
	if !metav1.IsControlledBy(&job, run) {
		return r.fail(ctx, run, cfg, backappv1alpha1.ReasonJobFailed,
			fmt.Sprintf("a Job named %s exists and does not belong to this run", job.Name))
	}
	if c := jobCondition(&job, batchv1.JobFailed); c != nil {
		msg := "the job failed"
		if c.Message != "" {
			msg += ": " + c.Message
		}
		return r.fail(ctx, run, cfg, backappv1alpha1.ReasonJobFailed, msg)
	}
	if c := jobCondition(&job, batchv1.JobComplete); c != nil {
		return r.reconcileJobComplete(ctx, run, cfg, &job, c)
	}
	if run.Status.JobRef == nil {
		if err := r.recordJob(ctx, run); err != nil {
			return ctrl.Result{}, err
		}
	}
	if run.Status.Phase == backappv1alpha1.RunRunning {
		return r.reconcileProgressDeadline(ctx, run, cfg)
	}
	// Pending with a Job: the Job's activeDeadlineSeconds bounds the wait
	// (a Pod that cannot start fails the Job, and so the run).
	return ctrl.Result{}, nil
}

// reconcileMissingJob starts the Job of a run that has none, or fails the
// run when its Job existed and was deleted before the run finished.
func (r *BackupRunReconciler) reconcileMissingJob(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (ctrl.Result, error) {
	if run.Status.JobRef == nil && run.Status.Phase != backappv1alpha1.RunRunning {
		return ctrl.Result{}, r.startJob(ctx, run, cfg)
	}
	// The cache may not have seen a Job created a moment ago; ask the
	// apiserver before failing the run.
	var job batchv1.Job
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Name}, &job)
	if err == nil {
		return ctrl.Result{}, nil // the watch brings it
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("while reading the job of run %s: %w", run.Name, err)
	}
	return r.fail(ctx, run, cfg, backappv1alpha1.ReasonJobFailed,
		fmt.Sprintf("job %s was deleted before the run finished", run.Name))
}

// reconcileJobComplete waits VerifyGracePeriod after the Job completed for
// the server's verdict (the Job's agent exits once the server has answered
// backup/complete, so the verdict normally comes first; the grace covers
// the server's write reaching this cache), then fails the run.
func (r *BackupRunReconciler) reconcileJobComplete(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig,
	job *batchv1.Job, complete *batchv1.JobCondition) (ctrl.Result, error) {
	now := r.Clock.Now()
	completedAt := complete.LastTransitionTime.Time
	if completedAt.IsZero() && job.Status.CompletionTime != nil {
		completedAt = job.Status.CompletionTime.Time
	}
	if completedAt.IsZero() {
		completedAt = now
	}
	grace := r.VerifyGracePeriod
	if grace <= 0 {
		grace = DefaultVerifyGracePeriod
	}
	if end := completedAt.Add(grace); now.Before(end) {
		return ctrl.Result{RequeueAfter: end.Sub(now)}, nil
	}
	return r.fail(ctx, run, cfg, backappv1alpha1.ReasonJobFailed, "the job finished but the server never verified an archive")
}

// fail ends a Server-mode run as Failed and tidies up after it; the Job is
// kept (its Pod's log says what happened) and goes with the run.
func (r *BackupRunReconciler) fail(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig, reason, msg string) (ctrl.Result, error) {
	ok, err := r.finish(ctx, run, backappv1alpha1.RunFailed, reason, msg)
	if !ok || err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.reconcileFinished(ctx, run, cfg)
}

func jobCondition(job *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == typ && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// startJob creates the run's token Secret and Job (each tolerating that it
// exists from an earlier attempt) and records the Job in the run.
func (r *BackupRunReconciler) startJob(ctx context.Context, run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) error {
	if err := r.ensureToken(ctx, run); err != nil {
		return err
	}
	job, err := r.jobFor(run, cfg)
	if err != nil {
		return err
	}
	err = r.Create(ctx, job)
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created by an earlier attempt; the watch brings it.
	case err != nil:
		return fmt.Errorf("while creating the job of run %s: %w", run.Name, err)
	default:
		logf.FromContext(ctx).Info("Created Job", "job", job.Name)
		r.event(run, corev1.EventTypeNormal, EventJobCreated, "CreateJob", "created job %s", job.Name)
	}
	return r.recordJob(ctx, run)
}

// recordJob writes status.jobRef (and phase Pending) with the
// resourceVersion read, so it cannot undo the server's claim.
func (r *BackupRunReconciler) recordJob(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	orig := run.DeepCopy()
	run.Status.JobRef = &backappv1alpha1.LocalObjectReference{Name: run.Name}
	if run.Status.Phase == "" {
		run.Status.Phase = backappv1alpha1.RunPending
		run.Status.Message = "waiting for job " + run.Name + " to start the backup"
	}
	run.Status.ObservedGeneration = run.Generation
	err := r.Status().Patch(ctx, run, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while recording the job of run %s: %w", run.Name, err)
	}
	return nil
}

// ensureToken creates the run's token Secret, owned by the run, with a
// fresh random token. The token is never read back, logged or put in the
// Job spec: the Job refers to the Secret.
func (r *BackupRunReconciler) ensureToken(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (it crashes the program instead)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: run.Namespace,
			Name:      TokenSecretName(run.Name),
			Labels:    r.childLabels(run),
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		Data:      map[string][]byte{RunTokenKey: []byte(hex.EncodeToString(raw))},
	}
	if err := controllerutil.SetControllerReference(run, secret, r.Scheme); err != nil {
		return fmt.Errorf("while owning the token Secret by run %s: %w", run.Name, err)
	}
	err := r.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		return r.checkTokenOwner(ctx, run)
	}
	if err != nil {
		return fmt.Errorf("while creating the token Secret of run %s: %w", run.Name, err)
	}
	return nil
}

// checkTokenOwner makes sure an existing token Secret is this run's, so a
// Job never authenticates with a Secret someone else put there.
func (r *BackupRunReconciler) checkTokenOwner(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: TokenSecretName(run.Name)}, &secret); err != nil {
		return fmt.Errorf("while reading the token Secret of run %s: %w", run.Name, err)
	}
	if !metav1.IsControlledBy(&secret, run) {
		return fmt.Errorf("while creating the token Secret of run %s: Secret %s exists and does not belong to the run", run.Name, secret.Name)
	}
	return nil
}

// deleteToken deletes the run's token Secret once the run has finished,
// so the token stops working at once (garbage collection would take it
// only with the run).
func (r *BackupRunReconciler) deleteToken(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	var secret corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: TokenSecretName(run.Name)}, &secret)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while reading the token Secret of run %s: %w", run.Name, err)
	}
	if !metav1.IsControlledBy(&secret, run) {
		return nil
	}
	err = r.Delete(ctx, &secret, client.Preconditions{UID: &secret.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("while deleting the token Secret of run %s: %w", run.Name, err)
	}
	logf.FromContext(ctx).V(1).Info("Deleted the token Secret of BackupRun")
	return nil
}

// deleteJob deletes the run's Job and its Pods, if it has one.
func (r *BackupRunReconciler) deleteJob(ctx context.Context, run *backappv1alpha1.BackupRun) error {
	var job batchv1.Job
	err := r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Name}, &job)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while reading the job of run %s: %w", run.Name, err)
	}
	if !metav1.IsControlledBy(&job, run) {
		return nil
	}
	// The API's default for Jobs orphans their Pods.
	err = r.Delete(ctx, &job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("while deleting the job of run %s: %w", run.Name, err)
	}
	logf.FromContext(ctx).Info("Deleted Job", "job", job.Name)
	return nil
}

func (r *BackupRunReconciler) childLabels(run *backappv1alpha1.BackupRun) map[string]string {
	return map[string]string{
		LabelRun:                       run.Name,
		runLabelConfig:                 run.Spec.ConfigRef.Name,
		"app.kubernetes.io/name":       "backapp-agent",
		"app.kubernetes.io/component":  "backup-job",
		"app.kubernetes.io/managed-by": "backapp-manager",
	}
}

// jobFor builds the Job of a Server-mode run: the agent image in job mode,
// every source claim mounted read-only, the token from the Secret, and a
// locked-down container.
func (r *BackupRunReconciler) jobFor(run *backappv1alpha1.BackupRun, cfg *backappv1alpha1.BackupConfig) (*batchv1.Job, error) {
	opts := cfg.Spec.Job
	if opts == nil {
		opts = &backappv1alpha1.JobOptions{}
	}
	resources := defaultJobResources()
	if opts.Resources != nil {
		// Taken as given: merging defaults into a partial setting could
		// produce a request above the limit.
		resources = *opts.Resources.DeepCopy()
	}
	image := r.AgentImage
	if image == "" {
		image = DefaultAgentImage
	}

	volumes, mounts := sourceVolumes(cfg.Spec.Sources)
	// The root filesystem is read-only; the agent gets a small scratch
	// directory.
	volumes = append(volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("256Mi"))},
	}})
	mounts = append(mounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})

	labels := r.childLabels(run)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: run.Name, Labels: labels},
		Spec: batchv1.JobSpec{
			ActiveDeadlineSeconds: ptr.To(ptr.Deref(opts.ActiveDeadlineSeconds, defaultActiveDeadlineSeconds)),
			BackoffLimit:          ptr.To(ptr.Deref(opts.BackoffLimit, defaultBackoffLimit)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: opts.ServiceAccountName,
					// The Job talks to the BackApp server with its run
					// token, never to the Kubernetes API.
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Volumes: volumes,
					Containers: []corev1.Container{{
						Name:            jobContainerName,
						Image:           image,
						ImagePullPolicy: r.ImagePullPolicy,
						Args:            []string{"job", "--server", r.ServerURL, "--run", run.Name, "--namespace", run.Namespace},
						Env: []corev1.EnvVar{{
							Name: EnvRunToken,
							ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: TokenSecretName(run.Name)},
								Key:                  RunTokenKey,
							}},
						}},
						Resources:    resources,
						VolumeMounts: mounts,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Privileged:               ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
				},
			},
		},
	}
	if err := controllerutil.SetControllerReference(run, job, r.Scheme); err != nil {
		return nil, fmt.Errorf("while owning the job by run %s: %w", run.Name, err)
	}
	return job, nil
}

// sourceVolumes has one read-only volume per distinct claim and one mount
// per source (at SourceMountPaths, with subPath = the source's path).
func sourceVolumes(sources []backappv1alpha1.BackupSource) ([]corev1.Volume, []corev1.VolumeMount) {
	paths := SourceMountPaths(sources)
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	volumeOf := map[string]string{}
	for i, s := range sources {
		pvc := s.PersistentVolumeClaim
		if pvc == nil {
			continue // the CRD's rules make every Server-mode source a claim
		}
		name, ok := volumeOf[pvc.ClaimName]
		if !ok {
			name = "source-" + strconv.Itoa(len(volumes))
			volumeOf[pvc.ClaimName] = name
			volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.ClaimName, ReadOnly: true},
			}})
		}
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: paths[i], SubPath: pvc.Path, ReadOnly: true})
	}
	return volumes, mounts
}
