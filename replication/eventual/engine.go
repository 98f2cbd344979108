package eventual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/fault"
)

// ErrShutdown is returned by the internal endpoints once the engine has shut down.
var ErrShutdown = errors.New("gossip engine shut down")

const (
	// inboxSize bounds gossip messages received but not yet merged. memberlist's delegate must
	// not block, so a full inbox drops (anti-entropy repairs the loss).
	inboxSize = 4096
	// mergeBatch is how many received messages go to the store in one MergeTentative call.
	mergeBatch = 256
	// fetchQueueSize bounds notices waiting for a direct fetch.
	fetchQueueSize = 1024
	// maxUnsent bounds writes handed to Broadcast and not yet taken by the pusher.
	maxUnsent = 16384
	// maxJoinsInFlight bounds concurrent memberlist joins in one rejoin round.
	maxJoinsInFlight = 8
	// maxKeptBuffer bounds, in bytes, the buffers the pusher keeps for its next round.
	maxKeptBuffer = 64 << 10
)

// Engine is one node's gossip participant. Its methods are safe for concurrent use.
type Engine struct {
	cfg       Config
	store     Store
	logger    *slog.Logger
	client    *http.Client
	ownClient bool
	handler   http.Handler
	// pushSlots bounds the anti-entropy pushes served at once (servePush).
	pushSlots chan struct{}

	ml      atomic.Pointer[memberlist.Memberlist]
	queue   *memberlist.TransmitLimitedQueue
	members *memberTable
	meta    atomic.Pointer[[]byte] // encoded nodeMeta
	maxMsg  int

	// Writes handed to Broadcast wait in unsent for the pusher (see pushLoop).
	unsentMu   sync.Mutex
	unsent     []replication.Write
	unsentWake chan struct{}
	// The pusher's own, reused each round: the array unsent had before it took it, and the
	// buffer its direct-push messages are encoded in.
	spare   []replication.Write
	pushBuf []byte

	inbox    chan []byte
	fetches  chan notice
	fetchMu  sync.Mutex
	fetching map[string]consistency.Version // key -> version being fetched

	ctx      context.Context
	cancel   context.CancelFunc
	closed   atomic.Bool
	wg       sync.WaitGroup
	shutdown sync.Once
	stats    counters
}

// Open starts the engine: it creates the memberlist (listening on cfg.BindAddr) and starts
// joining cfg.Peers in the background, forever; finding none of them is not an error. st must
// stay usable until Shutdown returns.
func Open(cfg Config, st Store) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	if st == nil {
		return nil, errors.New("gossip: nil store")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:        cfg,
		store:      st,
		logger:     logger,
		client:     cfg.HTTPClient,
		members:    newMemberTable(cfg.NodeID),
		inbox:      make(chan []byte, inboxSize),
		unsentWake: make(chan struct{}, 1),
		fetches:    make(chan notice, fetchQueueSize),
		fetching:   map[string]consistency.Version{},
	}
	if e.client == nil {
		e.client, e.ownClient = defaultHTTPClient(), true
	}
	for id, addr := range cfg.Known {
		e.members.remember(id, addr)
	}
	e.setMeta(false)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.queue = &memberlist.TransmitLimitedQueue{NumNodes: e.members.liveCount}
	e.pushSlots = make(chan struct{}, maxPushesServed)
	e.handler = e.routes()

	mc := cfg.memberlistConfig()
	e.queue.RetransmitMult = mc.RetransmitMult
	e.maxMsg = maxGossipMessage(mc)
	d := &delegate{e: e}
	mc.Delegate, mc.Events, mc.Ping = d, d, d
	mc.Logger = newMemberlistLogger(logger, e.observeLog)
	// The engine's own transport, never memberlist's: see transport.
	var tr memberlist.NodeAwareTransport
	var err error
	if cfg.Faults.Enabled() {
		tr, err = newFaultTransport(mc, cfg.Faults, e.members.idByGossipAddr)
		e.client = e.faultyClient(e.client)
		e.handler = fault.Middleware(cfg.Faults, e.handler)
	} else {
		tr, err = newNetTransport(mc, nil)
	}
	if err != nil {
		e.cancel()
		return nil, fmt.Errorf("gossip on %s: %w", cfg.BindAddr, err)
	}
	mc.Transport = tr
	ml, err := memberlist.Create(mc)
	if err != nil {
		e.cancel()
		tr.Shutdown()
		return nil, fmt.Errorf("gossip on %s: %w", cfg.BindAddr, err)
	}
	e.ml.Store(ml)
	logger.Info("gossip started", "addr", e.LocalAddr(), "label", cfg.Label, "profile", cfg.Profile, "peers", cfg.Peers)

	e.wg.Add(4 + cfg.FetchConcurrency)
	go e.receiveLoop()
	go e.pushLoop()
	go e.antiEntropyLoop()
	go e.joinLoop()
	for range cfg.FetchConcurrency {
		go e.fetchLoop()
	}
	return e, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // internal traffic never goes through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}}
}

