package testenv

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv switches the test binary into TestHelperProcess's role.
const helperEnv = "BACKAPP_TESTENV_HELPER"

// newRoot creates a Root that is closed when the test ends.
func newRoot(t *testing.T) *Root {
	t.Helper()
	root, err := NewRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := root.Close(); err != nil {
			t.Error(err)
		}
	})
	return root
}

// findTools fails the test (rather than skipping it) when the tools are
// missing: a silently skipped integration test is a test that never runs.
func findTools(t *testing.T, needed ...Tool) Tools {
	t.Helper()
	tools, err := FindTools()
	if err != nil {
		t.Fatal(err)
	}
	if err := tools.Require(needed...); err != nil {
		t.Fatal(err)
	}
	return tools
}

// assertNoProcessesMentioning fails unless, within timeout, no process's
// command line mentions dir.
func assertNoProcessesMentioning(t *testing.T, dir string, timeout time.Duration) {
	t.Helper()
	var pids []int
	for deadline := time.Now().Add(timeout); ; {
		var err error
		if pids, err = processesMentioning(dir); err != nil {
			t.Fatal(err)
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		t.Errorf("process %d still running: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
}

// assertGone fails unless, within timeout, path no longer exists.
func assertGone(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		_, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still exists (stat error: %v)", path, err)
			return
		}
	}
}

// assertProcessGone fails unless, within timeout, pid is dead. A zombie
// counts as dead: in a container, whatever inherits an orphan may be slow to
// reap it (or never do so).
func assertProcessGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if !processAlive(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d still alive after %s", pid, timeout)
			return
		}
	}
}

func processAlive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name, which may contain spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// startEscapee starts a process that mentions root in its command line but
// escapes Pdeathsig and the test's process group — like a daemon that forks
// away — so that only the reaper (or Root.Close) can be what kills it.
func startEscapee(t *testing.T, root *Root) int {
	t.Helper()
	file := root.Path("escapee.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tail", "-f", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Reap it whenever it dies, so it does not linger as our zombie.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid
}

func TestRootPathAndClose(t *testing.T) {
	root, err := NewRoot()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := root.Path("a", "b"), filepath.Join(root.Dir, "a", "b"); got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
	st, err := os.Stat(root.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o755 {
		t.Errorf("root directory mode = %o, want 755", perm)
	}

	escapee := startEscapee(t, root)
	sleeper := startSleeper(t, root)

	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	// Close is synchronous: everything is gone when it returns.
	assertNoProcessesMentioning(t, root.Dir, 0)
	assertGone(t, root.Dir, 0)
	assertProcessGone(t, escapee, time.Second)
	assertProcessGone(t, sleeper.Pid(), time.Second)

	if err := root.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// startSleeper starts a process through StartProcess whose command line
// mentions root.
func startSleeper(t *testing.T, root *Root) *Process {
	t.Helper()
	file := root.Path("sleeper.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := StartProcess("sleeper", exec.Command("tail", "-f", file), root.Path("sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	return proc
}

func TestRootPatternDoesNotMatchLongerSibling(t *testing.T) {
	dir := "/tmp/backapp-testenv-12"
	for cmdline, want := range map[string]bool{
		"postgres -D /tmp/backapp-testenv-12/postgres/data":          true,
		"tail -f /tmp/backapp-testenv-12":                            true,
		"sh /tmp/backapp-testenv-12 x":                               true,
		"postgres -D /tmp/backapp-testenv-1234/postgres":             false,
		"tail -f /tmp/backapp-testenv-123 /tmp/backapp-testenv-12/x": true,
	} {
		if got := mentions(cmdline, dir); got != want {
			t.Errorf("mentions(%q) = %v, want %v", cmdline, got, want)
		}
	}
}

// TestReaperCleansUpAfterOwnerIsKilled SIGKILLs a process that owns a Root
// with running children and checks that the reaper kills them and removes
// the directory.
func TestReaperCleansUpAfterOwnerIsKilled(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	helper.Env = append(os.Environ(), helperEnv+"=reaper")
	helper.Stderr = os.Stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	dir, pids := readHelperReport(t, stdout)
	// Should the reaper fail, do not leave the mess behind.
	t.Cleanup(func() {
		_ = killProcessesMentioning(dir, 5*time.Second)
		_ = os.RemoveAll(dir)
	})
	for _, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("helper's child %d is not running before the kill", pid)
		}
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	for _, pid := range pids {
		assertProcessGone(t, pid, 15*time.Second)
	}
	assertNoProcessesMentioning(t, dir, 15*time.Second)
	assertGone(t, dir, 15*time.Second)
}

// readHelperReport reads the ROOT= and PID= lines TestHelperProcess prints,
// up to its READY line.
func readHelperReport(t *testing.T, stdout interface{ Read([]byte) (int, error) }) (string, []int) {
	t.Helper()
	var dir string
	var pids []int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ROOT="):
			dir = strings.TrimPrefix(line, "ROOT=")
		case strings.HasPrefix(line, "PID="):
			pid, err := strconv.Atoi(strings.TrimPrefix(line, "PID="))
			if err != nil {
				t.Fatalf("bad helper line %q", line)
			}
			pids = append(pids, pid)
		case line == "READY":
			if dir == "" || len(pids) == 0 {
				t.Fatalf("helper reported root %q and pids %v", dir, pids)
			}
			return dir, pids
		}
	}
	t.Fatalf("helper exited before it was ready: %v", sc.Err())
	return "", nil
}

// TestHelperProcess is not a real test: TestReaperCleansUpAfterOwnerIsKilled
// runs the test binary with helperEnv set so that this creates a Root with
// children and then waits to be killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "reaper" {
		t.Skip("helper process for TestReaperCleansUpAfterOwnerIsKilled")
	}
	root, err := NewRoot()
	if err != nil {
		t.Fatal(err)
	}
	sleeper := startSleeper(t, root)
	escapee := startEscapee(t, root)
	os.Stdout.WriteString("ROOT=" + root.Dir + "\n")
	os.Stdout.WriteString("PID=" + strconv.Itoa(sleeper.Pid()) + "\n")
	os.Stdout.WriteString("PID=" + strconv.Itoa(escapee) + "\n")
	os.Stdout.WriteString("READY\n")
	time.Sleep(5 * time.Minute) // until SIGKILLed
}
