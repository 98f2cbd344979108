package jepsen

import (
	"strings"
	"testing"
)

func TestNftRuleset(t *testing.T) {
	addrs := map[string]string{"n1": "10.77.3.11", "n2": "10.77.3.12", "n3": "10.77.3.13"}
	rules, err := nftRuleset("dkv", addrs, []Link{{"n1", "n2"}, {"n2", "n1"}, {"n1", "n2"}, {"n3", "n3"}}, map[string]float64{"n3": 0.15, "n2": 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"add table bridge dkv\n",
		"flush set bridge dkv cuts\n",
		"flush table bridge dkv\n",
		"type ipv4_addr . ipv4_addr",
		"elements = { 10.77.3.11 . 10.77.3.12, 10.77.3.12 . 10.77.3.11 }",
		"type filter hook forward priority 0; policy accept;",
		"ip saddr . ip daddr @cuts drop",
		// Loss at a node is what it sends to the other nodes, never what the harness exchanges with it.
		"ip saddr 10.77.3.13 ip daddr { 10.77.3.11, 10.77.3.12 } numgen random mod 1000 < 150 drop",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rules)
		}
	}
	// Only IP is matched: nothing may touch ARP (a cut ARP leaves neighbour entries failed
	// after the heal).
	if strings.Contains(rules, "arp") || strings.Contains(rules, "ether type") {
		t.Errorf("ruleset filters non-IP traffic:\n%s", rules)
	}
	if strings.Contains(rules, "saddr 10.77.3.12 ") {
		t.Error("zero loss rendered as a rule")
	}
	// numgen random mod 1000 is 0..999: "< 1000" is refused by nft, so certain loss is a drop.
	certain, err := nftRuleset("dkv", addrs, nil, map[string]float64{"n1": 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(certain, "ip saddr 10.77.3.11 ip daddr { 10.77.3.12, 10.77.3.13 } drop\n") || strings.Contains(certain, "< 1000") {
		t.Errorf("loss 1 rendered as\n%s", certain)
	}
	// Flushing must come before the definitions, or the old cuts would survive a heal.
	if strings.Index(rules, "flush set") > strings.Index(rules, "elements") {
		t.Error("flush after the elements")
	}

	healed, err := nftRuleset("dkv", addrs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(healed, "elements") || strings.Contains(healed, "saddr 10.") {
		t.Errorf("healed ruleset still cuts:\n%s", healed)
	}
	if _, err := nftRuleset("dkv", addrs, []Link{{"n1", "n9"}}, nil); err == nil {
		t.Error("a link to an unknown node rendered")
	}
}
