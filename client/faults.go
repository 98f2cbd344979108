package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// The test-only fault hook of one node (docs/faults.md). Each call goes to exactly the endpoint
// named, never failing over: faults are per node. A node started without --test-faults answers
// 403 (code forbidden).

// Faults returns the faults in force on the node at endpoint.
func (cl *Client) Faults(ctx context.Context, endpoint string) (Faults, error) {
	return cl.faultCall(ctx, endpoint, http.MethodGet, nil)
}

// SetFaults replaces the faults of the node at endpoint and returns what is now in force.
func (cl *Client) SetFaults(ctx context.Context, endpoint string, f Faults) (Faults, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return Faults{}, err
	}
	return cl.faultCall(ctx, endpoint, http.MethodPut, body)
}

// HealFaults clears every fault of the node at endpoint.
func (cl *Client) HealFaults(ctx context.Context, endpoint string) error {
	_, err := cl.faultCall(ctx, endpoint, http.MethodDelete, nil)
	return err
}

func (cl *Client) faultCall(ctx context.Context, endpoint, method string, body []byte) (Faults, error) {
	base, err := endpointURL(endpoint)
	if err != nil {
		return Faults{}, err
	}
	one := &Client{endpoints: []string{base}, timeout: cl.timeout, http: cl.http, traced: cl.traced}
	// Setting faults is idempotent, so it may be re-sent like a read.
	rep, err := one.do(ctx, call{method: method, path: "/v1/test/faults", body: body, read: true})
	if err != nil {
		return Faults{}, err
	}
	var f Faults
	if err := json.Unmarshal(rep.body, &f); err != nil {
		return Faults{}, fmt.Errorf("faults answer from %s: %w", endpoint, err)
	}
	return f, nil
}