func (e *Engine) setMeta(leaving bool) {
	meta := encodeMeta(nodeMeta{HTTPAddr: e.cfg.HTTPAddr, RaftAddr: e.cfg.RaftAddr, Leaving: leaving})
	e.meta.Store(&meta)
}

// LocalAddr is the gossip address this node advertises (with the port it bound).
func (e *Engine) LocalAddr() string {
	m, _ := e.members.get(e.cfg.NodeID)
	return m.GossipAddr
}

// Broadcast hands writes to the pusher for gossip (see pushLoop). The node calls it after a local
// eventual write is durable; it never blocks. Small writes travel whole; larger ones as notices
// that receivers fetch from this node. Delivery is best effort: anti-entropy repairs whatever
// gossip loses.
func (e *Engine) Broadcast(ws []replication.Write) {
	if e.closed.Load() || len(ws) == 0 {
		return
	}
	e.unsentMu.Lock()
	if len(e.unsent)+len(ws) <= maxUnsent {
		e.unsent = append(e.unsent, ws...)
	} else {
		// The pusher is far behind (a stalled send): what it would have gossiped is lost to
		// gossip, as from a full transmit queue; anti-entropy carries it.
		e.stats.queueDropped.Add(uint64(len(ws)))
	}
	e.unsentMu.Unlock()
	select {
	case e.unsentWake <- struct{}{}:
	default: // the pusher is awake already and will take these too
	}
}

// pushLoop is the engine's pusher. Each round it takes every write handed to Broadcast since
// the previous round, sends the writes stamped here straight to up to EagerFanout random alive
// peers (best effort, UDP), so they reach them without waiting for a gossip tick, and then
// queues each write for gossip (memberlist piggybacks them on its own traffic, a few times
// each): the gossip copy is what delivers a write whose direct packet was lost. Queuing after
// the direct send means the gossip copy never overtakes it.
//
// The direct send packs the round's writes into as few packets as the packet budget allows (one
// per peer for a typical group commit) instead of one packet per write per peer: with many
// writers that is far fewer packets to send and to receive, and a lone write still leaves at
// once, with no timer to wait out. Writers never contend for memberlist's queue lock either.
func (e *Engine) pushLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.unsentWake:
		}
		e.unsentMu.Lock()
		ws := e.unsent
		e.unsent = e.spare
		e.unsentMu.Unlock()

		var local []replication.Write
		var notices [][]byte
		queue := make([]*broadcast, 0, len(ws))
		for _, w := range ws {
			msg, whole := e.gossipMsg(w)
			if msg == nil {
				continue
			}
			queue = append(queue, &broadcast{key: w.Key, msg: msg})
			switch {
			case w.Origin() != e.cfg.NodeID || e.cfg.EagerFanout < 0:
			case whole:
				local = append(local, w)
			default:
				notices = append(notices, msg)
			}
		}
		e.pushEager(local, notices)
		for _, b := range queue {
			// One named broadcast per key: a newer write of the key replaces the queued older one.
			e.queue.QueueBroadcast(b)
		}
		e.stats.queued.Add(uint64(len(queue)))
		// The spare is this round's array, or none: the previous spare is unsent's array now, and
		// kept as the spare too, Broadcast would append into the array the next round reads and
		// clears.
		e.spare = nil
		if cap(ws) <= maxKeptBuffer/64 {
			clear(ws) // let the values go: the queue holds their messages
			e.spare = ws[:0]
		}
		if cap(e.pushBuf) > maxKeptBuffer {
			e.pushBuf = nil // a burst's buffer is not kept for ever
		}
		if n := e.queue.NumQueued(); n > e.cfg.MaxQueuedBroadcasts {
			e.queue.Prune(e.cfg.MaxQueuedBroadcasts)
			e.stats.queueDropped.Add(uint64(n - e.queue.NumQueued()))
		}
	}
}

