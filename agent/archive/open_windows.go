//go:build windows

package archive

import "os"

// openNoFollow opens a file for reading. Windows has no O_NOFOLLOW; the
// reader checks the opened file is regular.
func openNoFollow(name string) (*os.File, error) {
	return os.Open(name)
}
