package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dialkv/dialkv/consistency"
)

// CommandType is the first byte of every command after the format byte. The FSM dispatches on it;
// an unknown type is ErrUnknownCommand.
type CommandType byte

// Command types. Never renumber: they are in every log on disk.
const (
	CmdPut      CommandType = 1 // write a value (strong path)
	CmdDelete   CommandType = 2 // write a tombstone (strong path)
	CmdRegister CommandType = 3 // record a member's addresses
	// CmdEventualBatch carries a node's pending eventual writes (its own, or those of peers gossip
	// has declared dead) into the log, with the reporter's watermark.
	CmdEventualBatch CommandType = 4
	// CmdPurge removes tombstones that every member has acknowledged (see store.Tx.Purge).
	CmdPurge CommandType = 5
	// CmdBatch carries several commands proposed at about the same time in one log entry; they
	// apply in order, each with its own result (the leader's proposal batching, see
	// strong.Config.ProposalBatch).
	CmdBatch CommandType = 6
	// CmdRemove takes a member out of the committed members table: its addresses and its
	// watermark go, so purging stops waiting for it, and it is marked removed until it registers
	// again (a fresh node joining under the same id).
	CmdRemove CommandType = 7
)

func (t CommandType) String() string {
	switch t {
	case CmdPut:
		return "put"
	case CmdDelete:
		return "delete"
	case CmdRegister:
		return "register"
	case CmdEventualBatch:
		return "eventual-batch"
	case CmdPurge:
		return "purge"
	case CmdBatch:
		return "batch"
	case CmdRemove:
		return "remove"
	}
	return fmt.Sprintf("command(%d)", byte(t))
}

// Condition restricts a strong write to a key state.
type Condition byte

// Conditions of a strong write.
const (
	CondNone      Condition = 0
	CondIfVersion Condition = 1 // the current committed version must equal IfVersion (zero = absent)
	CondIfAbsent  Condition = 2 // the key must have no live value
)

// Member is a cluster member's identity and addresses, as recorded in the committed layer.
type Member struct {
	ID         string
	RaftAddr   string
	HTTPAddr   string
	GossipAddr string
}

// Command is one state-machine operation. Which fields matter depends on Type.
type Command struct {
	Type      CommandType
	Key       string
	Value     []byte
	Stamp     consistency.Version // the proposer's HLC stamp
	Cond      Condition
	IfVersion consistency.Version
	Member    Member // CmdRegister; CmdRemove uses Member.ID only

	// CmdEventualBatch: Reporter is the node that submitted the batch, Watermark the version below
	// which it holds no uncommitted eventual write (zero: no report), Writes the writes.
	Reporter  string
	Watermark consistency.Version
	Writes    []Write
	// Unsafe (test-only fault mode) applies the writes without the version check: the one that
	// arrives last wins. It exists so the partition tests can show their checkers catch it.
	Unsafe bool

	// CmdBatch: the commands, in the order they apply. A batch never holds a batch.
	Batch []Command
}

// Result is what applying a command returned, delivered to the proposer.
type Result struct {
	// Version is the version the key got (or, for a failed condition, its current version).
	Version consistency.Version
	// Existed reports whether the key had a live value before (deletes use it for 404).
	Existed bool
	// Err is a *ConflictError or nil. It is deterministic: every replica computes the same.
	Err error
	// Index is the log index of the entry, filled in by the engine for the proposer.
	Index uint64
}

const batchFlagUnsafe byte = 1

// commandFormat is the first byte of an encoded command: bump it, and keep decoding the old
// one, when the layout changes.
const commandFormat byte = 1

var errShort = errors.New("truncated command")

// maxPrealloc caps the room a decoder reserves from a count it read: the count comes from the
// input, and a hostile one that the bytes after it cannot back (a few bytes each, while a
// decoded Command takes hundreds) must cost no more than what does decode. Longer lists grow as
// their elements decode. 256 is the most commands a leader packs into one entry or a follower
// forwards in one call (a committer batch of up to 512 writes grows once).
const maxPrealloc = 256

// Encode returns the binary form of c, as stored in the Raft log.
func (c *Command) Encode() []byte {
	b := make([]byte, 0, 32+len(c.Key)+len(c.Value)+len(c.Stamp.Node))
	b = append(b, commandFormat, byte(c.Type))
	switch c.Type {
	case CmdPut, CmdDelete:
		b = appendString(b, c.Key)
		b = AppendVersion(b, c.Stamp)
		b = append(b, byte(c.Cond))
		if c.Cond == CondIfVersion {
			b = AppendVersion(b, c.IfVersion)
		}
		if c.Type == CmdPut {
			b = appendBytes(b, c.Value)
		}
	case CmdRegister:
		b = appendString(b, c.Member.ID)
		b = appendString(b, c.Member.RaftAddr)
		b = appendString(b, c.Member.HTTPAddr)
		b = appendString(b, c.Member.GossipAddr)
	case CmdRemove:
		b = appendString(b, c.Member.ID)
	case CmdEventualBatch:
		b = appendString(b, c.Reporter)
		b = AppendVersion(b, c.Watermark)
		var flags byte
		if c.Unsafe {
			flags |= batchFlagUnsafe
		}
		b = append(b, flags)
		b = append(b, EncodeWrites(c.Writes)...)
	case CmdPurge:
		b = AppendVersion(b, c.Stamp)
	case CmdBatch:
		encoded := make([][]byte, len(c.Batch))
		for i := range c.Batch {
			encoded[i] = c.Batch[i].Encode()
		}
		return EncodeBatch(encoded)
	}
	return b
}

