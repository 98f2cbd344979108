package eventual

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/replication/fault"
)

// Timing profiles: which memberlist defaults the engine starts from.
const (
	// ProfileLAN is memberlist's DefaultLANConfig: production.
	ProfileLAN = "lan"
	// ProfileLocal is memberlist's DefaultLocalConfig: faster failure detection, for tests and
	// clusters on one host.
	ProfileLocal = "local"
)

// DefaultLabel keeps dialkv's gossip apart from any other memberlist cluster on the network.
const DefaultLabel = "dialkv"

// Config configures one node's gossip engine. Zero fields take DefaultConfig's values.
type Config struct {
	// NodeID is the memberlist node name. It must be the node id, never memberlist's hostname
	// default: three nodes on one host would otherwise silently form three clusters of one.
	NodeID string
	// BindAddr is the gossip listen address, IP:PORT (UDP and TCP share the port; an empty IP
	// means every interface). Port 0 picks a free one; LocalAddr reports it.
	BindAddr string
	// AdvertiseAddr, IP:PORT, is what other members dial, when it differs from BindAddr (NAT,
	// wildcard binds). Port 0 means the bound port.
	AdvertiseAddr string
	// Peers are gossip addresses (HOST:PORT, optionally NAME/HOST:PORT) to join. The engine joins
	// them on start and keeps retrying in the background those that are not alive members:
	// membership is not persisted, and after a partition longer than GossipToTheDeadTime the
	// sides would otherwise forget each other for good.
	Peers []string
	// Known names members the node knows of from elsewhere (its committed members table, and
	// the ids removed from the cluster), id → gossip address ("" when none is known). Membership
	// is not persisted: after a restart, memberlist never reports a member that is gone for
	// good, not even as dead. The engine lists each known member as dead from its start until
	// memberlist reports it, so that the node can act on a member that never comes back (its
	// committer submits such a member's writes after DeadCommitDelay, as it would have before
	// the restart).
	Known map[string]string
	// Label is memberlist's packet and stream label: clusters with different labels on one
	// network never mix. The internal HTTP endpoints check it too.
	Label string
	// SecretKey, when set (16, 24 or 32 bytes), encrypts gossip with AES-GCM. It does not
	// protect the internal HTTP endpoints.
	SecretKey []byte
	// HTTPAddr and RaftAddr are published in the node's gossip metadata, so members find each
	// other's APIs by gossip. HTTPAddr (HOST:PORT) is required: anti-entropy and direct
	// transfers go to it.
	HTTPAddr string
	RaftAddr string
	// Profile is ProfileLAN (default) or ProfileLocal.
	Profile string
	// AntiEntropyInterval is how often the engine reconciles its tentative layer with a random
	// alive peer.
	AntiEntropyInterval time.Duration
	// MaxBroadcastValue is the largest value, in bytes, that travels inside a gossip message.
	// Larger ones (and any write whose message would not fit one UDP packet) are announced as a
	// {key, version, origin} notice and fetched over HTTP by the receivers: memberlist silently
	// never sends a broadcast bigger than its packet budget.
	MaxBroadcastValue int
	// HTTPClient carries direct transfers and anti-entropy; nil means a keep-alive client that
	// ignores proxy settings.
	HTTPClient *http.Client
	// Logger receives the engine's logs and memberlist's own (at their levels); the node names
	// it (component=gossip). Nil discards.
	Logger *slog.Logger

	// Faults is the test-only fault hook (nil or disabled: memberlist's own transport, untouched).
	Faults *fault.Injector

	// DropGossipFrom is a test hook: when it returns true for a sender id, broadcasts from that
	// sender are ignored on arrival, so anti-entropy alone must deliver their writes. It must be
	// fast and safe for concurrent use.
	DropGossipFrom func(from string) bool

	// RejoinInterval is how often the engine re-joins peers that are not alive members (and
	// syncs with one random known peer, which repairs one-sided views).
	RejoinInterval time.Duration
	// RequestTimeout bounds each internal HTTP request.
	RequestTimeout time.Duration
	// MaxQueuedBroadcasts bounds the gossip transmit queue; beyond it the most-transmitted
	// messages are dropped (anti-entropy repairs what they would have carried).
	MaxQueuedBroadcasts int
	// FetchConcurrency bounds concurrent direct fetches of large values.
	FetchConcurrency int
	// EagerFanout is how many alive peers a write taken on this node is also sent to at once,
	// directly, before gossip's next round (0 = default 4, negative = gossip rounds only).
	// Gossip piggybacks broadcasts on its probe and gossip ticks, which would make an eventual
	// write slower to spread than a strong write is to commit.
	EagerFanout int
	// LeaveTimeout bounds how long Shutdown waits for the leave message to go out.
	LeaveTimeout time.Duration
	// GossipToTheDeadTime (how long dead members are still gossiped to, so they can refute,
	// before memberlist forgets them) and DeadNodeReclaimTime (how long a dead member's name
	// stays bound to its old address before a restart elsewhere may take it over) override the
	// profile's values when positive.
	GossipToTheDeadTime time.Duration
	DeadNodeReclaimTime time.Duration

	// Test knobs: anti-entropy digest page size, transfer budget and internal body limit (0 =
	// the constants), and eagerPushLost, which loses the direct push to the peers it names
	// (nil: none) as the network might: the sender counts it sent.
	digestPageEntries int
	transferBudget    int
	maxBody           int
	eagerPushLost     func(to string) bool
}

