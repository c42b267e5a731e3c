package objstore

import (
	"math"
	"testing"
)

func TestPartSize(t *testing.T) {
	tests := []struct {
		name     string
		expected int64
		want     int64
	}{
		{"unknown fits 5 TiB", 0, 1 * GiB},
		{"negative is unknown", -1, 1 * GiB},
		{"tiny", 1, 16 * MiB},
		{"1 GiB", 1 * GiB, 16 * MiB},
		{"39 GiB still fits 4x in 16 MiB parts", 39 * GiB, 16 * MiB},
		{"100 GiB", 100 * GiB, 64 * MiB},
		{"1 TiB", 1 * TiB, 512 * MiB},
		{"5 TiB", 5 * TiB, 1 * GiB},
		{"6 TiB (above S3's limit)", 6 * TiB, 1 * GiB},
		{"10 TiB", 10 * TiB, 2 * GiB},
		{"huge", math.MaxInt64, 4 * GiB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PartSize(tt.expected)
			if got != tt.want {
				t.Errorf("PartSize(%d) = %d MiB, want %d MiB", tt.expected, got/MiB, tt.want/MiB)
			}
			if got < 16*MiB || got > MaxPartSize {
				t.Errorf("PartSize(%d) = %d, outside 16 MiB..5 GiB", tt.expected, got)
			}
			if mib := got / MiB; got%MiB != 0 || mib&(mib-1) != 0 {
				t.Errorf("PartSize(%d) = %d is not a power-of-two number of MiB", tt.expected, got)
			}
			// The hint itself fits (as far as 10,000 of the largest parts
			// reach), so does four times it up to 5 TiB, and an unknown size
			// fits 5 TiB.
			var mustFit int64
			switch {
			case tt.expected <= 0:
				mustFit = MaxObjectSize
			case tt.expected <= MaxObjectSize:
				mustFit = min(4*tt.expected, MaxObjectSize)
			default:
				mustFit = min(tt.expected, MaxParts*maxChosenPartSize)
			}
			if parts := ceilDiv(mustFit, got); parts > MaxParts {
				t.Errorf("PartSize(%d) = %d: %d bytes need %d parts", tt.expected, got, mustFit, parts)
			}
		})
	}
}
