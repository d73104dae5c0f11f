package playground

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/policy"
)

// APIURLError refuses a config that names a Bot API: the playground talks
// only to its own embedded fake, and a config pointed elsewhere (the real
// Telegram, a local Bot API server) is not one to try it with.
type APIURLError struct {
	File      string
	Line, Col int
	URL       string
}

func (e *APIURLError) Error() string {
	return fmt.Sprintf("%s:%d:%d: telegram.api_url is %q, and the playground talks only to its own embedded Bot API", e.File, e.Line, e.Col, e.URL)
}

// SafeToShow is the message: a position in the owner's own config and
// a URL policy.Load has already accepted (so without credentials).
func (e *APIURLError) SafeToShow() string { return e.Error() }

// LoadPolicy loads the config file at path as relay run would, and refuses
// it with an *APIURLError when it sets telegram.api_url.
func LoadPolicy(path string) (*policy.Config, error) {
	cfg, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	if e := apiURLSet(path, data); e != nil {
		return nil, e
	}
	return cfg, nil
}

// apiURLSet finds telegram.api_url in a config that policy.Parse accepted
// (one document, a mapping at the root, no duplicate keys).
func apiURLSet(name string, data []byte) *APIURLError {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) != 1 {
		return nil
	}
	tg := value(doc.Content[0], "telegram")
	if tg == nil {
		return nil
	}
	u := value(tg, "api_url")
	if u == nil {
		return nil
	}
	return &APIURLError{File: name, Line: u.Line, Col: u.Column, URL: u.Value}
}

// value is the value node of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
