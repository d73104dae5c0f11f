package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// haStates is what GET /api/states answers on a large installation: n
// entity state objects, about 320 bytes each (3300 make 1 MiB).
func haStates(n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		domain := []string{"sensor", "light", "switch", "binary_sensor"}[i%4]
		fmt.Fprintf(&b, `{"entity_id":"%s.device_%d","state":"%d.5","attributes":{"unit_of_measurement":"°C","friendly_name":"Device %d","device_class":"temperature","state_class":"measurement"},"last_changed":"2024-05-01T10:00:00.000000+00:00","last_updated":"2024-05-01T10:00:00.000000+00:00","context":{"id":"01HWZ3RQ9M6D5K5Y4V1B8E7T2C","parent_id":null,"user_id":null}}`, domain, i, i%40, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// BenchmarkFormat1MiB measures Render on a 1 MiB output (the target is
// ≤ 20 ms), next to encoding/json decoding the same bytes alone, run
// alternately in one process so the two see the same machine.
func BenchmarkFormat1MiB(b *testing.B) {
	in := haStates(3300)
	if len(in) < 1<<20 {
		b.Fatalf("input is %d bytes, want 1 MiB", len(in))
	}
	cases := []struct {
		name, jq string
		table    bool
	}{
		{"one-field", `.[0].state + " " + .[0].attributes.unit_of_measurement`, false},
		{"select-map-join", `[.[] | select(.entity_id | startswith("sensor.")) | .attributes.friendly_name + ": " + .state] | .[:20] | join("\n")`, false},
		{"table", `[.[] | select(.entity_id | startswith("light.")) | {light: .attributes.friendly_name, state}]`, true},
	}
	for _, c := range cases {
		p := mustCompile(b, Spec{JQ: c.jq, Table: c.table})
		b.Run("render/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			start := cpu()
			for b.Loop() {
				if _, err := p.Render(context.Background(), bytes.NewReader(in), Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e6, "cpu-ms/op")
		})
		b.Run("encoding-json-decode-only/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			start := cpu()
			for b.Loop() {
				var v any
				if err := json.Unmarshal(in, &v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// cpu is the process's CPU time, user and system: on a machine shared
// with other work, the cost of an operation is its CPU time, not the wall
// time it waited for a core.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
