package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// reaperScript runs as a child in its own process group with its stdin the
// read end of a pipe whose write end only the test process holds. However the
// test process ends — even SIGKILL — the kernel closes that write end, cat
// sees EOF, and the script kills every process whose command line names the
// root directory and removes it. It loops because a process killed a moment
// ago may still be writing into the directory while rm runs.
//
// The directory comes in through the environment, not argv, so that pkill -f
// does not match the reaper itself. HUP and INT are ignored so that closing
// the terminal or a Ctrl-C cannot kill the reaper before it has done its job.
const reaperScript = `trap '' HUP INT
cat >/dev/null 2>&1
i=0
while [ "$i" -lt 20 ]; do
	pkill -KILL -f -- "$BACKAPP_TESTENV_PATTERN" >/dev/null 2>&1
	rm -rf -- "$BACKAPP_TESTENV_ROOT" >/dev/null 2>&1
	[ -e "$BACKAPP_TESTENV_ROOT" ] || exit 0
	i=$((i + 1))
	sleep 0.5
done
exit 1
`

// Root is one test run's private directory. Every process testenv starts keeps
// its data and configuration under Root.Dir, so the reaper can find and kill
// them by path.
type Root struct {
	Dir string

	reaperPipe *os.File      // write end of the reaper's stdin; closing it fires the reaper
	reaperDone chan struct{} // closed once the reaper has exited and been reaped

	closeOnce sync.Once
	closeErr  error
}

// NewRoot creates a fresh private directory and starts its reaper.
func NewRoot() (*Root, error) {
	dir, err := os.MkdirTemp("", "backapp-testenv-*")
	if err != nil {
		return nil, fmt.Errorf("while creating the test environment directory: %w", err)
	}
	// The canonical path is what ends up in the children's command lines.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	// PostgreSQL runs as another user when we are root and must be able to
	// traverse this directory to reach its own (private) data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("while making %s traversable: %w", dir, err)
	}
	r := &Root{Dir: dir}
	if err := r.startReaper(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

func (r *Root) startReaper() error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("while creating the reaper pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", reaperScript)
	cmd.Stdin = pr
	// Stdout and stderr stay nil (/dev/null): if the reaper held the test's
	// stdout, `go test` would wait for it after the test binary exits.
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"BACKAPP_TESTENV_ROOT=" + r.Dir,
		"BACKAPP_TESTENV_PATTERN=" + pkillPattern(r.Dir),
	}
	// Its own process group so a Ctrl-C in the terminal does not reach it, and
	// deliberately no Pdeathsig: it must outlive the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("while starting the test environment reaper: %w", err)
	}
	// Only the reaper may hold the read end, and nobody but us the write end
	// (os.Pipe is close-on-exec, so no other child inherits it).
	pr.Close()
	r.reaperPipe = pw
	r.reaperDone = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(r.reaperDone)
	}()
	return nil
}

// Path joins elem onto the root directory.
func (r *Root) Path(elem ...string) string {
	return filepath.Join(append([]string{r.Dir}, elem...)...)
}

// Close kills every process still running whose command line contains r.Dir,
// removes r.Dir and lets the reaper exit. It is idempotent.
//
// Components should be closed first so they can shut down cleanly; Close is
// the backstop for whatever is left.
func (r *Root) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

func (r *Root) close() error {
	errs := []error{killProcessesMentioning(r.Dir, 10*time.Second)}
	errs = append(errs, removeAllRetrying(r.Dir, 5*time.Second))
	// The directory is gone, so the reaper's own sweep is a no-op; closing the
	// pipe just lets it exit.
	errs = append(errs, r.reaperPipe.Close())
	select {
	case <-r.reaperDone:
	case <-time.After(10 * time.Second):
		errs = append(errs, errors.New("the test environment reaper did not exit within 10s"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("while cleaning up %s: %w", r.Dir, err)
	}
	return nil
}

// removeAllRetrying removes dir, retrying for a while because a process that
// was just killed (or a PostgreSQL backend noticing its postmaster died) may
// still create files in it.
func removeAllRetrying(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := os.RemoveAll(dir)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("while removing %s: %w", dir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killProcessesMentioning SIGKILLs every process (other than this one) whose
// command line mentions dir and waits up to timeout for them to be gone.
func killProcessesMentioning(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := processesMentioning(dir)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v using %s survived SIGKILL for %s", pids, dir, timeout)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pkillPattern is the extended regular expression pkill -f uses to find the
// processes using dir. It requires dir to be followed by a slash, a space or
// the end of the command line: temp names have numeric suffixes of varying
// length, so without that boundary /tmp/backapp-testenv-12 would also match
// another run's /tmp/backapp-testenv-1234 (go test runs packages in parallel).
func pkillPattern(dir string) string {
	return regexp.QuoteMeta(dir) + "(/|[[:space:]]|$)"
}

// mentions reports whether cmdline (arguments joined by spaces) contains dir
// as a path or path prefix, with the same boundary as pkillPattern.
func mentions(cmdline, dir string) bool {
	for rest := cmdline; ; {
		i := strings.Index(rest, dir)
		if i < 0 {
			return false
		}
		rest = rest[i+len(dir):]
		if rest == "" || rest[0] == '/' || rest[0] == ' ' {
			return true
		}
	}
}

// processesMentioning lists the live (non-zombie) processes, other than this
// one, whose command line mentions dir — the same match as the reaper's
// pkill -f.
func processesMentioning(dir string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("while listing processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		// Processes may exit while we look; unreadable entries are skipped.
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // zombies and kernel threads have an empty cmdline
		}
		joined := strings.TrimRight(strings.ReplaceAll(string(cmdline), "\x00", " "), " ")
		if mentions(joined, dir) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
