package eventual

import "sync/atomic"

// Stats are the engine's counters since Open (QueueDepth is a gauge).
type Stats struct {
	// BroadcastsQueued counts gossip messages queued: local writes and writes relayed because
	// they were new here. NoticesQueued counts those that went as notices (value fetched
	// directly), Oversize the writes too big to announce at all (left to anti-entropy).
	BroadcastsQueued uint64
	NoticesQueued    uint64
	Oversize         uint64
	// BroadcastsSent counts transmissions handed to memberlist (each retransmission counts);
	// EagerSent the local writes sent directly to peers (once per peer; see Config.EagerFanout;
	// a push to a peer that failed part-way counts none), EagerPackets the packets sent.
	BroadcastsSent uint64
	EagerSent      uint64
	EagerPackets   uint64
	// BroadcastsReceived counts gossip messages accepted; BroadcastsIgnored those undecodable or
	// refused by DropGossipFrom; BroadcastsDropped those lost to a full inbox or transmit queue
	// (or writes to a pusher far behind).
	BroadcastsReceived uint64
	BroadcastsIgnored  uint64
	BroadcastsDropped  uint64
	// QueueDepth is the number of messages in the transmit queue now.
	QueueDepth int
	// GossipMerged counts writes new to this node that arrived by broadcast or direct fetch;
	// RelaysSkipped those of them not gossiped on, because their origin's direct push reached
	// every member this node sees alive or suspect (the origin's own gossip is their backup).
	GossipMerged  uint64
	RelaysSkipped uint64
	// Fetches counts direct fetches of announced writes; FetchFailures those that failed;
	// FetchesDropped notices not fetched because the fetch queue was full.
	Fetches        uint64
	FetchFailures  uint64
	FetchesDropped uint64
	// AntiEntropyRounds counts reconciliations started with a peer; AntiEntropyFailures those
	// that failed part-way.
	AntiEntropyRounds   uint64
	AntiEntropyFailures uint64
	// AntiEntropyServed counts digest pages this node answered for its peers.
	AntiEntropyServed uint64
	// RepairPulled counts writes new to this node that anti-entropy brought (answers to this
	// node's digests, and pushes from peers); RepairPushed the writes this node sent to peers by
	// anti-entropy (answers and pushes; not all were new to them).
	RepairPulled uint64
	RepairPushed uint64
	// Joins and JoinFailures count background join attempts.
	Joins        uint64
	JoinFailures uint64
}

type counters struct {
	queued, noticesQueued, oversize, sent         atomic.Uint64
	eagerSent, eagerPackets                       atomic.Uint64
	received, ignored, inboxDropped, queueDropped atomic.Uint64
	gossipMerged, relaysSkipped                   atomic.Uint64
	fetches, fetchFailures, fetchesDropped        atomic.Uint64
	aeRounds, aeFailures, aeServed                atomic.Uint64
	repairPulled, repairPushed                    atomic.Uint64
	joins, joinFailures                           atomic.Uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{
		BroadcastsQueued:    c.queued.Load(),
		EagerSent:           c.eagerSent.Load(),
		EagerPackets:        c.eagerPackets.Load(),
		NoticesQueued:       c.noticesQueued.Load(),
		Oversize:            c.oversize.Load(),
		BroadcastsSent:      c.sent.Load(),
		BroadcastsReceived:  c.received.Load(),
		BroadcastsIgnored:   c.ignored.Load(),
		BroadcastsDropped:   c.inboxDropped.Load() + c.queueDropped.Load(),
		QueueDepth:          e.queue.NumQueued(),
		GossipMerged:        c.gossipMerged.Load(),
		RelaysSkipped:       c.relaysSkipped.Load(),
		Fetches:             c.fetches.Load(),
		FetchFailures:       c.fetchFailures.Load(),
		FetchesDropped:      c.fetchesDropped.Load(),
		AntiEntropyRounds:   c.aeRounds.Load(),
		AntiEntropyFailures: c.aeFailures.Load(),
		AntiEntropyServed:   c.aeServed.Load(),
		RepairPulled:        c.repairPulled.Load(),
		RepairPushed:        c.repairPushed.Load(),
		Joins:               c.joins.Load(),
		JoinFailures:        c.joinFailures.Load(),
	}
}
