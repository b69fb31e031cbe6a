//go:build !linux

package swoole

// goswoole runs on Linux only: its reactor is built on epoll, eventfd and memfd.
var _ = goswoole_requires_linux_epoll_eventfd_memfd
