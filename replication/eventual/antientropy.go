package eventual

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

const (
	// digestPageEntries bounds the entries of one digest page (~40 bytes each with short keys);
	// the transfer budget bounds its bytes.
	digestPageEntries = 16384
	// digestEntryOverhead is about what an entry of a digest page costs beyond its key.
	digestEntryOverhead = 24
	// maxPageExchanges bounds how often one round re-asks for a page whose answer was truncated;
	// the next round continues.
	maxPageExchanges = 8
)

// antiEntropyLoop reconciles with a random alive peer every AntiEntropyInterval. Gossip is
// fast but lossy (retransmit limits, full queues, a node that was away); this is what makes
// every node converge anyway.
func (e *Engine) antiEntropyLoop() {
	defer e.wg.Done()
	timer := time.NewTimer(jitter(e.cfg.AntiEntropyInterval))
	defer timer.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-timer.C:
		}
		e.antiEntropyRound(e.ctx)
		timer.Reset(jitter(e.cfg.AntiEntropyInterval))
	}
}

func (e *Engine) antiEntropyRound(ctx context.Context) {
	peer, ok := e.members.randomPeer()
	if !ok {
		return
	}
	e.stats.aeRounds.Add(1)
	if err := e.reconcile(ctx, peer.HTTPAddr); err != nil {
		e.stats.aeFailures.Add(1)
		if ctx.Err() == nil {
			e.logger.Debug("anti-entropy round failed", "peer", peer.ID, "http", peer.HTTPAddr, "err", err)
		}
	}
}

// reconcile sends this node's tentative digest to the peer serving HTTP at addr, page by page
// in key order, merges what the peer had newer and pushes what the peer asked for.
func (e *Engine) reconcile(ctx context.Context, addr string) error {
	digest, err := e.store.TentativeDigest("", "")
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	keys := make([]string, 0, len(digest))
	for k := range digest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for start := 0; ; {
		end := e.digestPageEnd(keys, start)
		page := &digestPage{Sender: e.cfg.NodeID, Entries: make(map[string]consistency.Version, end-start)}
		if start > 0 {
			page.From = keys[start]
		}
		if end < len(keys) {
			page.To, page.HasTo = keys[end], true
		}
		for _, k := range keys[start:end] {
			page.Entries[k] = digest[k]
		}
		if err := e.reconcilePage(ctx, addr, page); err != nil {
			return err
		}
		if end >= len(keys) {
			return nil
		}
		start = end
	}
}

// digestPageEnd returns where the digest page of the sorted keys that begins at start ends:
// after digestPageEntries keys, or once they fill the transfer budget (keys may be up to 32 KiB
// each, and a page, or the list of keys the peer answers with, larger than maxBody would be
// refused every round), but never before one key.
func (e *Engine) digestPageEnd(keys []string, start int) int {
	end, size := start, 0
	for end < len(keys) && end-start < e.cfg.digestPageEntries {
		size += len(keys[end]) + digestEntryOverhead
		if size > e.cfg.transferBudget && end > start {
			break
		}
		end++
	}
	return end
}

func (e *Engine) reconcilePage(ctx context.Context, addr string, page *digestPage) error {
	for range maxPageExchanges {
		body, err := e.call(ctx, http.MethodPost, addr, PathDigest, encodeDigestPage(page))
		if err != nil {
			return err
		}
		rep, err := decodeDigestReply(body)
		if err != nil {
			return fmt.Errorf("digest reply from %s: %w", addr, err)
		}
		if len(rep.Writes) > 0 {
			e.merge(rep.Writes, &e.stats.repairPulled, "anti-entropy", nil)
			// Whether stored or superseded here, these versions are no longer news: say so if
			// the page is asked again.
			for _, w := range rep.Writes {
				page.Entries[w.Key] = consistency.Max(page.Entries[w.Key], w.Value.Version)
			}
		}
		if len(rep.Newer) > 0 {
			if err := e.push(ctx, addr, rep.Newer); err != nil {
				return err
			}
		}
		if !rep.Truncated {
			return nil
		}
	}
	return nil
}

// push sends the peer this node's tentative writes of keys, in bodies of about the transfer budget.
func (e *Engine) push(ctx context.Context, addr string, keys []string) error {
	var chunk []replication.Write
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if _, err := e.call(ctx, http.MethodPost, addr, PathWrites, encodeWritesBody(e.cfg.NodeID, chunk)); err != nil {
			return err
		}
		e.stats.repairPushed.Add(uint64(len(chunk)))
		chunk, size = chunk[:0], 0
		return nil
	}
	var sendErr error
	err := e.readTentative(keys, func(ws []replication.Write) bool {
		for _, w := range ws {
			n := writeSize(w)
			if size+n > e.cfg.transferBudget {
				if sendErr = flush(); sendErr != nil {
					return false
				}
			}
			chunk = append(chunk, w)
			size += n
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("reading writes to push: %w", err)
	}
	if sendErr != nil {
		return sendErr
	}
	return flush()
}
