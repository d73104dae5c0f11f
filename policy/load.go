package policy

import "errors"

// Load reads, strictly decodes and validates the config file at path.
// PLACEHOLDER: replaced by the real loader.
func Load(path string) (*Config, error) {
	return nil, errors.New("policy loader not implemented yet")
}
