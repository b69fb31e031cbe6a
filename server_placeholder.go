package swoole

// Server is a placeholder so that the settings branch compiles on its own; the real Server
// lives in server.go. Delete this file on merge.
type Server struct{}
