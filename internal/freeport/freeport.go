// Package freeport finds loopback ports for test clusters whose nodes are stopped and started
// again on the same addresses.
//
// A port the kernel hands out for "127.0.0.1:0" comes from its ephemeral range, the same range it
// takes the local ports of outgoing connections from. Once a node is stopped, any connection
// opened on the machine meanwhile may take its port, and the restarted node then fails with
// "address already in use". Ports below the ephemeral range are only ever taken by an explicit
// bind, so a stopped node gets its port back.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port this package hands out; ports under it are left to well-known services.
const lowest = 10000

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process has handed out: never twice
)

// Loopback returns a "127.0.0.1:PORT" address whose TCP and UDP ports are free right now (a
// gossip node binds both), below the kernel's ephemeral port range when there is room there,
// and not handed out before by this process.
func Loopback() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	top := ephemeralLow() - 1
	if top-lowest < 1000 {
		return fromKernel()
	}
	span := top - lowest + 1
	start := rand.IntN(span)
	for i := range 2000 {
		port := lowest + (start+i)%span
		if handed[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if bothFree(addr) {
			handed[port] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free TCP+UDP port on 127.0.0.1 in %d-%d", lowest, top)
}

// fromKernel asks the kernel for a port (in the ephemeral range) when there is no room below it.
func fromKernel() (string, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		if !handed[port] && bothFree(addr) {
			handed[port] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free TCP+UDP port on 127.0.0.1")
}

func bothFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default when it cannot
// be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
