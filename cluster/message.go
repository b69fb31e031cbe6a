package cluster

import (
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/taskbackend"
)

// hdrWorker names the worker a message goes to.
const hdrWorker = "Goswoole-Worker"

// SendMessage is the server's SendMessage to a worker of any host: the OnPipeMessage of
// worker workerID of node runs with msg, on that worker's loop, with srcWorkerID -1 (a
// message from outside the host's processes, as the master's). node may be this node's own
// name. workerID is as the host's SendMessage takes it: 0 on a ModeBase server of one
// process; in ModeThread a worker, a task worker (after the workers) or a user process
// (after those). It returns once the host queued the message for that loop (not once
// OnPipeMessage ran); delivery is at most once: a host that dies before its loop runs the
// message loses it.
//
// Errors: ErrInvalidParams (505) for a malformed node name; ErrRefused (503) when the node
// is not running, or has no such worker or no OnPipeMessage handler (the host's own error,
// as its SendMessage gives it); ETIMEDOUT (110) when the node does not answer within
// RequestTimeout; ENOTCONN (107) before the start and after the shutdown.
func (n *Node) SendMessage(msg []byte, node string, workerID int) error {
	if !nameRE.MatchString(node) {
		return invalid("SendMessage: %q is not a node name", node)
	}
	nc, err := n.conn("SendMessage")
	if err != nil {
		return err
	}
	if node == n.cfg.Node {
		return taskbackend.Deliver(n.s, msg, workerID)
	}
	m := nats.NewMsg(n.pre + ".n." + node + "." + callMessage)
	m.Header.Set(hdrWorker, strconv.Itoa(workerID))
	m.Header.Set(hdrNode, n.cfg.Node)
	m.Data = msg
	r, err := nc.RequestMsg(m, n.cfg.RequestTimeout)
	if errors.Is(err, nats.ErrNoResponders) {
		return errorf(swoole.ErrRefused, "SendMessage: node %q is not running", node)
	}
	if err != nil {
		return natsErr("SendMessage to "+node, err)
	}
	return answerErr(r)
}

// serveMessage delivers a SendMessage from another node to a worker of this one.
func (n *Node) serveMessage(m *nats.Msg) {
	w, err := strconv.Atoi(m.Header.Get(hdrWorker))
	if err != nil {
		n.answer(m, nil, errorf(swoole.ErrRefused, "SendMessage: no worker id"))
		return
	}
	n.answer(m, nil, taskbackend.Deliver(n.s, m.Data, w))
}
