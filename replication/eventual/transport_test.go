package eventual

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/replication/fault"
)

// mustTransport binds a transport on a free loopback port and shuts it down with the test.
func mustTransport(t *testing.T) *transport {
	t.Helper()
	mc := memberlist.DefaultLocalConfig()
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	nt, err := newNetTransport(mc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.Shutdown() })
	if mc.BindPort != nt.port() || mc.AdvertisePort != nt.port() || mc.BindPort == 0 {
		t.Fatalf("config ports %d/%d, bound %d", mc.BindPort, mc.AdvertisePort, nt.port())
	}
	return nt
}

// mustUDP opens a loopback UDP socket to send packets from.
func mustUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendPacket(t *testing.T, from *net.UDPConn, to *transport, b []byte) {
	t.Helper()
	if _, err := from.WriteTo(b, to.udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
}

func nextPacket(t *testing.T, nt *transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-nt.PacketCh():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5s")
		return nil
	}
}

// A received packet must cost its own length (memberlist's NetTransport allocated 64 KiB for
// each), keep its bytes when the next packet arrives, and keep memberlist's Packet contract:
// From is the sender, Timestamp is taken when the packet was read.
func TestTransportPacketsCostTheirLength(t *testing.T) {
	nt := mustTransport(t)
	sender := mustUDP(t)
	payloads := [][]byte{
		{1},
		bytes.Repeat([]byte("gossip"), 200),
		bytes.Repeat([]byte{0xab}, 60000), // far above memberlist's UDPBufferSize: must arrive whole
		[]byte("after the big one"),
	}
	var got []*memberlist.Packet
	for _, want := range payloads {
		before := time.Now()
		sendPacket(t, sender, nt, want)
		p := nextPacket(t, nt)
		if !bytes.Equal(p.Buf, want) {
			t.Fatalf("packet of %d bytes arrived as %d bytes, different", len(want), len(p.Buf))
		}
		if cap(p.Buf) != len(want) {
			t.Errorf("packet of %d bytes holds a buffer of %d", len(want), cap(p.Buf))
		}
		from, ok := p.From.(*net.UDPAddr)
		if !ok || from.String() != sender.LocalAddr().String() {
			t.Errorf("From = %v, want the sender %v", p.From, sender.LocalAddr())
		}
		if p.Timestamp.Before(before) || p.Timestamp.After(time.Now()) {
			t.Errorf("Timestamp %v is not between sending and handing over", p.Timestamp)
		}
		got = append(got, p)
	}
	for i, p := range got {
		if !bytes.Equal(p.Buf, payloads[i]) {
			t.Errorf("packet %d changed after later packets arrived", i)
		}
	}
}

// The stream side is NetTransport's: a dial reaches the other transport's StreamCh, and both
// directions carry bytes.
func TestTransportStreams(t *testing.T) {
	a, b := mustTransport(t), mustTransport(t)
	conn, err := a.DialAddressTimeout(memberlist.Address{Addr: b.tcp.Addr().String(), Name: "b"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var accepted net.Conn
	select {
	case accepted = <-b.StreamCh():
	case <-time.After(5 * time.Second):
		t.Fatal("no stream within 5s")
	}
	defer accepted.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(accepted, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// And packets the other way, through WriteToAddress.
	if _, err := b.WriteToAddress([]byte("pong"), memberlist.Address{Addr: a.udp.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	if p := nextPacket(t, a); string(p.Buf) != "pong" || p.From.String() != b.udp.LocalAddr().String() {
		t.Fatalf("got %q from %v", p.Buf, p.From)
	}
}

func TestTransportAdvertiseAddr(t *testing.T) {
	nt := mustTransport(t)
	for _, c := range []struct {
		name     string
		ip       string
		port     int
		wantIP   string
		wantPort int
	}{
		{"given", "10.1.2.3", 4000, "10.1.2.3", 4000},
		{"bound", "", 0, "127.0.0.1", nt.port()},
	} {
		t.Run(c.name, func(t *testing.T) {
			ip, port, err := nt.FinalAdvertiseAddr(c.ip, c.port)
			if err != nil || ip.String() != c.wantIP || port != c.wantPort {
				t.Fatalf("got %v:%d, %v; want %s:%d", ip, port, err, c.wantIP, c.wantPort)
			}
		})
	}
	if _, _, err := nt.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("an unparsable advertise address was accepted")
	}
}

// Shutdown returns even when nobody reads PacketCh (a memberlist that never started), and
// twice.
func TestTransportShutdownWithoutReader(t *testing.T) {
	nt := mustTransport(t)
	sender := mustUDP(t)
	sendPacket(t, sender, nt, []byte("nobody reads this"))
	done := make(chan struct{})
	go func() {
		nt.Shutdown()
		nt.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown blocked on a packet nobody takes")
	}
}

// Packets from a node the fault hook cuts off are discarded before memberlist sees them; healing
// lets them through again.
func TestFaultTransportDropsCutSenders(t *testing.T) {
	cut, other := mustUDP(t), mustUDP(t)
	ids := map[string]string{cut.LocalAddr().String(): "n2", other.LocalAddr().String(): "n3"}
	faults := fault.New(true)
	mc := memberlist.DefaultLocalConfig()
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	ft, err := newFaultTransport(mc, faults, func(addr string) string { return ids[addr] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ft.Shutdown() })
	nt := ft.transport
	if err := faults.Set(fault.Faults{DropIn: []string{"n2"}}); err != nil {
		t.Fatal(err)
	}
	// Loopback delivers in send order, and the transport reads one packet at a time: if the cut
	// packet were let through it would come first.
	sendPacket(t, cut, nt, []byte("from n2"))
	sendPacket(t, other, nt, []byte("from n3"))
	select {
	case p := <-ft.PacketCh():
		if string(p.Buf) != "from n3" {
			t.Fatalf("got %q while n2 is cut off", p.Buf)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5s")
	}
	if err := faults.Heal(); err != nil {
		t.Fatal(err)
	}
	sendPacket(t, cut, nt, []byte("from n2 again"))
	if p := nextPacket(t, nt); string(p.Buf) != "from n2 again" {
		t.Fatalf("got %q after healing", p.Buf)
	}
}

// BenchmarkTransportReceive measures what one received 400-byte packet costs the receiver, with
// the engine's transport and with memberlist's NetTransport (the reason the engine has its own).
func BenchmarkTransportReceive(b *testing.B) {
	for _, impl := range []string{"engine", "memberlist"} {
		b.Run(impl, func(b *testing.B) {
			var tr memberlist.Transport
			var addr net.Addr
			if impl == "engine" {
				mc := memberlist.DefaultLocalConfig()
				mc.BindAddr, mc.BindPort = "127.0.0.1", 0
				nt, err := newNetTransport(mc, nil)
				if err != nil {
					b.Fatal(err)
				}
				tr, addr = nt, nt.udp.LocalAddr()
			} else {
				nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}})
				if err != nil {
					b.Fatal(err)
				}
				tr, addr = nt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.GetAutoBindPort()}
			}
			defer tr.Shutdown()
			sender, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer sender.Close()
			payload := bytes.Repeat([]byte("w"), 400)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sender.WriteTo(payload, addr); err != nil {
					b.Fatal(err)
				}
				<-tr.PacketCh()
			}
		})
	}
}
