package crd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/testenv"
)

// sample reads one object from config/samples.
func sample(file string) *unstructured.Unstructured {
	GinkgoHelper()
	repo, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	f, err := os.Open(filepath.Join(repo, "config", "samples", file))
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	u := &unstructured.Unstructured{}
	Expect(utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&u.Object)).To(Succeed())
	return u
}

var namespaceCount int

// newNamespace gives each spec a clean namespace.
func newNamespace(ctx context.Context) string {
	GinkgoHelper()
	namespaceCount++
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crd-%d", namespaceCount)}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func set(u *unstructured.Unstructured, value any, path ...string) {
	GinkgoHelper()
	Expect(unstructured.SetNestedField(u.Object, value, path...)).To(Succeed())
}

func del(u *unstructured.Unstructured, path ...string) {
	unstructured.RemoveNestedField(u.Object, path...)
}

// expectRejected asserts the apiserver refused err as invalid, with a
// message containing want.
func expectRejected(err error, want string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the apiserver accepted an object that should be rejected with %q", want)
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
	Expect(err.Error()).To(ContainSubstring(want))
}

var _ = Describe("samples", func() {
	It("are all accepted, defaulted and read back", func(ctx context.Context) {
		ns := newNamespace(ctx)
		repo, err := testenv.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		files, err := filepath.Glob(filepath.Join(repo, "config", "samples", "backapp_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(4), "a server-mode and an agent-mode BackupConfig, an Agent and a BackupRun")
		for _, f := range files {
			u := sample(filepath.Base(f))
			u.SetNamespace(ns)
			Expect(k8s.Create(ctx, u)).To(Succeed(), "creating %s", filepath.Base(f))
		}

		var server backappv1alpha1.BackupConfig
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders-db-volume"}, &server)).To(Succeed())
		Expect(server.Spec.ExecutionMode).To(Equal(backappv1alpha1.ExecutionModeServer))
		Expect(server.Spec.Sources[0].PersistentVolumeClaim.ClaimName).To(Equal("orders-db-data"))
		Expect(server.Spec.Options.Type).To(Equal(backappv1alpha1.BackupTypeFull), "defaulted")
		Expect(*server.Spec.Options.ProgressDeadlineSeconds).To(BeEquivalentTo(600), "defaulted")
		Expect(server.Spec.Options.PreHook.Command).To(HaveLen(3))

		var agentCfg backappv1alpha1.BackupConfig
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ann-documents"}, &agentCfg)).To(Succeed())
		Expect(agentCfg.Spec.AgentRef.Name).To(Equal("ann-macbook"))
		Expect(agentCfg.Spec.Schedule.TimeZone).To(Equal("Europe/Berlin"))
		Expect(agentCfg.Spec.Options.Compression.Algorithm).To(Equal(backappv1alpha1.CompressionZstd))
		Expect(*agentCfg.Spec.SuccessfulRunsHistoryLimit).To(BeEquivalentTo(3), "defaulted")

		var agent backappv1alpha1.Agent
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ann-macbook"}, &agent)).To(Succeed())
		Expect(agent.Spec.Owner).To(Equal("ann"))

		var run backappv1alpha1.BackupRun
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ann-documents-manual-1"}, &run)).To(Succeed())
		Expect(run.Spec.ConfigRef.Name).To(Equal("ann-documents"))
	})

	It("get defaults when optional blocks are left out", func(ctx context.Context) {
		ns := newNamespace(ctx)
		cfg := &backappv1alpha1.BackupConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
			Spec: backappv1alpha1.BackupConfigSpec{
				Sources: []backappv1alpha1.BackupSource{{
					PersistentVolumeClaim: &backappv1alpha1.PVCSource{ClaimName: "data"},
				}},
				Destination: backappv1alpha1.Destination{Bucket: "backups"},
				Schedule:    &backappv1alpha1.Schedule{Cron: "@daily"},
			},
		}
		Expect(k8s.Create(ctx, cfg)).To(Succeed())
		Expect(cfg.Spec.ExecutionMode).To(Equal(backappv1alpha1.ExecutionModeServer))
		Expect(cfg.Spec.Options.Compression.Algorithm).To(Equal(backappv1alpha1.CompressionGzip))
		Expect(cfg.Spec.Schedule.TimeZone).To(Equal("UTC"))
		Expect(cfg.Spec.Schedule.ConcurrencyPolicy).To(Equal(backappv1alpha1.ConcurrencyForbid))
		Expect(*cfg.Spec.FailedRunsHistoryLimit).To(BeEquivalentTo(3))
	})
})

// One entry per validation rule: how to break the agent-mode or
// server-mode sample, and the message the apiserver must answer with.
var _ = DescribeTable("an invalid BackupConfig is rejected with the rule's message",
	func(ctx context.Context, file string, breakIt func(*unstructured.Unstructured), want string) {
		u := sample(file)
		u.SetNamespace(newNamespace(ctx))
		breakIt(u)
		expectRejected(k8s.Create(ctx, u), want)
	},
	Entry("Agent mode without agentRef", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { del(u, "spec", "agentRef") },
		"agentRef is required when executionMode is Agent"),
	Entry("Server mode with agentRef", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) { set(u, map[string]any{"name": "laptop"}, "spec", "agentRef") },
		"agentRef must not be set when executionMode is Server"),
	Entry("Agent mode with a PVC source", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) {
			set(u, []any{map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "data"}}}, "spec", "sources")
		},
		"in Agent mode every source must have a path on the agent's machine"),
	Entry("Server mode with a path source", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) { set(u, []any{map[string]any{"path": "/data"}}, "spec", "sources") },
		"in Server mode every source must have a persistentVolumeClaim"),
	Entry("Agent mode with Job options", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, map[string]any{"backoffLimit": int64(1)}, "spec", "job") },
		"job options apply only when executionMode is Server"),
	Entry("a relative agent path", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) {
			set(u, []any{map[string]any{"path": "Documents"}}, "spec", "sources")
		},
		"path must be absolute"),
	Entry("a PVC path escaping the volume", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) {
			set(u, []any{map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "d", "path": "a/../../etc"}}}, "spec", "sources")
		},
		"persistentVolumeClaim.path must be relative to the volume root and must not contain '..'"),
	Entry("an endpoint that is not http(s)", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) { set(u, "ftp://minio:21", "spec", "destination", "endpoint") },
		"endpoint must be an http or https URL without a path"),
	Entry("an endpoint with a path", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) {
			set(u, "https://minio:9000/bucket", "spec", "destination", "endpoint")
		},
		"endpoint must be an http or https URL without a path"),
	Entry("a prefix with '..'", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "team-a/../team-b/", "spec", "destination", "prefix") },
		"prefix must be relative and must not contain '..' segments"),
	Entry("a cron with four fields", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "30 1 * *", "spec", "schedule", "cron") },
		"cron must be five space-separated fields"),
	Entry("an unknown @ cron macro", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "@fortnightly", "spec", "schedule", "cron") },
		"cron must be five space-separated fields"),
	Entry("an empty cron", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "", "spec", "schedule", "cron") },
		"spec.schedule.cron"),
	Entry("a cron longer than 128 characters", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) {
			set(u, "0 0 * * "+strings.Repeat("1,", 70)+"1", "spec", "schedule", "cron")
		},
		"spec.schedule.cron: Too long"),
	Entry("an empty time zone", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "", "spec", "schedule", "timeZone") },
		"spec.schedule.timeZone"),
	Entry("a time zone longer than 64 characters", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) {
			set(u, "Europe/"+strings.Repeat("x", 60), "spec", "schedule", "timeZone")
		},
		"spec.schedule.timeZone: Too long"),
	Entry("a level with compression none", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "none", "spec", "options", "compression", "algorithm") },
		"compression.level must not be set when algorithm is none"),
	Entry("gzip level 12", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(12), "spec", "options", "compression", "level") },
		"gzip compression.level must be between 1 and 9"),
	Entry("zstd level 30", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(30), "spec", "options", "compression", "level") },
		"zstd compression.level must be between 1 and 22"),
	Entry("an empty retention", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, map[string]any{}, "spec", "options", "retention") },
		"retention needs days, keepLast or both"),
	Entry("negative retention days", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(-1), "spec", "options", "retention", "days") },
		"spec.options.retention.days: Invalid value: -1: spec.options.retention.days in body should be greater than or equal to 0"),
	Entry("negative keepLast", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(-3), "spec", "options", "retention", "keepLast") },
		"spec.options.retention.keepLast in body should be greater than or equal to 0"),
	Entry("a negative history limit", "backapp_v1alpha1_backupconfig_server.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(-1), "spec", "failedRunsHistoryLimit") },
		"spec.failedRunsHistoryLimit in body should be greater than or equal to 0"),
	Entry("a negative bandwidth limit", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(-5), "spec", "options", "bandwidthLimitKiBps") },
		"spec.options.bandwidthLimitKiBps in body should be greater than or equal to 0"),
	Entry("a negative starting deadline", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, int64(-60), "spec", "schedule", "startingDeadlineSeconds") },
		"spec.schedule.startingDeadlineSeconds in body should be greater than or equal to 0"),
	Entry("an unknown execution mode", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, "Laptop", "spec", "executionMode") },
		`spec.executionMode: Unsupported value: "Laptop"`),
	Entry("no sources", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) { set(u, []any{}, "spec", "sources") },
		"spec.sources: Invalid value"),
	Entry("an encryption recipient that is not an age key", "backapp_v1alpha1_backupconfig_agent.yaml",
		func(u *unstructured.Unstructured) {
			set(u, map[string]any{"recipients": []any{"ssh-rsa AAAA"}}, "spec", "options", "encryption")
		},
		"spec.options.encryption.recipients[0]"),
)

