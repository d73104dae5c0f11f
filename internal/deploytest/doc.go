// Package deploytest holds the tests of the files under deploy/, scripts/
// build-deb and policy/examples/: the systemd unit's hardening and exposure
// score, the action units and the polkit rule, the install script and the
// .deb, and that each example policy binds chat arguments to exactly the
// argv its comments promise.
//
// It has no code of its own and must never change the host it runs on:
// systemd-analyze runs offline; install.sh runs into a temporary DESTDIR;
// the real polkitd runs on a private system bus, with its rules and passwd
// bind-mounted in a mount namespace of its own; and what needs a real
// systemd (the unit with the sandbox inside it, the server recipe, the
// installer and the .deb on a host) runs in a throw-away systemd-nspawn
// machine whose /usr and dpkg database are overlays, in a cgroup the test
// makes and removes. Those tests need root and skip without it, and fail
// instead of skipping when CI=true.
package deploytest