// DefaultConfig returns production settings. NodeID and HTTPAddr must still be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:            "0.0.0.0:7946",
		Label:               DefaultLabel,
		Profile:             ProfileLAN,
		AntiEntropyInterval: time.Second,
		MaxBroadcastValue:   1000,
		RejoinInterval:      5 * time.Second,
		RequestTimeout:      10 * time.Second,
		MaxQueuedBroadcasts: 4096,
		FetchConcurrency:    4,
		EagerFanout:         4,
		LeaveTimeout:        time.Second,
	}
}

// withDefaults returns c with every zero field set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BindAddr == "" {
		c.BindAddr = d.BindAddr
	}
	if c.Label == "" {
		c.Label = d.Label
	}
	if c.Profile == "" {
		c.Profile = d.Profile
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = d.AntiEntropyInterval
	}
	if c.MaxBroadcastValue == 0 {
		c.MaxBroadcastValue = d.MaxBroadcastValue
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = d.RejoinInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxQueuedBroadcasts == 0 {
		c.MaxQueuedBroadcasts = d.MaxQueuedBroadcasts
	}
	if c.EagerFanout == 0 {
		c.EagerFanout = d.EagerFanout
	}
	if c.FetchConcurrency == 0 {
		c.FetchConcurrency = d.FetchConcurrency
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = d.LeaveTimeout
	}
	if c.digestPageEntries == 0 {
		c.digestPageEntries = digestPageEntries
	}
	if c.transferBudget == 0 {
		c.transferBudget = transferBudget
	}
	if c.maxBody == 0 {
		c.maxBody = maxBody
	}
	return c
}

// Validate checks fields alone and against each other; zero fields count as their defaults.
func (c *Config) Validate() error {
	cfg := c.withDefaults()
	var errs []error
	if cfg.NodeID == "" {
		errs = append(errs, errors.New("node id is empty (memberlist would default to the hostname)"))
	} else if strings.ContainsAny(cfg.NodeID, "/ ") {
		errs = append(errs, fmt.Errorf("node id %q must not contain '/' or spaces", cfg.NodeID))
	}
	if _, _, err := splitIPPort(cfg.BindAddr, true); err != nil {
		errs = append(errs, fmt.Errorf("bind address: %w", err))
	}
	if cfg.AdvertiseAddr != "" {
		if ip, _, err := splitIPPort(cfg.AdvertiseAddr, false); err != nil {
			errs = append(errs, fmt.Errorf("advertise address: %w", err))
		} else if ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("advertise address %q: other members cannot dial an unspecified IP", cfg.AdvertiseAddr))
		}
	}
	for _, p := range cfg.Peers {
		if _, _, err := net.SplitHostPort(peerAddr(p)); err != nil {
			errs = append(errs, fmt.Errorf("peer %q: want HOST:PORT: %w", p, err))
		}
	}
	if len(cfg.Label) > memberlist.LabelMaxSize {
		errs = append(errs, fmt.Errorf("label is %d bytes; at most %d", len(cfg.Label), memberlist.LabelMaxSize))
	}
	switch len(cfg.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("secret key is %d bytes; want 16, 24 or 32", len(cfg.SecretKey)))
	}
	if err := checkDialable(cfg.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http address %q: %w (peers dial it for transfers and anti-entropy)", cfg.HTTPAddr, err))
	}
	if cfg.RaftAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.RaftAddr); err != nil {
			errs = append(errs, fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err))
		}
	}
	if n := len(encodeMeta(nodeMeta{HTTPAddr: cfg.HTTPAddr, RaftAddr: cfg.RaftAddr, Leaving: true})); n > memberlist.MetaMaxSize {
		errs = append(errs, fmt.Errorf("node metadata is %d bytes; memberlist allows %d", n, memberlist.MetaMaxSize))
	}
	if cfg.Profile != ProfileLAN && cfg.Profile != ProfileLocal {
		errs = append(errs, fmt.Errorf("unknown gossip profile %q: want %q or %q", cfg.Profile, ProfileLAN, ProfileLocal))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"anti-entropy interval", cfg.AntiEntropyInterval},
		{"rejoin interval", cfg.RejoinInterval},
		{"request timeout", cfg.RequestTimeout},
		{"leave timeout", cfg.LeaveTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v must be positive", d.name, d.v))
		}
	}
	if cfg.GossipToTheDeadTime < 0 || cfg.DeadNodeReclaimTime < 0 {
		errs = append(errs, errors.New("gossip-to-the-dead and dead-node-reclaim times must not be negative"))
	}
	if cfg.MaxBroadcastValue < 0 || cfg.MaxQueuedBroadcasts < 0 || cfg.FetchConcurrency < 0 {
		errs = append(errs, errors.New("max broadcast value, max queued broadcasts and fetch concurrency must be positive"))
	}
	return errors.Join(errs...)
}

