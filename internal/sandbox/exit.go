package sandbox

import "syscall"

// Explain names the sandbox limit behind a command's wait status, for the
// result shown to the owner and the audit record; "" when there is none.
// A command that catches SIGXFSZ sees EFBIG instead and exits on its own
// terms, which cannot be told apart here.
func Explain(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGXFSZ:
		return "file size limit exceeded (sandbox fsize)"
	case ws.Signaled() && ws.Signal() == syscall.SIGXCPU:
		return "cpu time limit exceeded (sandbox cpu)"
	case ws.Exited() && ws.ExitStatus() == 128+int(syscall.SIGXFSZ):
		// The shell convention for a child killed by SIGXFSZ.
		return "exit status 153: a child was probably stopped by the file size limit (sandbox fsize)"
	case ws.Exited() && ws.ExitStatus() == ExitSetupFailed:
		return "sandbox setup failed; the command did not run (see its stderr)"
	}
	return ""
}

// FileSizeExceeded reports whether the command was stopped by its file size
// limit.
func FileSizeExceeded(ws syscall.WaitStatus) bool {
	return ws.Signaled() && ws.Signal() == syscall.SIGXFSZ
}
