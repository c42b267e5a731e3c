package destination

import (
	"testing"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

func TestArchiveExt(t *testing.T) {
	enc := &backappv1alpha1.Encryption{Recipients: []string{"age1..."}}
	for _, tt := range []struct {
		algo backappv1alpha1.CompressionAlgorithm
		enc  *backappv1alpha1.Encryption
		want string
	}{
		{"", nil, "tar.gz"},
		{backappv1alpha1.CompressionGzip, nil, "tar.gz"},
		{backappv1alpha1.CompressionZstd, nil, "tar.zst"},
		{backappv1alpha1.CompressionNone, nil, "tar"},
		{backappv1alpha1.CompressionGzip, enc, "tar.gz.age"},
		{backappv1alpha1.CompressionZstd, enc, "tar.zst.age"},
		{backappv1alpha1.CompressionNone, enc, "tar.age"},
		{backappv1alpha1.CompressionNone, &backappv1alpha1.Encryption{}, "tar"},
	} {
		o := backappv1alpha1.BackupOptions{Compression: backappv1alpha1.Compression{Algorithm: tt.algo}, Encryption: tt.enc}
		if got := ArchiveExt(o); got != tt.want {
			t.Errorf("ArchiveExt(%s, encrypted=%v) = %q, want %q", tt.algo, tt.enc != nil, got, tt.want)
		}
	}
}
