"""Container entry point: start TorchServe with the JVM *in place of* this process.

    start_torchserve.py --ts-config FILE --model-store DIR [any other `torchserve` option]

Why not plain ``torchserve --foreground``: that keeps TorchServe's Python launcher as the
JVM's parent. Under an init (tini) the stop signal reaches only the launcher, which dies at
once; the init then exits and the container runtime SIGKILLs the JVM and its workers in the
middle of their shutdown. Here TorchServe's own launcher code still builds the java command
(vmargs from config.properties, --log-config, class path, TEMP), but the one call that would
start the JVM as a child (``subprocess.Popen``) is replaced by ``os.execvp``. The JVM then
is the init's direct child: SIGTERM reaches it, its shutdown hook stops the workers, and it
exits with 143. No pid file is written (``torchserve --stop`` is not used in a container).

A key_file.json left in the working directory by an earlier run of this container (an
emptyDir survives container restarts) is removed first, so that the file, once it exists,
always holds the keys of the server that is running.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KEY_FILE = "key_file.json"  # TorchServe writes it into its working directory (user.dir)


def _exec_instead(command, *_args, **_kwargs):
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)


def main() -> int:
    from ts import model_server  # the pinned TorchServe's launcher (ts/model_server.py)

    Path(KEY_FILE).unlink(missing_ok=True)
    # The launcher's only Popen call starts the JVM; psutil, which it also uses, does not.
    subprocess.Popen = _exec_instead
    sys.argv[0] = "torchserve"
    model_server.start()
    # start() returns only when it did not exec the JVM: --version, or a bad option or path
    # (it has printed why).
    return 0 if {"-v", "--version"} & set(sys.argv[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
