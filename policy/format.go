package policy

import "github.com/relaychat/relay/internal/render"

// Renderer returns the compiled format of c's output, or nil when c has
// none (its output is shown as it is). For a Command from Load it never
// fails; one assembled in code is compiled here.
func (c *Command) Renderer() (*render.Program, error) {
	f := c.Format
	if f == nil {
		return nil, nil
	}
	if f.prog != nil {
		return f.prog, nil
	}
	return render.Compile(f.Spec())
}

// Spec is the format as internal/render takes it.
func (f *Format) Spec() render.Spec {
	return render.Spec{JQ: f.JQ, Text: f.Text, Table: f.Table, Columns: f.Columns}
}
