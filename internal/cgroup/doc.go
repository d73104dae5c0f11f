// Package cgroup owns the relay's delegated cgroup v2 subtree: one child
// cgroup per job, with its limits (memory.max, pids.max, cpu.max), its kill
// (cgroup.kill) and its accounting (memory.peak, cpu.stat, pids.peak,
// memory.events). It is the only package that touches the cgroup
// filesystem.
//
// It must never write outside the subtree it was given, never leave a job
// cgroup with live processes behind, and never report a limit as enforced
// when its controller is missing: NewJob refuses such a limit and Has says
// why, so the caller can fall back to per-process rlimits and tell the user.
//
// # Layout
//
// Delegated finds the cgroup the relay runs in (for a systemd service with
// Delegate=yes, /system.slice/relay.service) and moves the relay into its
// child LeafName; jobs are its siblings:
//
//	relay.service/          the Tree; subtree_control +memory +pids +cpu
//	relay.service/relay/    the relay itself
//	relay.service/relay-job-42/  one job: limits, cgroup.kill, accounting
//
// A job's process is started inside its cgroup (Job.FD with
// SysProcAttr.UseCgroupFD), so no code of it runs outside, and every
// descendant stays inside whatever session or process group it makes:
// killing the cgroup kills them all.
//
// # Leftovers
//
// A relay that crashes leaves its job cgroups behind, possibly with live
// processes. Open, and so Delegated, kills and removes every child named
// JobPrefix* on start, and touches no other child. Two relays must never
// share a subtree: Delegated refuses one whose LeafName holds another
// process.
//
// # What it does not stop
//
// The job cgroup's files belong to the relay's uid. A job running as that
// uid (a relay that is not root) with the cgroup filesystem in reach could
// raise its own limits or move itself to another cgroup of the subtree; the
// sandbox's filesystem view, which does not include cgroupfs, is what keeps
// it out. Kill also reaches cgroups a job nests inside its own.
package cgroup
