//go:build !windows

package archive

import (
	"os"
	"syscall"
)

// openNoFollow opens a file for reading without following a symlink that
// replaced it since the walk, and without blocking on a named pipe that
// did.
func openNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
