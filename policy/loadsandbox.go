package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/sandbox/trampoline"
)

func (d *decoder) sandbox(n *yaml.Node, what string, s *Sandbox) map[string]*yaml.Node {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!str" && n.Value == "none" {
			s.Disabled = true
			return nil
		}
		d.errAt(n, `write "sandbox: none" to disable it, or a mapping of profile settings`, "%s: want none or a mapping, got %s", what, show(n.Value))
		return nil
	}
	return d.mapping(n, what, []field{
		{"read", func(v *yaml.Node) { d.strings(v, what+".read", &s.Read) }},
		{"write", func(v *yaml.Node) { d.strings(v, what+".write", &s.Write) }},
		{"network", func(v *yaml.Node) { d.boolean(v, what+".network", &s.Network) }},
		{"connect_ports", func(v *yaml.Node) {
			d.list(v, what+".connect_ports", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("%s.connect_ports[%d]", what, i)
				p, ok := d.integer(e, w)
				if !ok {
					return
				}
				if p < 1 || p > 65535 {
					d.errAt(e, "", "%s: port %d is out of range 1-65535", w, p)
					return
				}
				for _, q := range s.ConnectPorts {
					if q == uint16(p) {
						d.errAt(e, "", "%s: duplicate port %d", w, p)
						return
					}
				}
				s.ConnectPorts = append(s.ConnectPorts, uint16(p))
			})
		}},
		{"sockets", func(v *yaml.Node) { d.strings(v, what+".sockets", &s.Sockets) }},
		{"pty", func(v *yaml.Node) { d.boolean(v, what+".pty", &s.Pty) }},
		{"allow_syscalls", func(v *yaml.Node) {
			d.list(v, what+".allow_syscalls", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("%s.allow_syscalls[%d]", what, i)
				var name string
				if !d.text(e, w, &name) {
					return
				}
				known := trampoline.FilteredSyscalls()
				if !slices.Contains(known, name) {
					hint := didYouMean(name, known)
					if hint == "" {
						hint = "only the system calls the filter refuses can be re-allowed: " + strings.Join(known, ", ")
					}
					d.errAt(e, hint, "%s: %s is not a system call the sandbox refuses", w, show(name))
					return
				}
				if slices.Contains(s.AllowSyscalls, name) {
					d.errAt(e, "", "%s: duplicate %s", w, name)
					return
				}
				s.AllowSyscalls = append(s.AllowSyscalls, name)
			})
		}},
		{"namespaces", func(v *yaml.Node) {
			var ignored bool
			d.boolean(v, what+".namespaces", &ignored)
			s.ObsoleteNamespaces = true
		}},
		{"tmp_size", func(v *yaml.Node) { d.size(v, what+".tmp_size", &s.TmpSize) }},
		{"memory", func(v *yaml.Node) { d.size(v, what+".memory", &s.Memory) }},
		{"cpus", func(v *yaml.Node) {
			var t string
			if !d.text(v, what+".cpus", &t) {
				return
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil || f < 0.01 || f > 1024 {
				d.errAt(v, "a number of CPUs the job may keep busy, e.g. 0.5 or 2", "%s.cpus: want a number from 0.01 to 1024, got %s", what, show(t))
				return
			}
			s.CPUs = f
		}},
		{"cpu", func(v *yaml.Node) { d.duration(v, what+".cpu", &s.CPU) }},
		{"nofile", func(v *yaml.Node) { d.unsigned(v, what+".nofile", &s.NoFile) }},
		{"fsize", func(v *yaml.Node) { d.size(v, what+".fsize", &s.FileSize) }},
		{"address_space", func(v *yaml.Node) { d.size(v, what+".address_space", &s.AddressSpace) }},
		{"procs", func(v *yaml.Node) { d.unsigned(v, what+".procs", &s.Procs) }},
	})
}