// gossipMsg returns the gossip message for w, the write itself or a notice of it (nil if none
// fits a packet), and whether it carries the write whole.
func (e *Engine) gossipMsg(w replication.Write) (msg []byte, whole bool) {
	if len(w.Value.Data) <= e.cfg.MaxBroadcastValue {
		if msg = encodeWriteMsg(e.cfg.NodeID, w); len(msg) <= e.maxMsg {
			return msg, true
		}
	}
	msg = encodeNoticeMsg(e.cfg.NodeID, notice{Key: w.Key, Version: w.Value.Version, Origin: e.cfg.HTTPAddr})
	if len(msg) > e.maxMsg {
		// Even the notice would never leave: memberlist skips oversized messages silently.
		e.stats.oversize.Add(1)
		e.logger.Debug("write too big to announce by gossip; anti-entropy will carry it", "key", w.Key, "bytes", len(msg))
		return nil, false
	}
	e.stats.noticesQueued.Add(1)
	return msg, false
}

// pushEager sends the local writes (packed) and the notices to up to EagerFanout random alive
// peers. When that is every alive peer, and no member is suspect, the writes go as msgPush
// naming the peers, so that receivers who know of no other live member do not gossip them on
// (see relayNeeded).
func (e *Engine) pushEager(local []replication.Write, notices [][]byte) {
	if len(local) == 0 && len(notices) == 0 {
		return
	}
	peers, live := e.members.alivePeers()
	if len(peers) == 0 {
		return
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	var recipients []string
	if len(peers) > e.cfg.EagerFanout {
		peers = peers[:e.cfg.EagerFanout]
	} else if len(peers) == live {
		recipients = make([]string, len(peers))
		for i, p := range peers {
			recipients[i] = p.Name
		}
	}
	var msgs [][]byte
	e.pushBuf, msgs = appendWritesMsgs(e.pushBuf[:0], e.cfg.NodeID, recipients, local, e.maxMsg)
	msgs = append(msgs, notices...)
	writes := uint64(len(local) + len(notices))
	ml := e.ml.Load()
	for _, p := range peers {
		sent := 0
		for _, msg := range msgs {
			if e.cfg.eagerPushLost != nil && e.cfg.eagerPushLost(p.Name) {
				sent++ // lost on the way, as UDP may lose it: the sender never knows
				continue
			}
			if err := ml.SendBestEffort(p, msg); err != nil {
				e.logger.Debug("eager push failed; gossip will carry it", "to", p.Name, "err", err)
				break
			}
			sent++
		}
		e.stats.eagerPackets.Add(uint64(sent))
		if sent == len(msgs) {
			e.stats.eagerSent.Add(writes)
		}
	}
}

// Members returns every member this node knows of, itself included, sorted by id.
func (e *Engine) Members() []Member { return e.members.list() }

// Forget drops a member that is dead or left from Members and from the rejoin list (for a node
// removed from the cluster for good). It reports whether it did.
func (e *Engine) Forget(id string) bool { return e.members.forget(id) }

// Handler serves the internal endpoints; the node mounts it at PathPrefix.
func (e *Engine) Handler() http.Handler { return e.handler }

// Shutdown leaves the cluster (waiting at most LeaveTimeout for the leave message to go out),
// stops memberlist and the engine's goroutines, and returns once they are done. It is
// idempotent. Joins still dialling a silent peer are not waited for: they end by themselves
// within memberlist's TCP timeout and touch nothing but memberlist.
func (e *Engine) Shutdown() error { return e.stop(true) }

// stop is Shutdown; without leave it is a crash as the cluster sees it (tests).
func (e *Engine) stop(leave bool) error {
	var err error
	e.shutdown.Do(func() {
		e.closed.Store(true)
		e.cancel()
		ml := e.ml.Load()
		if leave {
			// Announce the leave in the metadata first: memberlist's leave notification does
			// not tell the others whether a member left or died.
			e.setMeta(true)
			if uerr := ml.UpdateNode(e.cfg.LeaveTimeout / 2); uerr != nil {
				e.logger.Debug("announcing the leave", "err", uerr)
			}
			if lerr := ml.Leave(e.cfg.LeaveTimeout / 2); lerr != nil {
				e.logger.Warn("leaving gossip: others will notice by probing", "err", lerr)
			}
		}
		err = ml.Shutdown()
		e.wg.Wait()
		if leave {
			e.members.setSelfState(StateLeft)
		} else {
			e.members.setSelfState(StateDead)
		}
		if e.ownClient {
			e.client.CloseIdleConnections()
		}
		e.logger.Info("gossip stopped", "left", leave)
	})
	return err
}

// receiveLoop merges what gossip delivered, in batches, off memberlist's packet goroutine.
func (e *Engine) receiveLoop() {
	defer e.wg.Done()
	for {
		var batch [][]byte
		select {
		case <-e.ctx.Done():
			return
		case b := <-e.inbox:
			batch = append(batch, b)
		}
	drain:
		for len(batch) < mergeBatch {
			select {
			case b := <-e.inbox:
				batch = append(batch, b)
			default:
				break drain
			}
		}
		e.receive(batch)
	}
}

func (e *Engine) receive(batch [][]byte) {
	// delivered holds the writes of pushes that reached every live member this node knows of,
	// writes the others.
	var writes, delivered []replication.Write
	var notices []notice
	for _, b := range batch {
		m, err := decodeMsg(b)
		if err != nil {
			e.stats.ignored.Add(1)
			e.logger.Debug("ignoring undecodable gossip message", "bytes", len(b), "err", err)
			continue
		}
		if e.cfg.DropGossipFrom != nil && e.cfg.DropGossipFrom(m.sender) {
			e.stats.ignored.Add(1)
			continue
		}
		e.stats.received.Add(1)
		switch m.typ {
		case msgWrite, msgWrites:
			writes = append(writes, m.writes...)
		case msgPush:
			if e.relayNeeded(m) {
				writes = append(writes, m.writes...)
			} else {
				delivered = append(delivered, m.writes...)
			}
		case msgNotice:
			if m.notice.Origin != e.cfg.HTTPAddr {
				notices = append(notices, m.notice)
			}
		}
	}
	if len(writes)+len(delivered) > 0 {
		e.merge(writes, &e.stats.gossipMerged, "gossip", delivered)
	}
	if len(notices) > 0 {
		e.scheduleFetches(notices)
	}
}

// relayNeeded reports whether this node must gossip on the writes of push m, which are new
// here. Not if m reached every member this node sees alive or suspect (m names them): gossip
// would only carry the writes to members that already had them. What the direct packet may have
// lost on the way, the sender's own queued gossip of the writes carries (it queues every write
// it pushes, after pushing it), and anti-entropy repairs the rest. Members this node sees dead
// or left do not count: a relay would not reach them either, and they catch up by anti-entropy
// when they are back.
func (e *Engine) relayNeeded(m gossipMsg) bool {
	return !slices.Contains(m.recipients, e.cfg.NodeID) || !e.members.liveAmong(m.recipients, m.sender)
}

// merge stores ws and delivered, in one MergeTentative, and re-broadcasts what was new to this
// node (the epidemic: a message is only retransmitted a few times, so every node that learns
// something passes it on), except the writes of delivered (see relayNeeded). It returns the
// writes stored.
func (e *Engine) merge(ws []replication.Write, counter *atomic.Uint64, via string, delivered []replication.Write) []replication.Write {
	all := ws
	if len(delivered) > 0 {
		all = append(ws, delivered...)
	}
	stored, err := e.store.MergeTentative(all)
	if err != nil {
		e.logger.Warn("merging gossiped writes failed; anti-entropy will retry", "via", via, "writes", len(all), "err", err)
		return nil
	}
	if len(stored) == 0 {
		return stored
	}
	counter.Add(uint64(len(stored)))
	relay := stored
	switch {
	case len(delivered) == 0:
	case len(ws) == 0: // the usual batch: one direct push
		relay = nil
	default:
		versions := make(map[string]consistency.Version, len(delivered))
		for _, w := range delivered {
			versions[w.Key] = w.Value.Version
		}
		relay = make([]replication.Write, 0, len(stored))
		for _, w := range stored {
			if v, ok := versions[w.Key]; !ok || v != w.Value.Version {
				relay = append(relay, w)
			}
		}
	}
	e.stats.relaysSkipped.Add(uint64(len(stored) - len(relay)))
	e.Broadcast(relay)
	return stored
}

// scheduleFetches queues a direct fetch for each notice of a version this node lacks.
func (e *Engine) scheduleFetches(ns []notice) {
	keys := make([]string, len(ns))
	for i, n := range ns {
		keys[i] = n.Key
	}
	have := map[string]consistency.Version{}
	if ws, err := e.store.GetTentative(keys); err == nil {
		for _, w := range ws {
			have[w.Key] = w.Value.Version
		}
	}
	for _, n := range ns {
		if !n.Version.Newer(have[n.Key]) {
			continue
		}
		e.fetchMu.Lock()
		if v, ok := e.fetching[n.Key]; ok && !n.Version.Newer(v) {
			e.fetchMu.Unlock()
			continue
		}
		e.fetching[n.Key] = n.Version
		e.fetchMu.Unlock()
		select {
		case e.fetches <- n:
		default:
			e.fetchDone(n)
			e.stats.fetchesDropped.Add(1)
		}
	}
}

func (e *Engine) fetchDone(n notice) {
	e.fetchMu.Lock()
	if v, ok := e.fetching[n.Key]; ok && v == n.Version {
		delete(e.fetching, n.Key)
	}
	e.fetchMu.Unlock()
}

// fetchLoop is one of FetchConcurrency workers fetching announced values from their origin.
func (e *Engine) fetchLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case n := <-e.fetches:
			e.fetch(n)
			e.fetchDone(n)
		}
	}
}

