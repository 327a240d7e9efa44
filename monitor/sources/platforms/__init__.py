"""One module per platform, each registering its ``Platform`` with ``monitor.sources.registry``.

A module here declares everything about its platform that the rest of the
monitor needs: the block under a brand in ``monitor.yaml``, the sources that
block configures and their names, the environment variables (secrets) it
reads, how its sources are built, and the name people read. The poll logic
stays in ``monitor/sources/<platform>.py``, imported only when a source is built,
so listing the platforms (``monitor check``, rule validation) loads no client
library. The registry imports every module of this package: adding a file is
all it takes to add a platform.
"""
