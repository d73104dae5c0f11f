package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/telegram"
)

func digits(s string) bool {
	return s != "" && strings.TrimLeft(s, "0123456789") == ""
}

func (d *decoder) positive(n *yaml.Node, what string, v int64) {
	if v <= 0 {
		d.errAt(n, "", "%s: must be positive", what)
	}
}

func (d *decoder) absPath(n *yaml.Node, what, p, hint string) bool {
	switch {
	case p == "":
		d.errAt(n, hint, "%s: no path", what)
	case !filepath.IsAbs(p):
		d.errAt(n, "use an absolute path", "%s: %s is not absolute", what, show(p))
	case strings.IndexByte(p, 0) >= 0:
		d.errAt(n, "", "%s: path contains a NUL byte", what)
	default:
		return true
	}
	return false
}

func (d *decoder) existingFile(n *yaml.Node, what, p string) {
	if p == "" || !d.absPath(n, what, p, "") {
		return
	}
	if fi, err := os.Stat(p); err != nil {
		d.errAt(n, "", "%s: %v", what, errors.Unwrap(err))
	} else if !fi.Mode().IsRegular() {
		d.errAt(n, "", "%s: %s is not a regular file", what, show(p))
	}
}

func (d *decoder) apiURL(n *yaml.Node, s string) {
	if msg, hint := apiURLProblem(s); msg != "" {
		d.errAt(n, hint, "%s", msg)
	}
}

// CheckAPIURL reports whether s is acceptable as telegram.api_url, by
// exactly the rule Load applies: an https base URL, or plain http to a
// loopback host (the bot token travels in the URL). First-run setup uses
// it, so that a URL it accepts is one the config will load with.
func CheckAPIURL(s string) error {
	msg, hint := apiURLProblem(s)
	switch {
	case msg == "":
		return nil
	case hint == "":
		return errors.New(msg)
	}
	return fmt.Errorf("%s (%s)", msg, hint)
}

// apiURLProblem is the reason s is not an acceptable api_url, with a hint;
// "" when it is. The rule is internal/telegram's, which sends the token.
func apiURLProblem(s string) (msg, hint string) {
	_, _, err := telegram.CheckAPIURL(s, false)
	var e *telegram.APIURLError
	if errors.As(err, &e) {
		return "telegram.api_url: " + e.Reason, e.Hint
	}
	return "", ""
}
