package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goswoole/swoole"
)

// Session addresses a connection anywhere in the cluster: the node that holds it and the
// session id the node's server gave it. Its text form is "node/fd" ("web-2/17").
type Session struct {
	Node string // the node holding the connection
	FD   int64  // the session id on that node
}

// String is the session's text form, "node/fd".
func (s Session) String() string { return s.Node + "/" + strconv.FormatInt(s.FD, 10) }

// ParseSession reads a session's text form ("node/fd"); a malformed one is an error with
// code ErrSessionInvalidID (1006).
func ParseSession(text string) (Session, error) {
	node, fd, ok := strings.Cut(text, "/")
	id, err := strconv.ParseInt(fd, 10, 64)
	if !ok || err != nil || id <= 0 || !nameRE.MatchString(node) {
		return Session{}, errorf(swoole.ErrSessionInvalidID, "%q is not a session: give node/fd", text)
	}
	return Session{Node: node, FD: id}, nil
}

// Session is the cluster-wide address of this host's connection fd.
func (n *Node) Session(fd int64) Session { return Session{Node: n.cfg.Node, FD: fd} }

// Calls one node answers for its connections (subject goswoole.<cluster>.n.<node>.<call>).
const (
	callSend  = "send"
	callClose = "close"
	callExist = "exist"
	callInfo  = "info"
	callPing  = "ping"
	// callMessage is SendMessage to a worker of the node (message.go).
	callMessage = "msg"
)

// Send sends data to the session's connection, on this host or another. The other host's
// errors come back with their codes (1005: no such session, 1008: its buffer is full, ...);
// a host that is not running answers 1005; no answer within RequestTimeout is ETIMEDOUT
// (a stopped host that resumes still sends it: see the package notes, "Faults").
func (n *Node) Send(s Session, data []byte) error {
	if s.Node == n.cfg.Node {
		return n.s.Send(s.FD, data)
	}
	_, err := n.call("Send", s, callSend, data)
	return err
}

// Close closes the session's connection, on this host or another (see Send for errors: a
// stopped host that resumes closes it after the caller had ETIMEDOUT).
func (n *Node) Close(s Session) error {
	if s.Node == n.cfg.Node {
		return n.s.Close(s.FD, false)
	}
	_, err := n.call("Close", s, callClose, nil)
	return err
}

// Exist reports whether the session's connection is open. A host that does not answer
// (gone, or unreachable) counts as no.
func (n *Node) Exist(s Session) bool {
	if s.Node == n.cfg.Node {
		return n.s.Exist(s.FD)
	}
	b, err := n.call("Exist", s, callExist, nil)
	return err == nil && string(b) == "1"
}

// ClientInfo is GetClientInfo of the session's connection, on this host or another.
func (n *Node) ClientInfo(s Session) (*swoole.ClientInfo, error) {
	if s.Node == n.cfg.Node {
		return n.s.GetClientInfo(s.FD, -1, false)
	}
	b, err := n.call("ClientInfo", s, callInfo, nil)
	if err != nil {
		return nil, err
	}
	var ci swoole.ClientInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return nil, errorf(swoole.ErrSystemCallFail, "ClientInfo: a malformed answer from %s: %v", s.Node, err)
	}
	return &ci, nil
}

// call asks the session's node to run call on it.
func (n *Node) call(name string, s Session, call string, data []byte) ([]byte, error) {
	if !nameRE.MatchString(s.Node) || s.FD <= 0 {
		return nil, errorf(swoole.ErrSessionInvalidID, "%s: %q is not a session", name, s.String())
	}
	nc, err := n.conn(name)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(n.pre + ".n." + s.Node + "." + call)
	m.Header.Set(hdrFD, strconv.FormatInt(s.FD, 10))
	m.Data = data
	r, err := nc.RequestMsg(m, n.cfg.RequestTimeout)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, errorf(swoole.ErrSessionNotExist, "%s: session %s: node %q is not running", name, s, s.Node)
	}
	if err != nil {
		return nil, natsErr(name+" "+s.String(), err)
	}
	return r.Data, answerErr(r)
}

