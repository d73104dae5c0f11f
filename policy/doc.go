// Package policy is relay's public policy schema: loading the YAML file
// strictly, validating every command at load time, and binding untrusted
// chat arguments to an argv template.
//
// It must never run anything and never consult a shell.
package policy
