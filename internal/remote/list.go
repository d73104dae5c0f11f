package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// List is a member's allowlist as offered to its hub: the commands the hub
// may ask for (hub: false ones left out), their parameters and
// descriptions, so that the hub can show them without a copy of the
// member's policy. Digest pins the command list: a change on the member
// changes it, and `relay doctor` on the hub shows it.
type List struct {
	Version  string        `json:"version"`
	Digest   string        `json:"digest"`
	Commands []ListCommand `json:"commands"`
}

// ListCommand is one offered command.
type ListCommand struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Usage       string      `json:"usage"`
	Params      []ListParam `json:"params"`
	Confirm     bool        `json:"confirm"`
	Reauth      bool        `json:"reauth"`
}

// ListParam is one parameter of an offered command.
type ListParam struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Optional bool   `json:"optional"`
	Default  string `json:"default"`
}

// maxListCommands bounds what a hub accepts from a member.
const maxListCommands = 1000

// Seal sets l.Digest from l.Commands.
func (l *List) Seal() { l.Digest = digestOf(l.Commands) }

func digestOf(cs []ListCommand) string {
	if cs == nil {
		cs = []ListCommand{}
	}
	b, _ := json.Marshal(cs)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Marshal encodes a sealed list.
func (l *List) Marshal() ([]byte, error) {
	if l.Commands == nil {
		l.Commands = []ListCommand{}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode list: %w", err)
	}
	if len(b) > MaxListBytes {
		return nil, fmt.Errorf("encode list: %d bytes, at most %d", len(b), MaxListBytes)
	}
	return b, nil
}

// ParseList decodes a member's list strictly: no unknown field, names that
// are command names, text without control characters, and a digest that
// matches the commands.
func ParseList(b []byte) (*List, error) {
	if len(b) > MaxListBytes {
		return nil, fmt.Errorf("list: %d bytes, at most %d", len(b), MaxListBytes)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var l List
	if err := d.Decode(&l); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("list: data after the document")
	}
	if len(l.Commands) > maxListCommands {
		return nil, fmt.Errorf("list: %d commands, at most %d", len(l.Commands), maxListCommands)
	}
	if badText(l.Version) != "" || l.Version == "" {
		return nil, fmt.Errorf("list: bad version string")
	}
	seen := map[string]bool{}
	for _, c := range l.Commands {
		if !ValidName(c.Name) || seen[c.Name] {
			return nil, fmt.Errorf("list: bad or duplicate command name %s", show(c.Name))
		}
		seen[c.Name] = true
		for _, s := range []string{c.Description, c.Usage} {
			if badText(s) != "" {
				return nil, fmt.Errorf("list: /%s: text with control characters", c.Name)
			}
		}
		for _, p := range c.Params {
			if badText(p.Name+p.Type+p.Default) != "" {
				return nil, fmt.Errorf("list: /%s: parameter with control characters", c.Name)
			}
		}
	}
	if l.Digest != digestOf(l.Commands) {
		return nil, fmt.Errorf("list: digest does not match the commands")
	}
	return &l, nil
}

// Lookup returns the offered command called name, or nil.
func (l *List) Lookup(name string) *ListCommand {
	for i := range l.Commands {
		if l.Commands[i].Name == name {
			return &l.Commands[i]
		}
	}
	return nil
}
