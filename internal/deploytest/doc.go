// Package deploytest holds the tests of the files under deploy/ and
// policy/examples/: the systemd unit's hardening and exposure score, the
// action units and the polkit rule, the install script's idempotence, and
// that each example policy binds chat arguments to exactly the argv its
// comments promise.
//
// It has no code of its own and must never touch the host: systemd-analyze
// runs offline, and install.sh runs into a temporary DESTDIR.
package deploytest
