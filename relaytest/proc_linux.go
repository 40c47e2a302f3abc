package relaytest

import (
	"os"
	"syscall"
)

// sysProcAttr puts the relay in a process group of its own, for killGroup,
// and asks the kernel to kill it if the test binary dies first (best
// effort: a relay that switches user clears that request).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills p and the helpers it forked (danted forks several).
func killGroup(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGKILL) }
