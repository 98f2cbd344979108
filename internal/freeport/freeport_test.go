package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackIsFreeBelowEphemeralRangeAndNeverRepeats(t *testing.T) {
	low := ephemeralLow()
	seen := map[string]bool{}
	for range 50 {
		addr, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if low-1-lowest >= 1000 && (port < lowest || port >= low) {
			t.Fatalf("port %d outside %d-%d (ephemeral range starts at %d)", port, lowest, low-1, low)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("handed-out %s is not free: %v", addr, err)
		}
		ln.Close()
	}
}

func TestBothFreeSeesTCPAndUDPHolders(t *testing.T) {
	addr, err := Loopback()
	if err != nil {
		t.Fatal(err)
	}
	if !bothFree(addr) {
		t.Fatalf("%s reported busy while nothing holds it", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if bothFree(addr) {
		t.Errorf("%s reported free while a TCP listener holds it", addr)
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if bothFree(addr) {
		t.Errorf("%s reported free while a UDP socket holds it", addr)
	}
	pc.Close()
}
