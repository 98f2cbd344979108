package eventual

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Wire formats. Every encoding starts with wireFormat; bump it (and keep decoding the old one)
// when a layout changes. A message in an unknown format is dropped and counted, never applied:
// anti-entropy repairs whatever it carried once both sides speak the same format.
//
// Strings are a uvarint length then the bytes; versions are replication.AppendVersion's form.
//
//	gossip message   format, type, string sender, then by type:
//	  msgWrite       replication.EncodeWrites of one write
//	  msgNotice      string key, version, string origin (the HTTP address that serves the value)
//	  msgWrites      replication.EncodeWrites of any number of writes (an eager push: one packet
//	                 per peer for a group of local writes; a node that predates it drops the
//	                 message as unknown, and the queued broadcasts and anti-entropy still carry
//	                 the writes)
//	  msgPush        uvarint n, n × string recipient, then as msgWrites: an eager push that went
//	                 to every member the sender sees alive, all of them named (receivers that
//	                 know of no other live member need not gossip its writes on; a node that
//	                 predates it drops the message, as above)
//	node metadata    format, string http address, string raft address, byte flags (1 = leaving)
//	digest page      format, string sender, string from, byte hasTo, string to,
//	                 uvarint n, n × (string key, version)
//	digest reply     format, byte flags (1 = truncated), uvarint len, EncodeWrites (len bytes),
//	                 uvarint n, n × string key
//	writes body      format, string sender, EncodeWrites
const wireFormat byte = 1

// msgType is a gossip message's second byte.
type msgType byte

const (
	msgWrite  msgType = 1 // one small write, whole
	msgNotice msgType = 2 // a write too big for a packet: fetch it from origin
	msgWrites msgType = 3 // several small writes, whole, in one packet
	msgPush   msgType = 4 // msgWrites sent to every live member, naming them
)

const replyTruncated byte = 1

// minDigestEntry is the smallest encoded digest page entry: an empty key (one byte) and a
// version (twelve bytes and an empty node, one byte).
const minDigestEntry = 14

var (
	errShort      = errors.New("truncated message")
	errFormat     = errors.New("unknown wire format")
	errTrailing   = errors.New("trailing bytes")
	errUnknownMsg = errors.New("unknown gossip message type")
)

// notice announces a write without its value.
type notice struct {
	Key     string
	Version consistency.Version
	Origin  string // HTTP address serving GET PathWrites for the key
}

// gossipMsg is a decoded gossip message.
type gossipMsg struct {
	typ    msgType
	sender string
	writes []replication.Write // msgWrite (exactly one), msgWrites, msgPush
	notice notice              // msgNotice
	// recipients are the members a msgPush went to (the receiver among them).
	recipients []string
}

func encodeWriteMsg(sender string, w replication.Write) []byte {
	b := make([]byte, 0, 48+len(sender)+len(w.Key)+len(w.Value.Data)+len(w.Value.Version.Node))
	b = append(b, wireFormat, byte(msgWrite))
	b = appendString(b, sender)
	b = binary.AppendUvarint(b, 1) // replication.EncodeWrites of the one write, without its copy
	return replication.AppendWrite(b, w)
}

// appendWritesMsgs packs ws into as few messages as it can, none longer than limit bytes:
// msgPush messages naming recipients if there are any, else msgWrites. It appends them to buf
// and returns buf and the messages, which are slices of it (reusing buf for the next round is
// the caller's business: the pusher's messages are copied by memberlist as they are sent). A
// write whose message alone would be longer is left out (Broadcast never passes one: it
// announces such writes by notice).
func appendWritesMsgs(buf []byte, sender string, recipients []string, ws []replication.Write, limit int) ([]byte, [][]byte) {
	header := []byte{wireFormat, byte(msgWrites)}
	header = appendString(header, sender)
	if len(recipients) > 0 {
		header[1] = byte(msgPush)
		header = binary.AppendUvarint(header, uint64(len(recipients)))
		for _, id := range recipients {
			header = appendString(header, id)
		}
	}
	// The count comes first but is known last: reserve its largest encoding (a packet never
	// holds 2^21 writes) and slide the header forward when it is shorter.
	const countRoom = 3
	if len(header)+countRoom >= limit {
		return buf, nil
	}
	var msgs [][]byte
	start, count := -1, 0 // the message being filled begins at buf[start]; -1: none
	flush := func() {
		if count > 0 {
			var c [countRoom]byte
			n := binary.PutUvarint(c[:], uint64(count))
			first := start + countRoom - n
			copy(buf[first:], header)
			copy(buf[first+len(header):], c[:n])
			msgs = append(msgs, buf[first:len(buf):len(buf)])
		} else if start >= 0 {
			buf = buf[:start]
		}
		start, count = -1, 0
	}
	for _, w := range ws {
		for {
			if start < 0 {
				start = len(buf)
				buf = append(buf, make([]byte, len(header)+countRoom)...)
			}
			before := len(buf)
			buf = replication.AppendWrite(buf, w)
			if len(buf)-start <= limit {
				count++
				break
			}
			buf = buf[:before]
			if count == 0 {
				break // too big even alone: left out
			}
			flush()
		}
	}
	flush()
	return buf, msgs
}