// answerErr is the error an answer carries, or nil.
func answerErr(r *nats.Msg) error {
	code := r.Header.Get(hdrCode)
	if code == "" || code == "0" {
		return nil
	}
	c, _ := strconv.Atoi(code)
	return &swoole.Error{Code: c, Msg: r.Header.Get(hdrMsg)}
}

// answer replies to a request with data or err.
func (n *Node) answer(m *nats.Msg, data []byte, err error) {
	if m.Reply == "" {
		return
	}
	r := nats.NewMsg(m.Reply)
	r.Data = data
	r.Header.Set(hdrNode, n.cfg.Node)
	if err != nil {
		code := swoole.ErrSystemCallFail
		var se *swoole.Error
		if errors.As(err, &se) {
			code = se.Code
		}
		r.Header.Set(hdrCode, strconv.Itoa(code))
		r.Header.Set(hdrMsg, err.Error())
	}
	_ = m.RespondMsg(r)
}

// serveCall answers a call on one of this host's connections.
func (n *Node) serveCall(m *nats.Msg) {
	call := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if call == callPing {
		n.answer(m, []byte(n.cfg.Node), nil)
		return
	}
	if call == callMessage {
		n.serveMessage(m) // message.go
		return
	}
	fd, err := strconv.ParseInt(m.Header.Get(hdrFD), 10, 64)
	if err != nil || fd <= 0 {
		n.answer(m, nil, errorf(swoole.ErrSessionInvalidID, "%s: no session id", call))
		return
	}
	switch call {
	case callSend:
		n.answer(m, nil, n.s.Send(fd, m.Data))
	case callClose:
		n.answer(m, nil, n.s.Close(fd, false))
	case callExist:
		b := []byte("0")
		if n.s.Exist(fd) {
			b = []byte("1")
		}
		n.answer(m, b, nil)
	case callInfo:
		ci, err := n.s.GetClientInfo(fd, -1, false)
		if err != nil {
			n.answer(m, nil, err)
			return
		}
		b, _ := json.Marshal(ci)
		n.answer(m, b, nil)
	default:
		n.answer(m, nil, errorf(swoole.ErrOperationNotSupport, "unknown call %q", call))
	}
}

// Calls every node answers (subject goswoole.<cluster>.all.<call>).
const (
	allBroadcast = "broadcast"
	allStats     = "stats"
)

// serveAll answers a call to every node.
func (n *Node) serveAll(m *nats.Msg) {
	if m.Header.Get(hdrNode) == n.cfg.Node {
		return // the sender serves itself
	}
	switch m.Subject[strings.LastIndexByte(m.Subject, '.')+1:] {
	case allBroadcast:
		n.answer(m, []byte(strconv.Itoa(n.broadcastHere(m.Data))), nil)
	case allStats:
		b, _ := json.Marshal(n.s.Stats())
		n.answer(m, b, nil)
	}
}

// broadcastHere sends data to every connection of this host; it returns how many took it.
func (n *Node) broadcastHere(data []byte) int {
	sent := 0
	for fd := range n.s.Connections() {
		if n.s.Send(fd, data) == nil {
			sent++
		}
	}
	return sent
}

