package eventual

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// The wire decoders read what any peer (or anyone who can reach the gossip port or the internal
// HTTP endpoints) sends: they must refuse what they cannot parse without panicking, and what
// they accept must survive its encoder unchanged. Only the seeds run in a plain `go test`; to
// search:
//
//	go test -tags hashicorpmetrics -run XXX -fuzz FuzzDecodeMsg -fuzztime 60s ./replication/eventual/

func fuzzWrites() []replication.Write {
	v := consistency.Version{Wall: 1732298000123456789, Logical: 2, Node: "n1"}
	return []replication.Write{
		{Key: "k", Value: consistency.Value{Version: v, Data: []byte("value")}},
		{Key: "gone", Value: consistency.Value{Version: v, Tombstone: true}},
	}
}

func FuzzDecodeMsg(f *testing.F) {
	ws := fuzzWrites()
	f.Add(encodeWriteMsg("n1", ws[0]))
	f.Add(encodeNoticeMsg("n2", notice{Key: "big", Version: ws[0].Value.Version, Origin: "127.0.0.1:7001"}))
	_, msgs := appendWritesMsgs(nil, "n1", nil, ws, 1400)
	for _, m := range msgs {
		f.Add(bytes.Clone(m))
	}
	_, msgs = appendWritesMsgs(nil, "n1", []string{"n2", "n3"}, ws, 1400)
	for _, m := range msgs {
		f.Add(bytes.Clone(m))
	}
	f.Add([]byte{wireFormat, byte(msgPush), 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMsg(data)
		if err != nil {
			return
		}
		if cap(m.recipients) > len(data) {
			t.Fatalf("%d bytes decoded into room for %d recipients", len(data), cap(m.recipients))
		}
		var enc []byte
		switch m.typ {
		case msgWrite:
			enc = encodeWriteMsg(m.sender, m.writes[0])
		case msgNotice:
			enc = encodeNoticeMsg(m.sender, m.notice)
		case msgWrites, msgPush:
			var msgs [][]byte
			_, msgs = appendWritesMsgs(nil, m.sender, m.recipients, m.writes, len(data)+64)
			if len(m.writes) == 0 {
				return // appendWritesMsgs sends no message without writes
			}
			if len(msgs) != 1 {
				t.Fatalf("%+v re-encodes as %d messages", m, len(msgs))
			}
			enc = msgs[0]
		}
		again, err := decodeMsg(enc)
		if err != nil || !sameMsg(m, again) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, m)
		}
	})
}

func FuzzDecodeDigestPage(f *testing.F) {
	v := fuzzWrites()[0].Value.Version
	f.Add(encodeDigestPage(&digestPage{Sender: "n1", From: "a", To: "m", HasTo: true, Entries: map[string]consistency.Version{"b": v, "c": {}}}))
	f.Add(encodeDigestPage(&digestPage{Sender: "n1"}))
	f.Add([]byte{wireFormat, 0, 0, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeDigestPage(data)
		if err != nil {
			return
		}
		again, err := decodeDigestPage(encodeDigestPage(p))
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, p)
		}
	})
}

func FuzzDecodeDigestReply(f *testing.F) {
	f.Add(encodeDigestReply(&digestReply{Writes: fuzzWrites(), Newer: []string{"x", "y"}, Truncated: true}))
	f.Add(encodeDigestReply(&digestReply{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := decodeDigestReply(data)
		if err != nil {
			return
		}
		again, err := decodeDigestReply(encodeDigestReply(rep))
		if err != nil || again.Truncated != rep.Truncated || !slicesEqual(again.Newer, rep.Newer) || !sameWrites(again.Writes, rep.Writes) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, rep)
		}
	})
}

func FuzzDecodeWritesBody(f *testing.F) {
	f.Add(encodeWritesBody("n3", fuzzWrites()))
	f.Add(encodeWritesBody("", nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		sender, ws, err := decodeWritesBody(data)
		if err != nil {
			return
		}
		s2, ws2, err := decodeWritesBody(encodeWritesBody(sender, ws))
		if err != nil || s2 != sender || !sameWrites(ws, ws2) {
			t.Fatalf("round trip: %v: %q %+v, want %q %+v", err, s2, ws2, sender, ws)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nodeMeta{HTTPAddr: "h:1", RaftAddr: "r:2", Leaving: true}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMeta(data)
		if err != nil {
			return
		}
		if again, err := decodeMeta(encodeMeta(m)); err != nil || again != m {
			t.Fatalf("round trip: %v: %+v, want %+v", err, again, m)
		}
	})
}

func sameMsg(a, b gossipMsg) bool {
	return a.typ == b.typ && a.sender == b.sender && a.notice == b.notice &&
		slicesEqual(a.recipients, b.recipients) && sameWrites(a.writes, b.writes)
}

// slicesEqual takes nil and empty for the same.
func slicesEqual(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func sameWrites(a, b []replication.Write) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.Value.Version != y.Value.Version || x.Value.Tombstone != y.Value.Tombstone || !bytes.Equal(x.Value.Data, y.Value.Data) {
			return false
		}
	}
	return true
}
