package objstore

import "math"

// S3's multipart limits.
const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
	TiB = int64(1) << 40

	// MaxParts is the highest part number, and so the most parts an
	// upload can have.
	MaxParts = 10000
	// MinPartSize is the smallest size of every part but the last.
	MinPartSize = 5 * MiB
	// MaxPartSize is the largest size of one part, and of one plain PUT.
	MaxPartSize = 5 * GiB
	// MaxObjectSize is the largest object S3 stores.
	MaxObjectSize = 5 * TiB
)

const (
	// minChosenPartSize keeps the request count (and per-request overhead)
	// of small and medium archives sane; an agent holds a few parts in
	// memory at a time, so this is also the smallest buffer it needs.
	minChosenPartSize = 16 * MiB
	// maxChosenPartSize is the largest power of two not above MaxPartSize.
	maxChosenPartSize = 4 * GiB
	// sizeHintHeadroom is how much larger than its hint an archive may turn
	// out and still fit. Hints are estimates made before the archive exists
	// (summed file sizes): files grow during a backup, and tar's 512-byte
	// headers and padding can outweigh many small files several times over.
	sizeHintHeadroom = 4
)

// PartSize picks the multipart part size for an archive of about
// expectedSize bytes; 0 (or a negative value) means unknown. The result is a
// power-of-two number of MiB, at least 16 MiB and at most 4 GiB (the largest
// such size not above S3's 5 GiB part limit), chosen so that:
//
//   - an unknown size gets parts large enough for 5 TiB, the largest object
//     S3 stores, in 10,000 parts (1 GiB);
//   - a known size fits in 10,000 parts even if the archive turns out up to
//     four times larger than the hint, capped at 5 TiB since S3 stores
//     nothing larger; and
//   - a hint above 5 TiB still fits at its own size (up to 40 TiB) so that
//     the upload fails on S3's object limit, not on the part count.
//
// Small parts for small archives keep the agent's memory use low: it holds
// a few parts in memory at once so that a failed part can be retried.
func PartSize(expectedSize int64) int64 {
	target := MaxObjectSize
	if expectedSize > 0 {
		target = min(MaxObjectSize, headroom(expectedSize))
		target = max(target, expectedSize)
	}
	need := ceilDiv(target, MaxParts)
	size := minChosenPartSize
	for size < need && size < maxChosenPartSize {
		size *= 2
	}
	return size
}

func headroom(n int64) int64 {
	if n > math.MaxInt64/sizeHintHeadroom {
		return math.MaxInt64
	}
	return n * sizeHintHeadroom
}

// ceilDiv is ⌈a/b⌉ for a >= 0, b > 0, without overflowing near MaxInt64.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}