func (e *Engine) fetch(n notice) {
	e.stats.fetches.Add(1)
	ws, err := e.getWrites(e.ctx, n.Origin, []string{n.Key})
	if err != nil {
		e.stats.fetchFailures.Add(1)
		if e.ctx.Err() == nil {
			e.logger.Debug("fetching an announced write failed; anti-entropy will repair", "key", n.Key, "origin", n.Origin, "err", err)
		}
		return
	}
	e.merge(ws, &e.stats.gossipMerged, "fetch", nil)
}

// observeLog picks memberlist's report of a failed probe out of its log: memberlist has no
// callback for suspicion.
func (e *Engine) observeLog(_ slog.Level, msg string) {
	if name, ok := suspectedNode(msg); ok && e.members.suspect(name) {
		e.logger.Info("member suspect", "member", name)
	}
}

// joinLoop joins the configured peers at once, then keeps re-joining, every RejoinInterval,
// every peer (configured or once known) that is not an alive member, plus one random live peer
// (a push/pull: it repairs views where they see us gone but we see them alive, e.g. after a
// restart on a new address raced its own death).
func (e *Engine) joinLoop() {
	defer e.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-timer.C:
		}
		e.rejoin()
		timer.Reset(jitter(e.cfg.RejoinInterval))
	}
}