var _ = Describe("immutable fields", func() {
	// update applies change to the stored object and expects the apiserver
	// to refuse it with want, leaving what was stored untouched.
	update := func(ctx context.Context, obj client.Object, change func(), want string) {
		GinkgoHelper()
		before := obj.DeepCopyObject().(client.Object)
		change()
		expectRejected(k8s.Update(ctx, obj), want)
		stored := before.DeepCopyObject().(client.Object)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(before), stored)).To(Succeed())
		Expect(stored).To(Equal(before), "a rejected update must leave the stored object as it was")
	}

	It("keeps an Agent's owner", func(ctx context.Context) {
		agent := &backappv1alpha1.Agent{
			ObjectMeta: metav1.ObjectMeta{Namespace: newNamespace(ctx), Name: "laptop"},
			Spec:       backappv1alpha1.AgentSpec{DisplayName: "Laptop", Owner: "ann"},
		}
		Expect(k8s.Create(ctx, agent)).To(Succeed())
		update(ctx, agent, func() { agent.Spec.Owner = "mallory" }, "owner is immutable")
	})

	Describe("on a BackupRun", func() {
		var run *backappv1alpha1.BackupRun
		BeforeEach(func(ctx context.Context) {
			run = &backappv1alpha1.BackupRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: newNamespace(ctx), Name: "nightly-29000000"},
				Spec: backappv1alpha1.BackupRunSpec{
					ConfigRef:     backappv1alpha1.LocalObjectReference{Name: "nightly"},
					Trigger:       backappv1alpha1.TriggerSchedule,
					ScheduledTime: &metav1.Time{Time: metav1.Now().Rfc3339Copy().Time},
				},
			}
			Expect(k8s.Create(ctx, run)).To(Succeed())
		})

		It("requires scheduledTime for a scheduled run", func(ctx context.Context) {
			bad := &backappv1alpha1.BackupRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: "no-slot"},
				Spec: backappv1alpha1.BackupRunSpec{
					ConfigRef: backappv1alpha1.LocalObjectReference{Name: "nightly"},
					Trigger:   backappv1alpha1.TriggerSchedule,
				},
			}
			expectRejected(k8s.Create(ctx, bad), "scheduledTime is required when trigger is Schedule")
		})
		It("keeps configRef", func(ctx context.Context) {
			update(ctx, run, func() { run.Spec.ConfigRef.Name = "other" }, "configRef is immutable")
		})
		It("keeps trigger", func(ctx context.Context) {
			update(ctx, run, func() { run.Spec.Trigger = backappv1alpha1.TriggerManual }, "trigger is immutable")
		})
		It("keeps scheduledTime", func(ctx context.Context) {
			update(ctx, run, func() {
				run.Spec.ScheduledTime = &metav1.Time{Time: run.Spec.ScheduledTime.Add(60e9)}
			}, "scheduledTime is immutable")
		})
		It("accepts cancel once and never takes it back", func(ctx context.Context) {
			run.Spec.Cancel = true
			Expect(k8s.Update(ctx, run)).To(Succeed())
			update(ctx, run, func() { run.Spec.Cancel = false }, "cancel cannot be undone")
		})
	})
})

