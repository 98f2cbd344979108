package jepsen

import (
	"fmt"
	"sort"
	"strings"
)

// nftRuleset renders the whole nftables table of a netns run, to load with `nft -f -` in the
// hub namespace. It replaces the table's previous contents atomically (nft applies one file as
// one transaction). The table is in the bridge family and filters in the forward hook, that is
// in transit between two nodes' ports: the sender's write succeeds and the packet is silently
// lost, as on a real network (dropping in the sender's own output path would hand it EPERM).
// It matches IPv4 only, so ARP keeps working and neighbour entries stay valid across a heal,
// and it matches every IP protocol, so both of memberlist's UDP and TCP are cut.
//
// cuts are directed: Link{a, b} drops packets from a's address to b's. loss maps a node to the
// probability that a packet it sends to another node is dropped (numgen, per mille), the same
// direction as the fault hook's loss. Only node addresses are matched, by cuts and by loss: the
// harness's own traffic to and from the nodes (the host end of the run's veth) is never dropped.
func nftRuleset(table string, addrOf map[string]string, cuts []Link, loss map[string]float64) (string, error) {
	var elems []string
	seen := map[string]bool{}
	for _, l := range cuts {
		from, ok1 := addrOf[l.From]
		to, ok2 := addrOf[l.To]
		if !ok1 || !ok2 {
			return "", fmt.Errorf("cut %s->%s: unknown node", l.From, l.To)
		}
		e := from + " . " + to
		if l.From != l.To && !seen[e] {
			seen[e] = true
			elems = append(elems, e)
		}
	}
	sort.Strings(elems)
	var b strings.Builder
	// "flush table" empties the chains but not the sets: flush the set explicitly (after
	// declaring it, so the first load finds it).
	fmt.Fprintf(&b, "add table bridge %s\n", table)
	fmt.Fprintf(&b, "add set bridge %s cuts { type ipv4_addr . ipv4_addr; }\n", table)
	fmt.Fprintf(&b, "flush set bridge %s cuts\nflush table bridge %s\n", table, table)
	fmt.Fprintf(&b, "table bridge %s {\n", table)
	b.WriteString("\tset cuts {\n\t\ttype ipv4_addr . ipv4_addr\n")
	if len(elems) > 0 {
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
	}
	b.WriteString("\t}\n")
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n")
	b.WriteString("\t\tip saddr . ip daddr @cuts drop\n")
	ids := make([]string, 0, len(loss))
	for id := range loss {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := loss[id]
		if p <= 0 {
			continue
		}
		addr, ok := addrOf[id]
		if !ok {
			return "", fmt.Errorf("loss at %s: unknown node", id)
		}
		var others []string
		for o, a := range addrOf {
			if o != id {
				others = append(others, a)
			}
		}
		if len(others) == 0 {
			continue
		}
		sort.Strings(others)
		match := fmt.Sprintf("ip saddr %s ip daddr { %s }", addr, strings.Join(others, ", "))
		// numgen's "mod 1000" yields 0..999: certain loss is a plain drop ("< 1000" does not load).
		if perMille := int(p*1000 + 0.5); perMille >= 1000 {
			fmt.Fprintf(&b, "\t\t%s drop\n", match)
		} else {
			fmt.Fprintf(&b, "\t\t%s numgen random mod 1000 < %d drop\n", match, perMille)
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}
