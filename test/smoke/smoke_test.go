package smoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

var _ = Describe("kube-apiserver", func() {
	It("stores and returns each BackApp kind, status included", func(ctx context.Context) {
		c := env.Kube.Client
		ns := "default"
		agent := &backappv1alpha1.Agent{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "smoke-laptop"},
			Spec:       backappv1alpha1.AgentSpec{DisplayName: "Smoke laptop", Owner: "smoke"},
		}
		cfg := &backappv1alpha1.BackupConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "smoke-docs"},
			Spec: backappv1alpha1.BackupConfigSpec{
				ExecutionMode: backappv1alpha1.ExecutionModeAgent,
				AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent.Name},
				Sources:       []backappv1alpha1.BackupSource{{Path: "/home/smoke/docs"}},
				Destination:   backappv1alpha1.Destination{Bucket: env.MinIO.Bucket},
				Schedule:      &backappv1alpha1.Schedule{Cron: "0 3 * * *", TimeZone: "Europe/Paris"},
			},
		}
		run := &backappv1alpha1.BackupRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cfg.ManualRunName("smoke")},
			Spec:       backappv1alpha1.BackupRunSpec{ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name}},
		}
		for _, obj := range []client.Object{agent, cfg, run} {
			Expect(c.Create(ctx, obj)).To(Succeed())
		}

		// Status is a subresource: written on its own, read back with the object.
		run.Status.Phase = backappv1alpha1.RunSucceeded
		run.Status.Object = &backappv1alpha1.StoredObject{Bucket: env.MinIO.Bucket, Key: "k", Size: 3,
			SHA256: strings.Repeat("ab", 32)}
		Expect(c.Status().Update(ctx, run)).To(Succeed())

		var gotAgent backappv1alpha1.Agent
		Expect(c.Get(ctx, client.ObjectKeyFromObject(agent), &gotAgent)).To(Succeed())
		Expect(gotAgent.Spec.PollIntervalSeconds).To(BeEquivalentTo(60), "defaulted by the CRD")
		var gotCfg backappv1alpha1.BackupConfig
		Expect(c.Get(ctx, client.ObjectKeyFromObject(cfg), &gotCfg)).To(Succeed())
		Expect(gotCfg.Spec.Schedule.TimeZone).To(Equal("Europe/Paris"))
		var gotRun backappv1alpha1.BackupRun
		Expect(c.Get(ctx, client.ObjectKeyFromObject(run), &gotRun)).To(Succeed())
		Expect(gotRun.Status.Phase).To(Equal(backappv1alpha1.RunSucceeded))
		Expect(gotRun.Status.Object.Size).To(BeEquivalentTo(3))
	})

	It("rejects an object that breaks a CEL rule", func(ctx context.Context) {
		bad := &backappv1alpha1.BackupConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "smoke-no-agent"},
			Spec: backappv1alpha1.BackupConfigSpec{
				ExecutionMode: backappv1alpha1.ExecutionModeAgent,
				Sources:       []backappv1alpha1.BackupSource{{Path: "/data"}},
				Destination:   backappv1alpha1.Destination{Bucket: "backups"},
			},
		}
		err := env.Kube.Client.Create(ctx, bad)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("agentRef is required when executionMode is Agent"))
	})

	It("is reachable with kubectl through the written kubeconfig", func(ctx context.Context) {
		kubectl := env.Tools.KubebuilderAssets + "/kubectl"
		if _, err := os.Stat(kubectl); err != nil {
			kubectl = "kubectl"
		}
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kube.Kubeconfig,
			"get", "crd", "backupconfigs.backapp.io", "-o", "name").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("customresourcedefinition.apiextensions.k8s.io/backupconfigs.backapp.io"))
	})
})

var _ = Describe("PostgreSQL", func() {
	It("round-trips a row over an authenticated TCP connection", func(ctx context.Context) {
		conn, err := pgx.Connect(ctx, env.Postgres.URL)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx context.Context) { _ = conn.Close(ctx) })

		_, err = conn.Exec(ctx, `CREATE TABLE smoke (id bigint PRIMARY KEY, note text NOT NULL)`)
		Expect(err).NotTo(HaveOccurred())
		_, err = conn.Exec(ctx, `INSERT INTO smoke (id, note) VALUES ($1, $2)`, 7, "héllo")
		Expect(err).NotTo(HaveOccurred())
		var note string
		Expect(conn.QueryRow(ctx, `SELECT note FROM smoke WHERE id = $1`, 7).Scan(&note)).To(Succeed())
		Expect(note).To(Equal("héllo"))
	})

	It("refuses a wrong password", func(ctx context.Context) {
		cfg, err := pgx.ParseConfig(env.Postgres.URL)
		Expect(err).NotTo(HaveOccurred())
		cfg.Password = "not-" + cfg.Password
		_, err = pgx.ConnectConfig(ctx, cfg)
		Expect(err).To(HaveOccurred())
	})
})

var _ = Describe("MinIO", func() {
	It("stores and returns an object byte for byte", func(ctx context.Context) {
		s3c := env.MinIO.Client()
		body := make([]byte, 1<<20+17)
		_, _ = rand.Read(body)
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(env.MinIO.Bucket), Key: aws.String("smoke/random.bin"), Body: bytes.NewReader(body),
		})
		Expect(err).NotTo(HaveOccurred())

		got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.MinIO.Bucket), Key: aws.String("smoke/random.bin")})
		Expect(err).NotTo(HaveOccurred())
		defer got.Body.Close()
		data, err := io.ReadAll(got.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(bytes.Equal(data, body)).To(BeTrue(), "the object read back differs from the one written")
	})
})