// splitIPPort parses IP:PORT. An empty IP is allowed (and means every interface) only when
// wildcard is set.
func splitIPPort(addr string, wildcard bool) (net.IP, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%q: want IP:PORT: %w", addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("%q: bad port", addr)
	}
	if host == "" && wildcard {
		return net.IPv4zero, int(port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("%q: memberlist needs an IP address, not a host name", addr)
	}
	return ip, int(port), nil
}

// checkDialable checks that addr is a HOST:PORT another machine could dial: a host that is
// neither empty nor a wildcard IP, and a port other than 0.
func checkDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return errors.New("the host is a wildcard; publish an address peers can reach")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New("the port must be the one actually listening (not 0)")
	}
	return nil
}

// peerAddr strips memberlist's optional NAME/ prefix from a peer address.
func peerAddr(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// memberlistConfig builds memberlist's configuration from the profile; the engine adds its
// delegates and logger.
func (c *Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	var reclaim time.Duration
	switch c.Profile {
	case ProfileLocal:
		mc = memberlist.DefaultLocalConfig()
		reclaim = time.Second
	default:
		mc = memberlist.DefaultLANConfig()
		reclaim = 10 * time.Second
	}
	mc.Name = c.NodeID
	bindIP, bindPort, _ := splitIPPort(c.BindAddr, true)
	mc.BindAddr = bindIP.String()
	mc.BindPort = bindPort
	mc.AdvertiseAddr = ""
	mc.AdvertisePort = bindPort
	if c.AdvertiseAddr != "" {
		ip, port, _ := splitIPPort(c.AdvertiseAddr, false)
		mc.AdvertiseAddr = ip.String()
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	mc.Label = c.Label
	// memberlist LZW-compresses every message by default, allocating a fresh table each time
	// (about 400 KB per eventual write, measured): our messages are a few hundred bytes of
	// binary, so compression buys nothing and costs most of a write's CPU.
	mc.EnableCompression = false
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	// GossipToTheDeadTime: the profiles' values (30 s LAN, 15 s local) are several suspicion
	// timeouts, long enough for a falsely-declared node to hear it and refute. After it memberlist
	// forgets the member; the engine still reports it as dead and keeps re-joining it.
	if c.GossipToTheDeadTime > 0 {
		mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	}
	// DeadNodeReclaimTime: memberlist's default 0 means a dead member's name can never move to a
	// new address until it is forgotten, so a node restarted on another port stays locked out for
	// GossipToTheDeadTime. A restart at the same address needs no reclaim: the node refutes its
	// death with a higher incarnation.
	mc.DeadNodeReclaimTime = reclaim
	if c.DeadNodeReclaimTime > 0 {
		mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	}
	mc.RequireNodeNames = false
	return mc
}

// maxGossipMessage is the largest delegate message memberlist will ever put in a packet for
// this configuration. memberlist skips (forever, without a word) a queued message larger than the
// space left in a packet, so the engine never queues one. The budget is the packet size, minus
// the compound header, the label, the encryption overhead (the larger, padded, version), and the
// per-message compound and user-message framing, minus a small margin.
func maxGossipMessage(mc *memberlist.Config) int {
	const (
		compoundHeader  = 2  // memberlist compoundHeaderOverhead
		perMessage      = 3  // compoundOverhead (2) + userMsgOverhead (1)
		encryptOverhead = 45 // version 0 (padded); version 1 needs 29
		margin          = 16
	)
	n := mc.UDPBufferSize - compoundHeader - perMessage - margin
	if mc.Label != "" {
		n -= 2 + len(mc.Label)
	}
	if len(mc.SecretKey) > 0 || mc.Keyring != nil {
		n -= encryptOverhead
	}
	return n
}
