package objstore

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DefaultRegion is used when Config.Region is empty.
const DefaultRegion = "us-east-1"

// Config says which bucket to use and how to reach it. The credentials are
// the server's own; they never leave it.
type Config struct {
	// Endpoint is the base URL of an S3-compatible service (MinIO, Ceph ...),
	// e.g. "https://minio.example:9000"; "" means AWS S3.
	Endpoint string
	// Region is the signing region; default DefaultRegion.
	Region string
	// Bucket holds the archives; it must exist.
	Bucket string
	// AccessKeyID and SecretAccessKey are required: pre-signing needs
	// credentials the server holds. SessionToken is optional; URLs signed
	// with temporary credentials stop working when the session ends, even
	// before they expire.
	AccessKeyID, SecretAccessKey, SessionToken string
	// ForcePathStyle addresses the bucket as a path (endpoint/bucket/key)
	// rather than a host name, as most S3-compatible services need.
	ForcePathStyle bool
	// HTTPClient is used for the server's own calls to S3 (not for the
	// pre-signed URLs, which agents use); nil means the SDK's default.
	HTTPClient *http.Client
}

// String describes the configuration without its secrets, so a Config that
// ends up in a log or an error message leaks nothing.
func (c Config) String() string {
	return fmt.Sprintf("objstore.Config{Endpoint:%q Region:%q Bucket:%q AccessKeyID:%q SecretAccessKey:%s SessionToken:%s ForcePathStyle:%t}",
		redactEndpoint(c.Endpoint), c.Region, c.Bucket, c.AccessKeyID, redactedIfSet(c.SecretAccessKey), redactedIfSet(c.SessionToken), c.ForcePathStyle)
}

// GoString keeps %#v from printing the secrets field by field.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", redactEndpoint(c.Endpoint)),
		slog.String("region", c.Region),
		slog.String("bucket", c.Bucket),
		slog.String("accessKeyID", c.AccessKeyID),
		slog.Bool("forcePathStyle", c.ForcePathStyle),
	)
}

var (
	_ fmt.Stringer   = Config{}
	_ fmt.GoStringer = Config{}
	_ slog.LogValuer = Config{}
)

func redactedIfSet(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// redactEndpoint drops anything an endpoint URL should not carry but might
// (user:password@, a query) before it is printed.
func redactEndpoint(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "[unparseable endpoint]"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

var (
	// bucketRE is S3's bucket naming rule (general purpose buckets); dots
	// next to each other or to a hyphen are checked separately.
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// validate returns c with defaults filled in, or an error wrapping
// ErrInvalidArgument that names the offending field (never a secret).
func (c Config) validate() (Config, error) {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if !regionRE.MatchString(c.Region) {
		return c, fmt.Errorf("%w: region %q is not a valid region name", ErrInvalidArgument, c.Region)
	}
	if c.Bucket == "" {
		return c, fmt.Errorf("%w: bucket is required", ErrInvalidArgument)
	}
	if !bucketRE.MatchString(c.Bucket) || strings.Contains(c.Bucket, "..") ||
		strings.Contains(c.Bucket, ".-") || strings.Contains(c.Bucket, "-.") {
		return c, fmt.Errorf("%w: bucket %q is not a valid bucket name (3-63 lowercase letters, digits, dots and hyphens)", ErrInvalidArgument, c.Bucket)
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return c, err
		}
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, fmt.Errorf("%w: access key id and secret access key are both required", ErrInvalidArgument)
	}
	return c, nil
}

// checkEndpoint accepts an absolute http(s) URL with a host and at most a
// "/" path. Its messages never repeat the URL: it might carry a password.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%w: endpoint is not a URL", ErrInvalidArgument)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: endpoint must start with http:// or https://", ErrInvalidArgument)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: endpoint has no host", ErrInvalidArgument)
	case u.User != nil:
		return fmt.Errorf("%w: endpoint must not contain user information; use the access key fields", ErrInvalidArgument)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%w: endpoint must not have a query or fragment", ErrInvalidArgument)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%w: endpoint must not have a path (got %q)", ErrInvalidArgument, u.Path)
	}
	return nil
}

// Store talks to one bucket. It is safe for concurrent use.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
}

// New checks cfg and builds a Store. The S3 client is built from cfg alone:
// config.LoadDefaultConfig would let AWS_* variables and ~/.aws files on the
// server (a profile, another endpoint, a CA bundle) change where archives go
// and which credentials sign them. New does not contact S3.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("while configuring object storage: %w", err)
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.ForcePathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		// The server never uploads data itself, and SDK releases have changed
		// the default before; asking only for the checksums S3 requires keeps
		// multipart uploads free of checksum algorithms that the agents'
		// plain part PUTs would then have to supply.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(strings.TrimSuffix(cfg.Endpoint, "/"))
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	client := s3.New(opts)
	return &Store{
		client:  client,
		presign: s3.NewPresignClient(client),
		bucket:  cfg.Bucket,
	}, nil
}

// Bucket is the bucket the Store works on, for recording next to keys.
func (s *Store) Bucket() string { return s.bucket }
