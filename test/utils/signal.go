package utils

import (
	"fmt"
	"syscall"
)

// Signal sends sig to the running program (not to its process group): SIGKILL
// to crash it, SIGSTOP and SIGCONT to pause and resume it.
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s is not running", p.Name)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("sending %s to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Wait returns a channel closed when the program has ended (at once when it is not running).
func (p *Process) Wait() <-chan struct{} {
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}
