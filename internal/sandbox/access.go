package sandbox

import tr "github.com/relaychat/relay/internal/sandbox/trampoline"

// Landlock access rights, grouped the way profiles grant them.
const (
	accRead     = tr.AccessFSReadFile | tr.AccessFSReadDir
	accReadExec = accRead | tr.AccessFSExecute
	// accReadWrite never includes EXECUTE, MAKE_CHAR or MAKE_BLOCK. It lets
	// a command use unix sockets it makes in its own directories.
	accReadWrite = accRead | tr.AccessFSWriteFile | tr.AccessFSRemoveDir | tr.AccessFSResolveUnix |
		tr.AccessFSRemoveFile | tr.AccessFSMakeDir | tr.AccessFSMakeReg |
		tr.AccessFSMakeSock | tr.AccessFSMakeFifo | tr.AccessFSMakeSym |
		tr.AccessFSRefer | tr.AccessFSTruncate
	fileRights = tr.FileRights
)
