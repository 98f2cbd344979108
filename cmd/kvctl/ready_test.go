package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

func TestAssessCluster(t *testing.T) {
	nodes := []clusterNode{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	members := func(health ...string) []client.NodeStatus {
		var ms []client.NodeStatus
		for i, h := range health {
			ms = append(ms, client.NodeStatus{ID: fmt.Sprintf("n%d", i+1), Health: h})
		}
		return ms
	}
	st := func(node, leader string, ms []client.NodeStatus) *client.StatusResponse {
		return &client.StatusResponse{Node: node, Leader: leader, Nodes: ms}
	}
	all := members("ok", "ok", "ok")
	tests := []struct {
		name       string
		status     map[string]*client.StatusResponse
		errs       map[string]error
		wantLeader string
		wantStates []string
		wantFault  []string // the nodes not ok
	}{
		{
			name:       "ready",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n2", nil), "n2": st("n2", "n2", all), "n3": st("n3", "n2", nil)},
			wantLeader: "n2",
			wantStates: []string{"ok, leader n2", "ok, leader n2", "ok, leader n2"},
		},
		{
			name:       "a node not answering",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n1", all), "n2": st("n2", "n1", nil)},
			errs:       map[string]error{"n3": fmt.Errorf("dial: %w", errConnRefusedForTest())},
			wantStates: []string{"ok, leader n1", "ok, leader n1", "not answering (connection refused)"},
			wantFault:  []string{"n3"},
		},
		{
			name:       "no leader yet",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "", nil), "n2": st("n2", "", nil), "n3": st("n3", "", nil)},
			wantStates: []string{"no leader yet", "no leader yet", "no leader yet"},
			wantFault:  []string{"n1", "n2", "n3"},
		},
		{
			name:       "leaders disagree",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n1", all), "n2": st("n2", "n1", nil), "n3": st("n3", "n3", all)},
			wantStates: []string{"leader n1 (nodes disagree)", "leader n1 (nodes disagree)", "leader n3 (nodes disagree)"},
			wantFault:  []string{"n1", "n2", "n3"},
		},
		{
			name:       "leader does not list a node yet",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n1", members("ok", "ok")), "n2": st("n2", "n1", nil), "n3": st("n3", "n1", nil)},
			wantStates: []string{"ok, leader n1", "ok, leader n1", "not yet a member in n1's view"},
			wantFault:  []string{"n3"},
		},
		{
			name:       "leader sees a node down",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n1", members("ok", "down", "ok")), "n2": st("n2", "n1", nil), "n3": st("n3", "n1", nil)},
			wantStates: []string{"ok, leader n1", "down in n1's view", "ok, leader n1"},
			wantFault:  []string{"n2"},
		},
		{
			name: "leader sees a node joining",
			status: map[string]*client.StatusResponse{"n1": st("n1", "n1", []client.NodeStatus{
				{ID: "n1", Health: "ok"}, {ID: "n2", Health: "degraded", Joining: true}, {ID: "n3", Health: "ok"},
			}), "n2": st("n2", "n1", nil), "n3": st("n3", "n1", nil)},
			wantStates: []string{"ok, leader n1", "joining in n1's view", "ok, leader n1"},
			wantFault:  []string{"n2"},
		},
		{
			name:       "degraded is not down",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n1", members("ok", "degraded", "ok")), "n2": st("n2", "n1", nil), "n3": st("n3", "n1", nil)},
			wantLeader: "n1",
			wantStates: []string{"ok, leader n1", "ok, leader n1", "ok, leader n1"},
		},
		{
			name:       "leader outside the local nodes",
			status:     map[string]*client.StatusResponse{"n1": st("n1", "n9", nil), "n2": st("n2", "n9", nil), "n3": st("n3", "n9", nil)},
			wantStates: []string{"leader n9 is not a local node", "leader n9 is not a local node", "leader n9 is not a local node"},
			wantFault:  []string{"n1", "n2", "n3"},
		},
		{
			name:       "the leader is not answering",
			status:     map[string]*client.StatusResponse{"n2": st("n2", "n1", nil), "n3": st("n3", "n1", nil)},
			wantStates: []string{"not answering (no answer)", "leader n1", "leader n1"},
			wantFault:  []string{"n1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader, states := assessCluster(nodes, tt.status, tt.errs)
			if leader != tt.wantLeader {
				t.Errorf("leader = %q, want %q", leader, tt.wantLeader)
			}
			var got, fault []string
			for _, s := range states {
				got = append(got, s.state)
				if !s.ok {
					fault = append(fault, s.id)
				}
			}
			if !slices.Equal(got, tt.wantStates) {
				t.Errorf("states\n got  %q\n want %q", got, tt.wantStates)
			}
			if !slices.Equal(fault, tt.wantFault) {
				t.Errorf("nodes at fault %q, want %q", fault, tt.wantFault)
			}
		})
	}
}

