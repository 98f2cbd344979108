package eventual

import (
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

const (
	// maxPacket is the largest UDP datagram; the one read buffer is this big.
	maxPacket = 65536
	// udpRecvBuffer is the socket receive buffer asked for (halved until the kernel accepts).
	udpRecvBuffer = 2 << 20
	// bindAttempts bounds the retries of a port-0 bind: TCP picks the port, UDP may find it taken.
	bindAttempts = 10
)

var udpReceivedMetric = []string{"memberlist", "udp", "received"}

// transport is memberlist's network transport as memberlist.NetTransport (v0.7.0) implements it
// (UDP packets and TCP streams on one port; streams are untouched), except for received
// packets. NetTransport reads every datagram into a fresh 64 KiB buffer and hands memberlist a
// slice of it, so each packet, typically a few hundred bytes, costs 64 KiB of allocation and of
// zeroing: at one packet per write per peer that was half of all bytes allocated in an eventual
// put. transport reads into one buffer it keeps and hands memberlist a copy of the bytes read.
//
// The copy is needed: memberlist may keep parts of a packet after handling it (a NotifyMsg
// receiver must copy, but memberlist's own decoders are not documented not to alias).
type transport struct {
	bindIP net.IP // as configured: the wildcard makes FinalAdvertiseAddr pick a private IP
	tcp    *net.TCPListener
	udp    *net.UDPConn
	logger *log.Logger

	packets chan *memberlist.Packet
	streams chan net.Conn
	// dropFrom discards packets from the senders it names (the fault hook); nil keeps every
	// packet.
	dropFrom func(from net.Addr) bool

	closed   atomic.Bool
	done     chan struct{} // closed by Shutdown: a hand-off nobody takes is abandoned
	shutdown sync.Once
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

// newNetTransport binds mc.BindAddr:mc.BindPort (TCP and UDP), as memberlist.Create would, and
// starts listening; dropFrom may be nil (see transport). A port-0 bind retries, since TCP and
// UDP must get the same port; it then sets mc.BindPort and mc.AdvertisePort to the port bound.
func newNetTransport(mc *memberlist.Config, dropFrom func(from net.Addr) bool) (*transport, error) {
	logger := mc.Logger
	if logger == nil {
		logger = log.New(nopWriter{}, "", 0)
	}
	ip := net.ParseIP(mc.BindAddr)
	if ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP", mc.BindAddr)
	}
	var err error
	for attempt := 0; attempt < bindAttempts; attempt++ {
		var t *transport
		if t, err = listen(ip, mc.BindPort, logger); err == nil {
			t.dropFrom = dropFrom
			if mc.BindPort == 0 {
				mc.BindPort = t.port()
				mc.AdvertisePort = mc.BindPort
			}
			t.wg.Add(2)
			go t.acceptStreams()
			go t.readPackets()
			return t, nil
		}
		if mc.BindPort != 0 || !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, fmt.Errorf("could not set up network transport: %w", err)
}

var errPortTaken = errors.New("the UDP port is taken")

func listen(ip net.IP, port int, logger *log.Logger) (*transport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("TCP listener on %s port %d: %w", ip, port, err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		if strings.Contains(err.Error(), "address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, fmt.Errorf("UDP listener on %s port %d: %w", ip, port, err)
	}
	for size := udpRecvBuffer; ; size /= 2 {
		if err = udp.SetReadBuffer(size); err == nil {
			break
		}
		if size <= 1 {
			tcp.Close()
			udp.Close()
			return nil, fmt.Errorf("resizing the UDP receive buffer: %w", err)
		}
	}
	return &transport{
		bindIP:  ip,
		tcp:     tcp,
		udp:     udp,
		logger:  logger,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is NetTransport's: the given address, else a private IP of this host for
// a wildcard bind, else the bound IP; the port given, or the bound one.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		addr := net.ParseIP(ip)
		if addr == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", ip)
		}
		if ip4 := addr.To4(); ip4 != nil {
			addr = ip4
		}
		return addr, port, nil
	}
	if t.bindIP.Equal(net.IPv4zero) {
		private, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("failed to get interface addresses: %w", err)
		}
		if private == "" {
			return nil, 0, errors.New("no private IP address found, and explicit IP not provided")
		}
		addr := net.ParseIP(private)
		if addr == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", private)
		}
		return addr, t.port(), nil
	}
	return t.tcp.Addr().(*net.TCPAddr).IP, t.port(), nil
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one packet; the time is taken after the write returns, as NetTransport
// does (probes measure round trips from it).
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	to, err := net.ResolveUDPAddr("udp", a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, to)
	return time.Now(), err
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", a.Addr)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both listeners and waits for their goroutines; a packet or stream that
// memberlist no longer takes is dropped (memberlist calls Shutdown before it stops reading, but
// a memberlist that failed to start never reads). It is idempotent.
func (t *transport) Shutdown() error {
	t.shutdown.Do(func() {
		t.closed.Store(true)
		close(t.done)
		t.tcp.Close()
		t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

// acceptStreams hands accepted TCP connections to memberlist, backing off on accept errors as
// NetTransport does (5 ms doubling to 1 s).
func (t *transport) acceptStreams() {
	defer t.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closed.Load() {
				return
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			t.logger.Printf("[ERR] memberlist: Error accepting TCP connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case t.streams <- conn:
		case <-t.done:
			conn.Close()
			return
		}
	}
}

// readPackets hands received UDP packets to memberlist, each in a buffer of its own length,
// stamped right after the read returned (probes measure round trips from it).
func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		received := time.Now()
		if err != nil {
			if t.closed.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: Error reading UDP packet: %v", err)
			continue
		}
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) %s", n, memberlist.LogAddress(from))
			continue
		}
		if t.dropFrom != nil && t.dropFrom(from) {
			continue
		}
		metrics.IncrCounter(udpReceivedMetric, float32(n))
		p := &memberlist.Packet{Buf: append(make([]byte, 0, n), buf[:n]...), From: from, Timestamp: received}
		select {
		case t.packets <- p:
		case <-t.done:
			return
		}
	}
}