func encodeNoticeMsg(sender string, n notice) []byte {
	b := make([]byte, 0, 48+len(sender)+len(n.Key)+len(n.Origin)+len(n.Version.Node))
	b = append(b, wireFormat, byte(msgNotice))
	b = appendString(b, sender)
	b = appendString(b, n.Key)
	b = replication.AppendVersion(b, n.Version)
	return appendString(b, n.Origin)
}

// decodeMsg parses a gossip message. It never panics on hostile input; write data is copied.
func decodeMsg(b []byte) (gossipMsg, error) {
	if len(b) < 2 {
		return gossipMsg{}, errShort
	}
	if b[0] != wireFormat {
		return gossipMsg{}, fmt.Errorf("%w %d", errFormat, b[0])
	}
	m := gossipMsg{typ: msgType(b[1])}
	r := reader{buf: b[2:]}
	m.sender = r.string()
	switch m.typ {
	case msgWrite, msgWrites, msgPush:
		if m.typ == msgPush {
			n := r.count()
			m.recipients = make([]string, 0, n)
			for range n {
				m.recipients = append(m.recipients, r.string())
			}
			if r.err == nil && n == 0 {
				r.err = errors.New("push message names no recipient")
			}
		}
		if r.err != nil {
			return gossipMsg{}, r.err
		}
		ws, err := replication.DecodeWrites(r.buf)
		if err != nil {
			return gossipMsg{}, err
		}
		if m.typ == msgWrite && len(ws) != 1 {
			return gossipMsg{}, fmt.Errorf("write message carries %d writes, want 1", len(ws))
		}
		m.writes = ws
		return m, nil
	case msgNotice:
		m.notice.Key = r.string()
		m.notice.Version = r.version()
		m.notice.Origin = r.string()
	default:
		return gossipMsg{}, fmt.Errorf("%w %d", errUnknownMsg, b[1])
	}
	return m, r.done()
}

// nodeMeta is what a member publishes in its memberlist metadata (at most
// memberlist.MetaMaxSize bytes encoded).
type nodeMeta struct {
	HTTPAddr string
	RaftAddr string
	// Leaving is set just before a graceful leave. memberlist's leave callback does not say
	// whether a member left or died (it never fills Node.State), so the flag tells them apart.
	Leaving bool
}

const metaLeaving byte = 1

func encodeMeta(m nodeMeta) []byte {
	b := []byte{wireFormat}
	b = appendString(b, m.HTTPAddr)
	b = appendString(b, m.RaftAddr)
	var flags byte
	if m.Leaving {
		flags |= metaLeaving
	}
	return append(b, flags)
}

func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) == 0 {
		return nodeMeta{}, errShort
	}
	if b[0] != wireFormat {
		return nodeMeta{}, fmt.Errorf("%w %d", errFormat, b[0])
	}
	r := reader{buf: b[1:]}
	m := nodeMeta{HTTPAddr: r.string(), RaftAddr: r.string()}
	m.Leaving = r.byte()&metaLeaving != 0
	return m, r.done()
}

// digestPage is one page of an anti-entropy digest: the sender's tentative versions of every
// key in [From, To) (To unbounded when !HasTo). The receiver compares only its own keys in that
// range, so a large digest travels in pages without either side missing a key.
type digestPage struct {
	Sender  string
	From    string
	To      string
	HasTo   bool
	Entries map[string]consistency.Version
}

func (p *digestPage) contains(key string) bool {
	return key >= p.From && (!p.HasTo || key < p.To)
}

