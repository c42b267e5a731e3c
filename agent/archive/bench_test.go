//go:build linux

package archive

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// reportThroughput adds MB/s and files/s over the whole b.Loop.
func reportThroughput(b *testing.B, bytesPerOp, filesPerOp int64) {
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/1e6/secs, "MB/s")
	b.ReportMetric(float64(filesPerOp)*float64(b.N)/secs, "files/s")
}

// BenchmarkWriteSmallFiles archives 10,000 files of 4 KiB (from the page
// cache) to io.Discard.
func BenchmarkWriteSmallFiles(b *testing.B) {
	const files, size = 10_000, 4 << 10
	src := b.TempDir()
	for i := range files {
		dir := filepath.Join(src, "d"+strconv.Itoa(i/500))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), content(i, size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"none/readers=1", Options{Compression: "none", Readers: 1}},
		{"none/readers=4", Options{Compression: "none"}},
		{"gzip-1/readers=4", Options{Level: 1}},
		{"gzip-6/readers=4", Options{}},
		{"zstd-3/readers=4", Options{Compression: "zstd"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				st, err := Write(context.Background(), io.Discard, []Source{{Path: src}}, bc.opts)
				if err != nil || st.FilesProcessed != files {
					b.Fatalf("Write: %v, %d files", err, st.FilesProcessed)
				}
			}
			reportThroughput(b, files*size, files)
		})
	}
}

// BenchmarkWriteLarge archives one 512 MiB file of random bytes.
func BenchmarkWriteLarge(b *testing.B) {
	const size = 512 << 20
	src := b.TempDir()
	f, err := os.Create(filepath.Join(src, "random.bin"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range size >> 20 {
		if _, err := f.Write(content(i, 1<<20)); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"none", Options{Compression: "none"}},
		{"gzip-1", Options{Level: 1}},
		{"zstd-1", Options{Compression: "zstd", Level: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				st, err := Write(context.Background(), io.Discard, []Source{{Path: src}}, bc.opts)
				if err != nil || st.BytesRead != size {
					b.Fatalf("Write: %v, %d bytes", err, st.BytesRead)
				}
			}
			reportThroughput(b, size, 1)
		})
	}
}
