package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logTailMaxBytes bounds how much of a log LogTail reads: enough for the last
// few dozen lines, without slurping a chatty server's whole log.
const logTailMaxBytes = 64 << 10

// Process is a child process started by StartProcess.
type Process struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	logStart int64 // size of the log before this process started writing to it

	done    chan struct{}
	waitErr error // set before done is closed

	stopMu  sync.Mutex
	stopped bool
}

// StartProcess starts cmd with its stdout and stderr appended to logPath.
//
// The process gets its own process group, so a Ctrl-C in the terminal reaches
// only the test (which then tears everything down in order) and not the
// servers directly, and it is sent SIGKILL when the test process dies. Any
// SysProcAttr already set on cmd (e.g. Credential) is kept.
func StartProcess(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("while opening the log of %s: %w", name, err)
	}
	// The child gets its own copy of the descriptor; the parent's is not needed
	// after Start.
	defer logFile.Close()
	// The log may hold earlier runs (a restarted server appends to it); this
	// process's LogTail shows only its own output.
	st, err := logFile.Stat()
	if err != nil {
		return nil, fmt.Errorf("while opening the log of %s: %w", name, err)
	}

	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting %s (%s): %w", name, cmd.Path, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, logStart: st.Size(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name is the name given to StartProcess.
func (p *Process) Name() string { return p.name }

// Pid is the process ID of the child.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file the child's stdout and stderr go to.
func (p *Process) LogPath() string { return p.logPath }

// Exited is closed once the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.done }

// ExitErr is the error from waiting for the process (nil for a clean exit).
// It is only meaningful after Exited is closed; before that it returns nil.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills its whole process group. It is idempotent and safe for concurrent use.
func (p *Process) Stop(timeout time.Duration) error {
	return p.StopWith(syscall.SIGTERM, timeout)
}

// StopWith is Stop with a different polite signal, e.g. SIGINT, which makes
// PostgreSQL do a fast shutdown.
//
// An error means the process ignored sig and had to be killed; it is gone
// either way when StopWith returns (short of an unkillable process).
func (p *Process) StopWith(sig syscall.Signal, timeout time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true

	if !p.Running() {
		return nil
	}
	// Only the leader gets the polite signal: it knows how to shut down its
	// own children in order.
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("while sending %s to %s: %w", sig, p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	p.kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL for 10s", p.name, p.Pid())
	}
	return fmt.Errorf("%s did not exit within %s of %s and was killed", p.name, timeout, sig)
}

// kill sends SIGKILL to the process group the child leads, so helpers it
// forked die with it.
func (p *Process) kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
}

// LogTail returns the last n lines this process wrote to its log, for error
// messages when startup fails. It returns a note instead if the log cannot be
// read.
func (p *Process) LogTail(n int) string {
	return logTail(p.logPath, p.logStart, n)
}

// logTail returns the last n lines of the file at path after offset start.
func logTail(path string, start int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	offset := min(max(st.Size()-logTailMaxBytes, start, 0), st.Size())
	data, err := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// describeFailure formats why a process failed to become ready: how it exited
// (if it did) and the tail of its log with the given secrets masked.
func describeFailure(p *Process, secrets ...string) string {
	var b strings.Builder
	if !p.Running() {
		fmt.Fprintf(&b, "%s exited: %v\n", p.name, exitDescription(p.ExitErr()))
	}
	fmt.Fprintf(&b, "last lines of %s:\n%s", p.logPath, redact(p.LogTail(30), secrets...))
	return b.String()
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// redact masks secrets in s; servers like MinIO print their credentials in
// their startup banner, and error messages end up in CI logs.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}
