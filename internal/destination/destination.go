// Package destination opens the object store of a BackupConfig's
// destination: its bucket, endpoint and region, with the credentials of the
// Secret it names or the server's defaults. The server (pre-signing) and
// the manager (retention, aborting uploads) both use it. It reads Secrets
// one by one with GET, never lists or watches them.
package destination

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/objstore"
)

// Keys of a destination credentials Secret (BackupConfig
// spec.destination.credentialsSecretRef).
const (
	SecretKeyAccessKeyID     = "accessKeyID"
	SecretKeySecretAccessKey = "secretAccessKey"
	SecretKeySessionToken    = "sessionToken"
)

var (
	// ErrSecretNotFound: the credentials Secret the config names does not
	// exist. Only the user can fix it.
	ErrSecretNotFound = errors.New("the destination credentials Secret does not exist")
	// ErrMisconfigured: the destination cannot be used as configured (no
	// credentials, a bad endpoint). Only the user or admin can fix it.
	ErrMisconfigured = errors.New("the destination is misconfigured")
)

// Open returns the object store of cfg's destination. secrets must read
// from the apiserver (an uncached reader), so a rotated credential takes
// effect on the next call and no Secret informer is needed. defaults
// supplies credentials, region and endpoint where the destination has none.
func Open(ctx context.Context, secrets client.Reader, cfg *backappv1alpha1.BackupConfig, defaults objstore.Config) (*objstore.Store, error) {
	d := cfg.Spec.Destination
	oc := defaults
	oc.Bucket = d.Bucket
	if d.Endpoint != "" {
		oc.Endpoint = d.Endpoint
	}
	if d.Region != "" {
		oc.Region = d.Region
	}
	oc.ForcePathStyle = oc.ForcePathStyle || d.ForcePathStyle
	if ref := d.CredentialsSecretRef; ref != nil {
		var secret corev1.Secret
		err := secrets.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: ref.Name}, &secret)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s/%s", ErrSecretNotFound, cfg.Namespace, ref.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("while reading the credentials Secret of config %s: %w", cfg.Name, err)
		}
		oc.AccessKeyID = string(secret.Data[SecretKeyAccessKeyID])
		oc.SecretAccessKey = string(secret.Data[SecretKeySecretAccessKey])
		oc.SessionToken = string(secret.Data[SecretKeySessionToken])
	}
	st, err := objstore.New(oc)
	if err != nil {
		// objstore's errors never carry secrets.
		return nil, fmt.Errorf("%w: %w", ErrMisconfigured, err)
	}
	return st, nil
}

// ArchiveExt is the object name extension for a config's options:
// tar[.gz|.zst][.age].
func ArchiveExt(o backappv1alpha1.BackupOptions) string {
	ext := "tar"
	switch o.Compression.Algorithm {
	case backappv1alpha1.CompressionZstd:
		ext += ".zst"
	case backappv1alpha1.CompressionNone:
	default:
		ext += ".gz"
	}
	if o.Encryption != nil && len(o.Encryption.Recipients) > 0 {
		ext += ".age"
	}
	return ext
}