// EncodeBatch returns the CmdBatch command holding the given encoded commands (each the output
// of Encode, never itself a batch), in the order they apply.
func EncodeBatch(encoded [][]byte) []byte {
	size := 2 + binary.MaxVarintLen64
	for _, e := range encoded {
		size += binary.MaxVarintLen64 + len(e)
	}
	b := make([]byte, 0, size)
	b = append(b, commandFormat, byte(CmdBatch))
	b = binary.AppendUvarint(b, uint64(len(encoded)))
	for _, e := range encoded {
		b = appendBytes(b, e)
	}
	return b
}

// DecodeCommand parses the output of Encode. Value aliases data.
func DecodeCommand(data []byte) (Command, error) {
	if len(data) < 2 {
		return Command{}, errShort
	}
	if data[0] != commandFormat {
		return Command{}, fmt.Errorf("%w: format %d", ErrUnknownCommand, data[0])
	}
	c := Command{Type: CommandType(data[1])}
	d := decoder{buf: data[2:]}
	switch c.Type {
	case CmdPut, CmdDelete:
		c.Key = d.string()
		c.Stamp = d.version()
		c.Cond = Condition(d.byte())
		if c.Cond == CondIfVersion {
			c.IfVersion = d.version()
		}
		if c.Type == CmdPut {
			c.Value = d.bytes()
		}
	case CmdRegister:
		c.Member.ID = d.string()
		c.Member.RaftAddr = d.string()
		c.Member.HTTPAddr = d.string()
		c.Member.GossipAddr = d.string()
	case CmdRemove:
		c.Member.ID = d.string()
	case CmdEventualBatch:
		c.Reporter = d.string()
		c.Watermark = d.version()
		c.Unsafe = d.byte()&batchFlagUnsafe != 0
		if d.err == nil {
			c.Writes, d.err = d.writes()
		}
	case CmdPurge:
		c.Stamp = d.version()
	case CmdBatch:
		n := d.uvarint()
		if n > uint64(len(d.buf)) { // every command takes at least one byte
			return Command{}, fmt.Errorf("decode %v: %w", c.Type, errShort)
		}
		c.Batch = make([]Command, 0, min(n, maxPrealloc))
		for range n {
			sub := d.bytes()
			if d.err != nil {
				break
			}
			if len(sub) >= 2 && CommandType(sub[1]) == CmdBatch {
				return Command{}, fmt.Errorf("decode %v: %w: a batch inside a batch", c.Type, ErrUnknownCommand)
			}
			sc, err := DecodeCommand(sub)
			if err != nil {
				return Command{}, fmt.Errorf("decode %v, command %d: %w", c.Type, len(c.Batch), err)
			}
			c.Batch = append(c.Batch, sc)
		}
	default:
		return Command{}, fmt.Errorf("%w: type %d", ErrUnknownCommand, data[1])
	}
	if d.err != nil {
		return Command{}, fmt.Errorf("decode %v: %w", c.Type, d.err)
	}
	return c, nil
}

// DecodeBatch is DecodeCommand for a CmdBatch of at most max commands: anything else is
// refused (ErrInvalid) from the first bytes, before a command is decoded, so a receiver bounds
// what one body can make it decode and hold.
func DecodeBatch(data []byte, max int) (Command, error) {
	if len(data) < 2 || data[0] != commandFormat || CommandType(data[1]) != CmdBatch {
		return Command{}, fmt.Errorf("%w: not a batch of commands", ErrInvalid)
	}
	if n, k := binary.Uvarint(data[2:]); k > 0 && n > uint64(max) {
		return Command{}, fmt.Errorf("%w: a batch of %d commands, over the %d taken at once", ErrInvalid, n, max)
	}
	return DecodeCommand(data)
}

// AppendVersion appends the binary form of v (fixed wall and logical, length-prefixed node).
func AppendVersion(b []byte, v consistency.Version) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(v.Wall))
	b = binary.BigEndian.AppendUint32(b, v.Logical)
	return appendString(b, v.Node)
}

// DecodeVersion parses AppendVersion's output from the front of b and returns the rest.
func DecodeVersion(b []byte) (consistency.Version, []byte, error) {
	d := decoder{buf: b}
	v := d.version()
	return v, d.buf, d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendUvarint(b []byte, n uint64) []byte { return binary.AppendUvarint(b, n) }

// decoder reads fields in order and remembers the first error, so callers check once.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf) {
		d.err = errShort
		return nil
	}
	p := d.buf[:n]
	d.buf = d.buf[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, k := binary.Uvarint(d.buf)
	if k <= 0 || n > uint64(len(d.buf)-k) {
		d.err = errShort
		return nil
	}
	d.buf = d.buf[k:]
	return d.take(int(n))
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.buf)
	if k <= 0 {
		d.err = errShort
		return 0
	}
	d.buf = d.buf[k:]
	return n
}

func (d *decoder) version() consistency.Version {
	p := d.take(12)
	if p == nil {
		return consistency.Version{}
	}
	return consistency.Version{
		Wall:    int64(binary.BigEndian.Uint64(p[:8])),
		Logical: binary.BigEndian.Uint32(p[8:12]),
		Node:    d.string(),
	}
}