func (e *Engine) rejoin() {
	targets := e.rejoinTargets()
	if len(targets) == 0 {
		return
	}
	ml := e.ml.Load()
	sem := make(chan struct{}, maxJoinsInFlight)
	var wg sync.WaitGroup
	for _, addr := range targets {
		select {
		case <-e.ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := ml.Join([]string{addr}); err != nil {
				e.stats.joinFailures.Add(1)
				if e.ctx.Err() == nil {
					e.logger.Debug("gossip join failed; will retry", "peer", addr, "err", err)
				}
				return
			}
			e.stats.joins.Add(1)
		}()
	}
	wg.Wait()
}

// rejoinTargets lists the addresses to join this round.
func (e *Engine) rejoinTargets() []string {
	members := e.members.list()
	live := map[string]bool{}
	var liveAddrs []string
	for _, m := range members {
		if isLive(m.State) {
			live[m.GossipAddr] = true
			if m.ID != e.cfg.NodeID {
				liveAddrs = append(liveAddrs, m.GossipAddr)
			}
		}
	}
	seen := map[string]bool{}
	var targets []string
	add := func(addr string) {
		if !seen[addr] {
			seen[addr] = true
			targets = append(targets, addr)
		}
	}
	for _, p := range e.cfg.Peers {
		if !e.isLiveAddr(peerAddr(p), live) {
			add(p)
		}
	}
	for _, m := range members {
		if m.ID != e.cfg.NodeID && !isLive(m.State) && m.GossipAddr != "" && !live[m.GossipAddr] {
			add(m.GossipAddr)
		}
	}
	if len(liveAddrs) > 0 {
		add(liveAddrs[rand.IntN(len(liveAddrs))])
	} else if len(targets) == 0 && len(e.cfg.Peers) > 0 {
		add(e.cfg.Peers[rand.IntN(len(e.cfg.Peers))])
	}
	return targets
}