func encodeDigestPage(p *digestPage) []byte {
	b := make([]byte, 0, 64+len(p.Entries)*40)
	b = append(b, wireFormat)
	b = appendString(b, p.Sender)
	b = appendString(b, p.From)
	if p.HasTo {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendString(b, p.To)
	b = binary.AppendUvarint(b, uint64(len(p.Entries)))
	for k, v := range p.Entries {
		b = appendString(b, k)
		b = replication.AppendVersion(b, v)
	}
	return b
}

func decodeDigestPage(b []byte) (*digestPage, error) {
	if len(b) == 0 {
		return nil, errShort
	}
	if b[0] != wireFormat {
		return nil, fmt.Errorf("%w %d", errFormat, b[0])
	}
	r := reader{buf: b[1:]}
	p := &digestPage{Sender: r.string(), From: r.string()}
	p.HasTo = r.byte() == 1
	p.To = r.string()
	n := r.count()
	// Sized by the bytes that can back it: a map entry takes several times its encoding.
	p.Entries = make(map[string]consistency.Version, min(n, len(r.buf)/minDigestEntry))
	for i := 0; i < n && r.err == nil; i++ {
		k := r.string()
		p.Entries[k] = r.version()
	}
	return p, r.done()
}

// digestReply answers a digest page: the receiver's writes that are newer or missing on the
// sender's side (Truncated when a byte budget cut them short: ask again), and the keys where the
// sender is newer (the sender then pushes those writes).
type digestReply struct {
	Writes    []replication.Write
	Newer     []string
	Truncated bool
}

func encodeDigestReply(rep *digestReply) []byte {
	writes := replication.EncodeWrites(rep.Writes)
	b := make([]byte, 0, 16+len(writes)+len(rep.Newer)*16)
	b = append(b, wireFormat)
	var flags byte
	if rep.Truncated {
		flags |= replyTruncated
	}
	b = append(b, flags)
	b = appendBytes(b, writes)
	b = binary.AppendUvarint(b, uint64(len(rep.Newer)))
	for _, k := range rep.Newer {
		b = appendString(b, k)
	}
	return b
}

func decodeDigestReply(b []byte) (*digestReply, error) {
	if len(b) == 0 {
		return nil, errShort
	}
	if b[0] != wireFormat {
		return nil, fmt.Errorf("%w %d", errFormat, b[0])
	}
	r := reader{buf: b[1:]}
	rep := &digestReply{Truncated: r.byte()&replyTruncated != 0}
	writes := r.bytes()
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		rep.Newer = append(rep.Newer, r.string())
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	ws, err := replication.DecodeWrites(writes)
	if err != nil {
		return nil, err
	}
	rep.Writes = ws
	return rep, nil
}

// encodeWritesBody is the body of a push (POST PathWrites) and of a fetch answer.
func encodeWritesBody(sender string, ws []replication.Write) []byte {
	b := []byte{wireFormat}
	b = appendString(b, sender)
	return append(b, replication.EncodeWrites(ws)...)
}

func decodeWritesBody(b []byte) (sender string, ws []replication.Write, err error) {
	if len(b) == 0 {
		return "", nil, errShort
	}
	if b[0] != wireFormat {
		return "", nil, fmt.Errorf("%w %d", errFormat, b[0])
	}
	r := reader{buf: b[1:]}
	sender = r.string()
	if r.err != nil {
		return "", nil, r.err
	}
	ws, err = replication.DecodeWrites(r.buf)
	return sender, ws, err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// reader reads fields in order and remembers the first error, so callers check once.
type reader struct {
	buf []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.buf)
	if k <= 0 {
		r.err = errShort
		return 0
	}
	r.buf = r.buf[k:]
	return n
}

// count reads an element count; every element takes at least one byte, so a count larger than
// what is left is corrupt (and must not size an allocation).
func (r *reader) count() int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.buf)) {
		r.err = errShort
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	p := r.buf[:n:n]
	r.buf = r.buf[n:]
	return p
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.buf) == 0 {
		r.err = errShort
		return 0
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

func (r *reader) version() consistency.Version {
	if r.err != nil {
		return consistency.Version{}
	}
	v, rest, err := replication.DecodeVersion(r.buf)
	if err != nil {
		r.err = err
		return consistency.Version{}
	}
	r.buf = rest
	return v
}

// done reports the first error, or errTrailing if input is left over.
func (r *reader) done() error {
	if r.err == nil && len(r.buf) != 0 {
		return fmt.Errorf("%w: %d", errTrailing, len(r.buf))
	}
	return r.err
}