// errConnRefusedForTest is a real "connection refused", from dialing a closed port.
func errConnRefusedForTest() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.Dial("tcp", addr)
	return err
}

// statusNode is an httptest node whose /v1/status says no leader for its first noLeader
// answers and then names leader, listing ids.
func statusNode(t *testing.T, id, leader string, noLeader int32, ids ...string) clusterNode {
	t.Helper()
	var answers atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := client.StatusResponse{Node: id}
		if answers.Add(1) > noLeader {
			st.Leader = leader
		}
		for _, m := range ids {
			st.Nodes = append(st.Nodes, client.NodeStatus{ID: m, Health: "ok"})
		}
		json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return clusterNode{ID: id, HTTP: srv.Listener.Addr().String()}
}

func TestWaitClusterReady(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	nodes := []clusterNode{
		statusNode(t, "n1", "n1", 0, ids...),
		statusNode(t, "n2", "n1", 0),
		statusNode(t, "n3", "n1", 2), // elects late
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := waitClusterReady(ctx, nodes, make(chan nodeExit), &progress)
	if err != nil || leader != "n1" {
		t.Fatalf("waitClusterReady = %q, %v", leader, err)
	}
	if want := "waiting: n1 ok, leader n1; n2 ok, leader n1; n3 no leader yet\n"; progress.String() != want {
		t.Errorf("progress = %q, want %q (printed once, not once per poll)", progress.String(), want)
	}

	t.Run("deadline names the nodes at fault", func(t *testing.T) {
		down := clusterNode{ID: "n3", HTTP: freeAddr(t)}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := waitClusterReady(ctx, []clusterNode{nodes[0], nodes[1], down}, make(chan nodeExit), &bytes.Buffer{})
		var nr *notReadyError
		if !errors.As(err, &nr) || !slices.Equal(nr.nodes, []string{"n3"}) {
			t.Fatalf("error %v, want a notReadyError naming n3", err)
		}
		if !strings.Contains(err.Error(), "n3 not answering (connection refused)") {
			t.Errorf("error %q does not say why", err)
		}
	})

	t.Run("Ctrl-C is not a timeout", func(t *testing.T) {
		down := clusterNode{ID: "n3", HTTP: freeAddr(t)}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		_, err := waitClusterReady(ctx, []clusterNode{nodes[0], nodes[1], down}, make(chan nodeExit), &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), "interrupted after ") || !strings.Contains(err.Error(), "n3 not answering") {
			t.Errorf("error %v, want interrupted after ..., with the state", err)
		}
	})

	t.Run("a node that exits ends the wait", func(t *testing.T) {
		exits := make(chan nodeExit, 2)
		exits <- nodeExit{id: "n2", err: errors.New("exit status 1")}
		exits <- nodeExit{id: "n3", err: errors.New("exit status 2")}
		_, err := waitClusterReady(context.Background(), []clusterNode{{ID: "n2", HTTP: freeAddr(t)}}, exits, &bytes.Buffer{})
		var nr *notReadyError
		if !errors.As(err, &nr) || !slices.Equal(nr.nodes, []string{"n2", "n3"}) || err.Error() != "n2 exited: exit status 1; n3 exited: exit status 2" {
			t.Fatalf("error %v, want n2 and n3 exited", err)
		}
	})
}