// gather publishes a call to every node and collects the answers of the other nodes, until
// every node heard of has answered or RequestTimeout passed. It returns the answers by node
// and the nodes that did not answer.
func (n *Node) gather(name, call string, data []byte) (map[string]*nats.Msg, []string, error) {
	nc, err := n.conn(name)
	if err != nil {
		return nil, nil, err
	}
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, nil, natsErr(name, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	want := map[string]bool{}
	for _, p := range n.Peers() {
		want[p] = true
	}
	m := nats.NewMsg(n.pre + ".all." + call)
	m.Reply = inbox
	m.Header.Set(hdrNode, n.cfg.Node)
	m.Data = data
	if err := nc.PublishMsg(m); err != nil {
		return nil, nil, natsErr(name, err)
	}
	got := map[string]*nats.Msg{}
	t := time.NewTimer(n.cfg.RequestTimeout)
	defer t.Stop()
	for len(want) > 0 {
		select {
		case r := <-ch:
			from := r.Header.Get(hdrNode)
			if from == "" || from == n.cfg.Node {
				continue
			}
			got[from] = r
			delete(want, from)
		case <-t.C:
			var missing []string
			for p := range want {
				missing = append(missing, p)
			}
			return got, missing, nil
		case <-n.stop:
			return got, nil, errorf(int(syscall.ENOTCONN), "%s: the node left the cluster", name)
		}
	}
	return got, nil, nil
}

// Broadcast sends data to every connection of every node, this one included, and returns
// how many connections took it. Nodes that did not answer within RequestTimeout (gone since
// their last heartbeat) are named in an error with code ETIMEDOUT, beside the count of the
// others; a node that joined after the call is not reached.
func (n *Node) Broadcast(data []byte) (int, error) {
	if len(data) == 0 {
		return 0, errorf(swoole.ErrNoPayload, "Broadcast: no data")
	}
	got, missing, err := n.gather("Broadcast", allBroadcast, data)
	if err != nil {
		return 0, err
	}
	sent := n.broadcastHere(data)
	for _, r := range got {
		c, _ := strconv.Atoi(string(r.Data))
		sent += c
	}
	if len(missing) > 0 {
		return sent, errorf(int(syscall.ETIMEDOUT), "Broadcast: nodes %v did not answer within %v", missing, n.cfg.RequestTimeout)
	}
	return sent, nil
}

// Stats returns the Stats of every node by name, this one's included. Nodes that did not
// answer within RequestTimeout are named in an error with code ETIMEDOUT, beside the
// others' figures.
func (n *Node) Stats() (map[string]swoole.Stats, error) {
	got, missing, err := n.gather("Stats", allStats, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]swoole.Stats{n.cfg.Node: n.s.Stats()}
	for from, r := range got {
		var st swoole.Stats
		if json.Unmarshal(r.Data, &st) == nil {
			out[from] = st
		}
	}
	if len(missing) > 0 {
		return out, errorf(int(syscall.ETIMEDOUT), "Stats: nodes %v did not answer within %v", missing, n.cfg.RequestTimeout)
	}
	return out, nil
}

// Bind is the server's Bind(fd, uid) plus an entry uid -> session in the cluster's
// key-value bucket, so that SendToUID on any node finds the connection. The entry goes when
// the connection closes (or, failing that, when SendToUID finds the session gone). A later
// Bind of the same uid, on any node, replaces the entry. When the entry cannot be written
// (ETIMEDOUT, ENOTCONN) the server's Bind stays done, and Bind may be called again with the
// same uid to write the entry.
func (n *Node) Bind(fd int64, uid uint32) error {
	if err := n.s.Bind(fd, uid); err != nil {
		// Bound to this uid already (an earlier Bind whose entry failed): write the entry.
		ci, cerr := n.s.GetClientInfo(fd, -1, true)
		if cerr != nil || ci == nil || ci.UID != uid {
			return err
		}
	}
	deadline := time.Now().Add(n.cfg.PublishTimeout)
	if err := n.waitReady("Bind", deadline); err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var rev uint64
	err := retry(ctx, n.cfg.RequestTimeout, func(ctx context.Context) (err error) {
		rev, err = n.kv.Put(ctx, uidKey(uid), []byte(n.Session(fd).String()))
		return err
	})
	if err != nil {
		return natsErr("Bind", err)
	}
	n.mu.Lock()
	n.binds[fd] = binding{uid: uid, rev: rev}
	n.mu.Unlock()
	if !n.s.Exist(fd) { // closed meanwhile: its OnClose found no binding
		n.closed(fd)
	}
	return nil
}

func uidKey(uid uint32) string { return strconv.FormatUint(uint64(uid), 10) }

// SessionOf returns the session bound to uid anywhere in the cluster; none is an error
// with code ErrSessionNotExist (1005).
func (n *Node) SessionOf(uid uint32) (Session, uint64, error) {
	deadline := time.Now().Add(n.cfg.PublishTimeout)
	if err := n.waitReady("SessionOf", deadline); err != nil {
		return Session{}, 0, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var value []byte
	var rev uint64
	err := retry(ctx, n.cfg.RequestTimeout, func(ctx context.Context) (err error) {
		value, rev, err = n.lookup(ctx, uidKey(uid))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Session{}, 0, errorf(swoole.ErrSessionNotExist, "uid %d is bound to no connection", uid)
	}
	if err != nil {
		return Session{}, 0, natsErr("SessionOf", err)
	}
	s, err := ParseSession(string(value))
	return s, rev, err
}

// lookup reads a key of the uid bucket from the stream's leader. The bucket's own Get reads
// any replica (direct get), which may not have a write yet that another node's Bind just
// made; the leader has every write that was acknowledged.
func (n *Node) lookup(ctx context.Context, key string) ([]byte, uint64, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + n.bucket() + "." + key})
	r, err := n.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+n.bucket(), req)
	if err != nil {
		return nil, 0, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(r.Data, &resp); err != nil {
		return nil, 0, err
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, 0, jetstream.ErrKeyNotFound
		}
		return nil, 0, resp.Error
	}
	if resp.Message == nil {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if h := string(resp.Message.Hdrs); strings.Contains(h, "KV-Operation: DEL") || strings.Contains(h, "KV-Operation: PURGE") {
		return nil, 0, jetstream.ErrKeyNotFound // removed
	}
	return resp.Message.Data, resp.Message.Seq, nil
}

// SendToUID sends data to the connection bound to uid (Bind), wherever it is. No such
// connection is an error with code ErrSessionNotExist (1005); a stale entry (its connection
// gone without its OnClose reaching the bucket) is removed then.
func (n *Node) SendToUID(uid uint32, data []byte) error {
	s, rev, err := n.SessionOf(uid)
	if err != nil {
		return err
	}
	err = n.Send(s, data)
	var se *swoole.Error
	if errors.As(err, &se) && se.Code == swoole.ErrSessionNotExist {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		_ = retry(ctx, n.cfg.RequestTimeout, func(ctx context.Context) error {
			return n.kv.Delete(ctx, uidKey(uid), jetstream.LastRevision(rev))
		})
	}
	return err
}

// closed runs in OnClose: the connection's uid entry is queued for removal.
func (n *Node) closed(fd int64) {
	n.mu.Lock()
	b, ok := n.binds[fd]
	delete(n.binds, fd)
	n.mu.Unlock()
	if !ok {
		return
	}
	select {
	case n.unbinds <- b:
	default:
		n.log.Warn("swoole: cluster: too many uid entries waiting for removal; SendToUID removes this one when it finds it stale", "uid", b.uid)
	}
}

// unbinder removes the uid entries of closed connections, off the event loop. At shutdown
// it removes what is queued (each within RequestTimeout) before it ends.
func (n *Node) unbinder() {
	defer n.wg.Done()
	del := func(ctx context.Context, b binding) {
		select {
		case <-n.ready:
		default:
			return
		}
		_ = retry(ctx, n.cfg.RequestTimeout, func(ctx context.Context) error {
			return n.kv.Delete(ctx, uidKey(b.uid), jetstream.LastRevision(b.rev))
		})
	}
	for {
		select {
		case b := <-n.unbinds:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			del(ctx, b)
			cancel()
		case <-n.stop:
			// What is queued goes within one RequestTimeout in all.
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			defer cancel()
			for {
				select {
				case b := <-n.unbinds:
					del(ctx, b)
				default:
					return
				}
			}
		}
	}
}

// retry runs op until it succeeds, fails for good, or ctx ends: a replicated bucket answers
// nothing for the seconds its leader is elected again after a NATS node is lost. Each try
// gets at most per: a request that reached a leader which then stopped (a frozen process,
// its TCP connections open) is never answered, and the next try finds the new leader.
func retry(ctx context.Context, per time.Duration, op func(ctx context.Context) error) error {
	for {
		tctx, cancel := context.WithTimeout(ctx, per)
		err := op(tctx)
		cancel()
		if err == nil || final(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// final reports whether a key-value error is an answer rather than a failure to get one.
func final(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return true
		}
	}
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		errors.Is(err, jetstream.ErrInvalidKey) || errors.Is(err, nats.ErrConnectionClosed)
}