// isLiveAddr reports whether addr (HOST:PORT, host possibly a name) is a live member's address.
func (e *Engine) isLiveAddr(addr string, live map[string]bool) bool {
	if live[addr] {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if live[net.JoinHostPort(ip, port)] {
			return true
		}
	}
	return false
}

// jitter spreads d by ±10%, so nodes started together do not act in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// delegate implements memberlist's Delegate, EventDelegate and PingDelegate for the engine. Every
// method must be quick and must not block: they run on memberlist's goroutines, some under its
// node lock.
type delegate struct{ e *Engine }

func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.e.meta.Load()
	if len(meta) > limit {
		return nil // Validate makes this impossible
	}
	return meta
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	msg := append([]byte(nil), b...) // memberlist reuses b after we return
	select {
	case d.e.inbox <- msg:
	default:
		d.e.stats.inboxDropped.Add(1)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.e.queue.GetBroadcasts(overhead, limit)
	d.e.stats.sent.Add(uint64(len(msgs)))
	return msgs
}

// LocalState is sent whole, buffered, on every push/pull (capped at 20 MiB by memberlist): the
// engine keeps data out of it, and anti-entropy runs over HTTP instead.
func (d *delegate) LocalState(join bool) []byte { return nil }

func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	if changed, m := d.e.members.observe(n, StateAlive); changed {
		d.e.logger.Info("member alive", "member", m.ID, "gossip", m.GossipAddr, "http", m.HTTPAddr)
	}
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	if changed, m := d.e.members.observe(n, StateAlive); changed {
		d.e.logger.Info("member alive", "member", m.ID, "gossip", m.GossipAddr, "http", m.HTTPAddr)
	}
}

// NotifyLeave runs when a member died or left (memberlist does not say which: n.State is never
// filled in; observe reads the leaving flag of the member's metadata instead).
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	if changed, m := d.e.members.observe(n, StateDead); changed {
		d.e.logger.Info("member "+string(m.State), "member", m.ID, "gossip", m.GossipAddr)
	}
}

func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete runs when a member answered this node's probe directly: it is not suspect.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	if d.e.members.answered(other.Name) {
		d.e.logger.Info("member alive again", "member", other.Name)
	}
}

// broadcast is one queued gossip message, named by its key.
type broadcast struct {
	key string
	msg []byte
}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.key
}
func (b *broadcast) Name() string    { return b.key }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}

var (
	_ memberlist.Delegate       = (*delegate)(nil)
	_ memberlist.EventDelegate  = (*delegate)(nil)
	_ memberlist.PingDelegate   = (*delegate)(nil)
	_ memberlist.NamedBroadcast = (*broadcast)(nil)
	_ memberlist.Broadcast      = (*broadcast)(nil)
)
