package swoole_test

// The admin server's refusals: addresses it will not serve on, requests it will not answer.

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/goswoole/swoole"
)

// TestAdminServerRefusesOpenAddress: an admin server on an address that is not loopback,
// without user:secret@, makes Start fail with a message that says why; nothing is served.
func TestAdminServerRefusesOpenAddress(t *testing.T) {
	port := strconv.Itoa(adminFreePort(t))
	for _, addr := range []string{"0.0.0.0:" + port, "[::]:" + port, "192.0.2.1:" + port, "admin.example:" + port} {
		t.Run(addr, func(t *testing.T) {
			s := newEcho(t, map[string]any{"admin_server": addr})
			err := s.Start()
			var e *swoole.Error
			if !errors.As(err, &e) || e.Code != swoole.ErrInvalidParams ||
				!strings.Contains(e.Msg, "not a loopback address") || !strings.Contains(e.Msg, "user:secret@") {
				t.Fatalf("Start with admin_server %q: %v; want code %d saying the address is not loopback and to give user:secret@", addr, err, swoole.ErrInvalidParams)
			}
		})
	}
}

// TestAdminServerBadSetting: malformed admin_server values are refused by SetOptions.
func TestAdminServerBadSetting(t *testing.T) {
	for _, v := range []string{"ops@127.0.0.1:9502", "ops:@127.0.0.1:9502", ":s3cret@127.0.0.1:9502", "unix:/tmp/admin.sock", "127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1"} {
		t.Run(v, func(t *testing.T) {
			s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown()
			err = s.SetOptions(map[string]any{"admin_server": v})
			var e *swoole.Error
			if !errors.As(err, &e) || e.Code != swoole.ErrInvalidParams || !strings.Contains(e.Msg, "admin_server") {
				t.Fatalf("SetOptions(admin_server %q): %v; want code %d naming admin_server", v, err, swoole.ErrInvalidParams)
			}
			if strings.Contains(e.Msg, "s3cret") {
				t.Errorf("the error shows the secret: %v", e)
			}
		})
	}
}

// TestAdminServerPortTaken: Start fails when the admin port is taken.
func TestAdminServerPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newEcho(t, map[string]any{"admin_server": ln.Addr().String()})
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "admin_server") {
		t.Fatalf("Start with the admin port taken: %v; want an error naming admin_server", err)
	}
}

// TestAdminServerRequestRefusals: without a token, the admin server binds loopback for a
// port alone and answers only requests for a loopback host from no other site; bodies
// above the limit, unknown paths and floods are refused.
func TestAdminServerRequestRefusals(t *testing.T) {
	port := adminFreePort(t)
	s := newEcho(t, map[string]any{"admin_server": ":" + strconv.Itoa(port)})
	start(t, s)
	a := newAdminClient(t, port, "")

	var set map[string]any
	a.ok("GET", "/api/server_setting", nil, &set)
	if set["admin_server"] != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("admin_server \":%d\" serves on %v, want 127.0.0.1:%d", port, set["admin_server"], port)
	}
	if _, err := net.Dial("tcp", "[::1]:"+strconv.Itoa(port)); err == nil {
		t.Errorf("the admin server answers on [::1] too: it should listen on 127.0.0.1 only")
	}

	t.Run("host", func(t *testing.T) {
		status, body := a.do("GET", "/api/server_stats", nil, "", "Host", "rebound.example:"+strconv.Itoa(port))
		if status != http.StatusForbidden || !strings.Contains(string(body), "4003") {
			t.Fatalf("a request for host rebound.example: HTTP %d %s, want 403 code 4003", status, body)
		}
		if status, _ := a.do("GET", "/api/server_stats", nil, "", "Host", "localhost:"+strconv.Itoa(port)); status != http.StatusOK {
			t.Fatalf("a request for host localhost: HTTP %d, want 200", status)
		}
	})
	t.Run("origin", func(t *testing.T) {
		status, body := a.do("POST", "/api/server_shutdown", []byte("x=1"), "application/x-www-form-urlencoded", "Origin", "http://attacker.example")
		if status != http.StatusForbidden || !strings.Contains(string(body), "4003") {
			t.Fatalf("a POST from another site: HTTP %d %s, want 403 code 4003", status, body)
		}
		if status, _ := a.do("GET", "/api/server_stats", nil, "", "Origin", "http://127.0.0.1:8080"); status != http.StatusOK {
			t.Fatalf("a request from a loopback origin: HTTP %d, want 200", status)
		}
	})
	t.Run("body size", func(t *testing.T) {
		big := `{"session_id": 1, "pad": "` + strings.Repeat("x", 100<<10) + `"}`
		status, body := a.do("POST", "/api/get_client_info", []byte(big), "application/json")
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("a 100 KiB body: HTTP %d %.200s, want 413", status, body)
		}
	})
	t.Run("header size", func(t *testing.T) {
		status, _ := a.do("GET", "/api/server_stats", nil, "", "X-Pad", strings.Repeat("x", 64<<10))
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("64 KiB of headers: HTTP %d, want 431", status)
		}
	})
	t.Run("path", func(t *testing.T) {
		if status, _ := a.do("GET", "/etc/passwd", nil, ""); status != http.StatusNotFound {
			t.Fatalf("/etc/passwd: HTTP %d, want 404", status)
		}
		a.denied("GET", "/api", nil, "no command")
	})
	t.Run("rate", func(t *testing.T) {
		// The limit is 100 a second after a burst of 200: 1000 requests as fast as they go
		// (one kept-alive connection) meet it unless they take 8 s.
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		a := &adminClient{t: t, base: a.base, hc: &http.Client{Transport: tr, Timeout: mpTimeout}}
		for i := range 1000 {
			status, body := a.do("GET", "/api/getpid", nil, "")
			if status == http.StatusTooManyRequests {
				if !strings.Contains(string(body), "4029") {
					t.Fatalf("429 body %s, want code 4029", body)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("request %d: HTTP %d %s", i, status, body)
			}
		}
		t.Fatalf("1000 requests in a row were never limited")
	})
}
