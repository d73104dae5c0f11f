package cli

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/term"
)

// progressMin is the smallest log whose reading shows progress: below it,
// verify and report finish before a line would help.
var progressMin int64 = 64 << 20

// progress shows how far a long read got, on stderr, when stderr is a
// terminal: one line, redrawn in place at most every progressEvery, and
// erased at the end, so that what stays on the screen is the result.
// Nothing is printed when stderr is a file or a pipe.
type progress struct {
	env   *Env
	what  string
	on    bool
	shown bool
	last  time.Time
	now   func() time.Time
}

var progressEvery = 200 * time.Millisecond

func newProgress(env *Env, what string) *progress {
	p := &progress{env: env, what: what, now: time.Now}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

// update is an audit Progress function.
func (p *progress) update(done, total int64) {
	if !p.on || total < progressMin {
		return
	}
	if now := p.now(); done < total && p.shown && now.Sub(p.last) < progressEvery {
		return
	} else {
		p.last = now
	}
	p.shown = true
	fmt.Fprintf(p.env.Stderr, "\r\x1b[Krelay: %s: %3d%% (%.1f of %.1f MB)", p.what, 100*done/max(total, 1), float64(done)/1e6, float64(total)/1e6)
}

// done erases the progress line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.env.Stderr, "\r\x1b[K")
		p.shown = false
	}
}
