"""The release version: the one place it is written.

Every distribution of this repository (the core and each first-party plugin) takes its version
from this file at build time, and pins its siblings to it exactly (see ``hatch_build.py``), so
one release always installs together. It must be a final release, never a pre-release: pip
skips pre-releases, and would then take the unrelated project that owns the name
``sessionkit`` on the package index.
"""

__version__ = "1.0.0"
