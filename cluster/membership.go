package cluster

import (
	"time"

	"github.com/nats-io/nats.go"
)

// heartbeats tells the others this node is alive, and forgets the nodes gone quiet.
func (n *Node) heartbeats() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	n.beat()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.beat()
			n.sweep()
			n.mu.Lock()
			for p, seen := range n.peers {
				if time.Since(seen) > 3*n.cfg.Heartbeat {
					delete(n.peers, p)
				}
			}
			n.mu.Unlock()
		}
	}
}

func (n *Node) beat() {
	m := nats.NewMsg(n.pre + ".hb")
	m.Header.Set(hdrNode, n.cfg.Node)
	_ = n.nc.PublishMsg(m)
}

// heard notes a heartbeat; a node heard of the first time gets this node's at once, so
// both know each other within a round trip.
func (n *Node) heard(m *nats.Msg) {
	name := m.Header.Get(hdrNode)
	if name == "" || name == n.cfg.Node {
		return
	}
	n.mu.Lock()
	_, known := n.peers[name]
	if m.Header.Get(hdrBye) != "" {
		delete(n.peers, name)
		n.mu.Unlock()
		return
	}
	n.peers[name] = time.Now()
	n.mu.Unlock()
	if !known {
		n.beat()
	}
}

// Peers returns the names of the other nodes heard of lately (heartbeats).
func (n *Node) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.peers))
	for p := range n.peers {
		out = append(out, p)
	}
	return out
}
