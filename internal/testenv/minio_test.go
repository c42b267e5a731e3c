package testenv

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMinIOPutGetStopRestartClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tools := findTools(t, ToolMinIO)
	root := newRoot(t)

	started := time.Now()
	m, err := StartMinIO(ctx, root, tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MinIO started in %s at %s", time.Since(started).Round(time.Millisecond), m.Endpoint)
	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.1:") || m.Region != "us-east-1" || m.Bucket == "" {
		t.Errorf("unexpected fields: endpoint %q, region %q, bucket %q", m.Endpoint, m.Region, m.Bucket)
	}

	client := m.Client()
	want := []byte("hello from backapp")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(m.Bucket), Key: aws.String("dir/obj.txt"), Body: bytes.NewReader(want),
	}); err != nil {
		t.Fatal(err)
	}
	assertObject(ctx, t, client, m.Bucket, "dir/obj.txt", want)

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	// One attempt: the SDK would otherwise spend seconds retrying a refused connection.
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(m.Bucket)}, noRetry); err == nil {
		t.Error("HeadBucket succeeded after Stop")
	}
	started = time.Now()
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("MinIO restarted in %s", time.Since(started).Round(time.Millisecond))
	assertObject(ctx, t, m.Client(), m.Bucket, "dir/obj.txt", want)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoProcessesMentioning(t, root.Dir, 5*time.Second)
	assertSecretNotLogged(t, m)
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, root.Dir, 0)
}

func assertObject(ctx context.Context, t *testing.T, client *s3.Client, bucket, key string, want []byte) {
	t.Helper()
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object %s = %q, want %q", key, got, want)
	}
}

// assertSecretNotLogged checks that MinIO's log, which ends up in CI
// artifacts and error messages, does not contain the secret key.
func assertSecretNotLogged(t *testing.T, m *MinIO) {
	t.Helper()
	log, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte(m.SecretKey)) {
		t.Error("MinIO's log contains the secret key")
	}
}

// TestMinIOClientIgnoresAWSEnvironment checks that AWS_* settings in the
// environment (a CA bundle that does not exist, a bogus endpoint and
// credentials) do not leak into the client or the server.
func TestMinIOClientIgnoresAWSEnvironment(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tools := findTools(t, ToolMinIO)
	m, err := StartMinIO(ctx, newRoot(t), tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if _, err := m.Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(m.Bucket)}); err != nil {
		t.Fatal(err)
	}
}
