"""A session's uploaded files: in a private temporary folder that lives no longer than the session.

An upload copied to the system's temporary folder and never deleted keeps applicants' data on the
server for ever. Each session gets one owner-only folder (`tempfile.TemporaryDirectory`, kept in
its session state): a page empties it when it is done with a file, and the folder itself is
removed when the session ends and its state is dropped (or when the server stops).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st


def session_folder(key: str) -> Path:
    """This session's private folder for `key`, created on first use."""
    folder = st.session_state.get(key)
    if not isinstance(folder, tempfile.TemporaryDirectory) or not Path(folder.name).is_dir():
        folder = tempfile.TemporaryDirectory(prefix="loandesk-upload-")
        st.session_state[key] = folder
    return Path(folder.name)


def empty(folder: Path, *keep: Path) -> None:
    """Delete the files in `folder`, except `keep`."""
    for path in folder.iterdir():
        if path not in keep:
            path.unlink(missing_ok=True)


def drop_session_folder(key: str) -> None:
    """Remove the folder now (the session is done with every file in it)."""
    folder = st.session_state.pop(key, None)
    if isinstance(folder, tempfile.TemporaryDirectory):
        folder.cleanup()
