// Command lengthproto is a server speaking a length-prefixed protocol, and its client.
//
// Every message, both ways, is a frame: a 4-byte big-endian length of the body, then the
// body. The server lets goswoole split the input into frames (open_length_check with
// package_length_type "N" and package_body_offset 4), so OnReceive gets exactly one whole
// frame per call however the bytes arrived, and answers each with the body upper-cased.
// A frame announcing more than package_max_length closes that connection at once.
//
// Run the server, then the client in another terminal:
//
//	go run ./examples/lengthproto -addr 127.0.0.1:9501
//	go run ./examples/lengthproto -client -addr 127.0.0.1:9501 hello length-prefixed world
//
// The client sends all its messages in one write and prints each reply.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"

	"github.com/goswoole/swoole"
)

// maxFrame is the largest frame the server accepts (package_max_length), header included.
const maxFrame = 1 << 20

// frame encodes body as one frame.
func frame(body []byte) []byte {
	f := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(f, uint32(len(body)))
	copy(f[4:], body)
	return f
}

// newServer creates the server on addr (port 0 picks a free port; s.Ports()[0].Port() tells
// which). Start it with s.Start().
func newServer(addr string, settings swoole.Settings) (*swoole.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bad port %q: %w", portStr, err)
	}
	s, err := swoole.NewServer(host, port, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		return nil, err
	}
	settings.OpenLengthCheck = true
	settings.PackageLengthType = "N" // u32 big-endian
	settings.PackageLengthOffset = 0 // at the start of the frame
	settings.PackageBodyOffset = 4   // the length counts the body only: frame = 4 + length
	settings.PackageMaxLength = maxFrame
	if err := s.Set(settings); err != nil {
		return nil, err
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		// data is one whole frame, header included; it is valid only during this call.
		reply := frame(bytes.ToUpper(data[4:]))
		if err := s.Send(fd, reply); err != nil {
			log.Printf("send to %d: %v", fd, err)
		}
	})
	return s, nil
}

// runClient sends msgs to the server at addr in one write and writes each reply, one per
// line, to out.
func runClient(addr string, msgs []string, out io.Writer) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var all []byte
	for _, m := range msgs {
		all = append(all, frame([]byte(m))...)
	}
	if _, err := c.Write(all); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	hdr := make([]byte, 4)
	for range msgs {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return fmt.Errorf("read a reply header: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr)
		if n > maxFrame-4 {
			return errors.New("the server announced a reply larger than a frame may be")
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("read a reply body: %w", err)
		}
		fmt.Fprintf(out, "%s\n", body)
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9501", "address to listen on (server) or connect to (client)")
	client := flag.Bool("client", false, "run the client: send the arguments as messages and print the replies")
	flag.Parse()
	if *client {
		msgs := flag.Args()
		if len(msgs) == 0 {
			msgs = []string{"hello", "length-prefixed", "world"}
		}
		if err := runClient(*addr, msgs, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	s, err := newServer(*addr, swoole.Settings{WorkerNum: 1})
	if err != nil {
		log.Fatal(err)
	}
	s.OnStart(func(s *swoole.Server) {
		log.Printf("lengthproto: listening on %s port %d (SIGTERM stops it gracefully)", s.Ports()[0].Host(), s.Ports()[0].Port())
	})
	if err := s.Start(); err != nil {
		log.Fatal(err)
	}
}
