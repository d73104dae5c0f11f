package cli

import (
	"context"
	"errors"
)

// setup walks the owner through first-run configuration on a terminal and
// returns the path of the config it wrote.
func setup(ctx context.Context, env *Env) (string, error) {
	return "", withCode(ExitNotSetup, errors.New("no config file found: pass --config FILE"))
}