var _ = Describe("config/rbac", func() {
	It("applies to the apiserver (server-side dry run)", func(ctx context.Context) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "backapp-system"}}
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
		repo, err := testenv.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		files, err := filepath.Glob(filepath.Join(repo, "config", "rbac", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		applied := 0
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			for _, u := range decodeAll(f) {
				Expect(k8s.Create(ctx, u, client.DryRunAll)).To(Succeed(), "%s: %s", filepath.Base(f), u.GetName())
				applied++
			}
		}
		Expect(applied).To(BeNumerically(">=", 5))
	})

	It("never lets the manager list or watch Secrets", func() {
		repo, err := testenv.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		role := decodeAll(filepath.Join(repo, "config", "rbac", "role.yaml"))
		Expect(role).To(HaveLen(1))
		rules, _, _ := unstructured.NestedSlice(role[0].Object, "rules")
		Expect(rules).NotTo(BeEmpty())
		for _, r := range rules {
			rule := r.(map[string]any)
			resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
			verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
			if slices.Contains(resources, "secrets") || slices.Contains(resources, "*") {
				Expect(verbs).NotTo(ContainElements("list"), "secrets must not be listable")
				Expect(verbs).NotTo(ContainElements("watch"), "secrets must not be watchable")
				Expect(verbs).NotTo(ContainElements("*"))
			}
		}
	})
})

// decodeAll reads every object of a multi-document YAML file.
func decodeAll(path string) []*unstructured.Unstructured {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		Expect(err).NotTo(HaveOccurred(), path)
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
