package node

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/fault"
)

func TestErrorMapping(t *testing.T) {
	_, levelErr := consistency.ParseRead("linearizable")
	_, versionErr := consistency.ParseVersion("nonsense")
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{levelErr, http.StatusBadRequest, client.CodeBadRequest},
		{versionErr, http.StatusBadRequest, client.CodeBadRequest},
		{fmt.Errorf("%w: empty key", replication.ErrInvalid), http.StatusBadRequest, client.CodeBadRequest},
		{replication.ErrNotFound, http.StatusNotFound, client.CodeNotFound},
		{&replication.ConflictError{Key: "k"}, http.StatusConflict, client.CodeConflict},
		{fmt.Errorf("%w: 2 MiB", replication.ErrTooLarge), http.StatusRequestEntityTooLarge, client.CodeTooLarge},
		{fmt.Errorf("wrapped: %w", replication.ErrNoLeader), http.StatusServiceUnavailable, client.CodeNoLeader},
		{&replication.NotLeaderError{LeaderID: "n2"}, http.StatusServiceUnavailable, client.CodeNoLeader},
		{replication.ErrStale, http.StatusServiceUnavailable, client.CodeUnavailable},
		{fmt.Errorf("%w: n4 has not caught up", errJoining), http.StatusServiceUnavailable, client.CodeUnavailable},
		{fmt.Errorf("%w: n1 holds 256 MiB", errOverloaded), http.StatusServiceUnavailable, client.CodeUnavailable},
		{fmt.Errorf("%w: leadership lost", replication.ErrOutcomeUnknown), http.StatusGatewayTimeout, client.CodeOutcomeUnknown},
		{replication.ErrTimeout, http.StatusGatewayTimeout, client.CodeTimeout},
		{fault.ErrDisabled, http.StatusForbidden, client.CodeForbidden},
		{fmt.Errorf("%w: /nope", errNoRoute), http.StatusNotFound, client.CodeUnknownPath},
		{fmt.Errorf("%w: POST /v1/kv/k", errMethodNotAllowed), http.StatusMethodNotAllowed, client.CodeMethodNotAllowed},
		{errors.New("disk on fire"), http.StatusInternalServerError, client.CodeInternal},
	}
	for _, tc := range cases {
		status, code := httpError(tc.err)
		if status != tc.status || code != tc.code {
			t.Errorf("%v: got %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
