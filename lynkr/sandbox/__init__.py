"""Where the processes of server-side tools run: a `Sandbox` turns a command into one to exec.

* `base` — the `Sandbox` protocol and `Unconfined` (the command as it is);
* `bubblewrap` — `Bubblewrap`: a fresh mount, pid, network, IPC and UTS
  namespace per call, the system read-only, the workspace the only writable
  place, lynkr's own files hidden;
* `choose` — which one a config gets (`tools.sandbox.type`), and the probe
  that proves bubblewrap can start here.

A text policy judges a command line; it cannot know what `sort
--compress-program`, a `conftest.py` or a Makefile will run. The sandbox is
the boundary: whatever a tool's process runs, it sees only what is bound in.
"""

from lynkr.sandbox.base import Sandbox, SandboxError, Unconfined
from lynkr.sandbox.bubblewrap import Bubblewrap
from lynkr.sandbox.choose import choose_sandbox

__all__ = ["Bubblewrap", "Sandbox", "SandboxError", "Unconfined", "choose_sandbox"]
