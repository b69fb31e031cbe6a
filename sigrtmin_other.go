//go:build !(linux && amd64)

package swoole

// rtminInstall reports that SIGRTMIN cannot be caught here (sigrtmin_linux_amd64.go): on
// these platforms log_file is reopened on SIGWINCH only.
func rtminInstall(fd int) bool { return false }

// rtminIgnore does nothing here: on Linux but amd64 SIGRTMIN still terminates the process.
func rtminIgnore() {}
