package main

// reload, stop and stats through a server's admin server (the admin_server setting), for a
// server started without a pid file.

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goswoole/swoole"
)

// adminTarget is a parsed --admin: where to send requests and the token to send.
type adminTarget struct {
	base  string // http://host:port
	token string // hex sha1(user+secret), "" for none
}

// parseAdminFlag reads "[user:secret@]host:port" (an empty host is 127.0.0.1), as the
// admin_server setting.
func parseAdminFlag(v string) (adminTarget, error) {
	var t adminTarget
	hp := v
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		user, secret, ok := strings.Cut(v[:i], ":")
		if !ok || user == "" || secret == "" {
			return t, adminError("--admin: the credentials before @ must be user:secret")
		}
		sum := sha1.Sum([]byte(user + secret))
		t.token = hex.EncodeToString(sum[:])
		hp = v[i+1:]
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		if _, e := strconv.Atoi(hp); e != nil {
			return t, adminError(fmt.Sprintf("--admin %q: give [user:secret@]host:port", hp))
		}
		host, port = "", hp
	}
	if host == "" {
		host = "127.0.0.1"
	}
	t.base = "http://" + net.JoinHostPort(host, port)
	return t, nil
}

// call runs a command of the admin API and returns the data of its {"code": 0, "data": ...}
// reply.
func (t adminTarget) call(method, cmd string, form url.Values) (json.RawMessage, error) {
	var body io.Reader
	path := t.base + "/api/" + cmd
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		path += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		return nil, adminError(err.Error())
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if t.token != "" {
		req.Header.Set("X-Admin-Server-Access-Token", t.token)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, adminError(fmt.Sprintf("the server is not running: nothing answers at %s (is it the server's admin_server?)", t.base))
		}
		return nil, adminError(fmt.Sprintf("cannot reach the admin server at %s: %v", t.base, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, adminError(fmt.Sprintf("admin server %s: %v", t.base, err))
	}
	var r struct {
		Code int             `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, adminError(fmt.Sprintf("admin server %s: HTTP %d, not a JSON reply: %.200s", t.base, resp.StatusCode, b))
	}
	if r.Code != 0 {
		var msg string
		if json.Unmarshal(r.Data, &msg) != nil {
			msg = string(r.Data)
		}
		if r.Code == 4003 && resp.StatusCode == http.StatusForbidden && strings.Contains(msg, "token") {
			msg += " (give --admin user:secret@host:port as in the server's admin_server)"
		}
		return nil, adminError(fmt.Sprintf("the server says (code %d): %s", r.Code, msg))
	}
	return r.Data, nil
}

func statsOverHTTP(addr string, asJSON bool, stdout io.Writer) error {
	t, err := parseAdminFlag(addr)
	if err != nil {
		return err
	}
	data, err := t.call(http.MethodGet, "get_process_list", nil)
	if err != nil {
		return err
	}
	if asJSON {
		_, err = fmt.Fprintf(stdout, "%s\n", data)
		return err
	}
	var st swoole.AdminStats
	if err := json.Unmarshal(data, &st); err != nil {
		return adminError(fmt.Sprintf("the admin server's answer is not stats: %v", err))
	}
	writeStats(stdout, st)
	return nil
}

func reloadOverHTTP(addr string, onlyTask bool, stdout io.Writer) error {
	t, err := parseAdminFlag(addr)
	if err != nil {
		return err
	}
	form, what := url.Values{}, "workers"
	if onlyTask {
		form.Set("only_task", "1")
		what = "task workers"
	}
	if _, err := t.call(http.MethodPost, "server_reload", form); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "goswoole: reload of the %s requested (admin server %s)\n", what, t.base)
	return nil
}

// stopOverHTTP asks for the shutdown and waits until the admin server no longer answers
// (it closes when the server has stopped).
func stopOverHTTP(addr string, timeout time.Duration, stdout io.Writer) error {
	t, err := parseAdminFlag(addr)
	if err != nil {
		return err
	}
	var st swoole.AdminStats
	if data, err := t.call(http.MethodGet, "get_process_list", nil); err == nil {
		_ = json.Unmarshal(data, &st)
	}
	if _, err := t.call(http.MethodPost, "server_shutdown", nil); err != nil {
		return err
	}
	hostPort := strings.TrimPrefix(t.base, "http://")
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", hostPort, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			return adminError(fmt.Sprintf("the admin server %s still answers %v after server_shutdown (the server may be waiting for max_wait_time; try again)", t.base, timeout))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The admin server closes before the last processes have exited: wait for them too.
	pid := st.ManagerPID
	if pid == 0 {
		pid = st.MasterPID
	}
	for pid > 0 && alive(pid) {
		if time.Now().After(deadline) {
			return adminError(fmt.Sprintf("pid %d still runs %v after server_shutdown", pid, timeout))
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "goswoole: server stopped (admin server %s)\n", t.base)
	return nil
}
