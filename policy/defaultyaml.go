package policy

import "bytes"

// DefaultYAML returns the text of the embedded default policy, so that
// first-run setup can write it out as the owner's editable config.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }
