package client

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// metaFromHeader reads the Dialkv-* headers of an answer. A malformed applied index is left at
// zero rather than failing the call: the value the caller asked for is still good, and the
// metadata is advisory.
func metaFromHeader(h http.Header) Meta {
	m := Meta{
		Consistency: h.Get(HeaderConsistency),
		Node:        h.Get(HeaderNode),
		Via:         h.Get(HeaderVia),
		Leader:      h.Get(HeaderLeader),
		Version:     h.Get(HeaderVersion),
		State:       h.Get(HeaderState),
		Staleness:   h.Get(HeaderStaleness),
		Session:     h.Get(HeaderSession),
	}
	if s := h.Get(HeaderAppliedIndex); s != "" {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			m.AppliedIndex = n
		}
	}
	return m
}

// merge returns m with every field that body sets taking precedence: the JSON body and the
// headers describe the same answer, so they agree when both are present, and the body may be
// the richer of the two.
func (m Meta) merge(body Meta) Meta {
	set := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	set(&m.Consistency, body.Consistency)
	set(&m.Node, body.Node)
	set(&m.Via, body.Via)
	set(&m.Leader, body.Leader)
	set(&m.Version, body.Version)
	set(&m.State, body.State)
	set(&m.Staleness, body.Staleness)
	set(&m.Session, body.Session)
	if body.AppliedIndex != 0 {
		m.AppliedIndex = body.AppliedIndex
	}
	return m
}

// NewKV returns key and value in their wire form: each as text when it is valid UTF-8, else
// base64-encoded in KeyBase64 or ValueBase64.
func NewKV(key string, value []byte) KV {
	var kv KV
	if utf8.ValidString(key) {
		kv.Key = key
	} else {
		kv.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(key))
	}
	if utf8.Valid(value) {
		kv.Value = string(value)
	} else {
		kv.ValueBase64 = base64.StdEncoding.EncodeToString(value)
	}
	return kv
}

// RawKey returns the key of kv: KeyBase64 decoded when it is set (the key is not valid UTF-8),
// otherwise Key. It is the key to pass back to Get, Put or Delete.
func (kv KV) RawKey() (string, error) { return fromWire(kv.Key, kv.KeyBase64, "key_base64") }

// fromWire is a string as the wire carries it: b64 (the field named field) decoded when it is
// set, text otherwise.
func fromWire(text, b64, field string) (string, error) {
	if b64 == "" {
		return text, nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("client: bad %s %q: %w", field, b64, err)
	}
	return string(b), nil
}

// Bytes returns the value of kv: ValueBase64 decoded when it is set (the value was not valid
// UTF-8), otherwise Value. It never returns nil for a present value, so an empty value and a
// missing one stay distinguishable.
func (kv KV) Bytes() ([]byte, error) {
	if kv.ValueBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(kv.ValueBase64)
		if err != nil {
			key, kerr := kv.RawKey()
			if kerr != nil {
				key = kv.KeyBase64
			}
			return nil, fmt.Errorf("client: key %q: bad value_base64: %w", key, err)
		}
		return b, nil
	}
	return []byte(kv.Value), nil
}

// NextKey returns the key to go on after (ListOptions.After): NextBase64 decoded when it is set,
// otherwise Next; "" when the answer has no next page.
func (lr *ListResponse) NextKey() (string, error) {
	return fromWire(lr.Next, lr.NextBase64, "next_base64")
}
