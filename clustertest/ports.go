package clustertest

import (
	"errors"
	"fmt"
	"net"
)

// loopback is the only address the cluster binds or dials.
const loopback = "127.0.0.1"

// freePorts returns n distinct ports that were free on loopback. They are
// held until all are chosen, so they differ from each other; another
// process may still take one before it is used, which makes a start fail
// with "address already in use" and [Start] try again.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errPortTaken marks a start that failed because a port was taken.
var errPortTaken = errors.New("a port was taken by another process")
