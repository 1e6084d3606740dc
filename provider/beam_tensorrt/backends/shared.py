"""A session whose model lives in another process: tokenize where the rows are, infer where the model is.

With Beam's model sharing (ClassifyText's ``model_copies``) RunInference hands the handler a proxy
to a ``TextClassifier`` held by a process of its own, and every call crosses to it. Calling its
``classify`` would tokenize there too, so the one process holding the GPU would also do the
tokenization of every SDK process (measured on an H100: 0.69x the backend alone with 8 processes
and one copy, docs/history.md item 24). ``SharedModelSession`` is the ``InferenceSession`` a
classifier in the SDK process runs on instead: it tokenizes and groups locally, then sends one
batch's groups of token ids to the holder (``TextClassifier.run_feeds``) and gets their logits back.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from .base import Feeds, InferenceSession


class SessionLayout(NamedTuple):
    """What a classifier needs to know of a session it does not hold, and of its model (picklable:
    it crosses to the SDK process once)."""

    name: str
    input_names: Sequence[str]
    packed: bool
    token_budget: int
    max_group_rows: int
    artifact: Any  # the holder's ModelArtifact: labels and tokenizer (the same machine's files)
    max_seq_len: int


class SharedModelSession(InferenceSession):
    """``InferenceSession`` over a classifier in another process.

    Args:
        holder: the classifier's proxy (anything with ``run_feeds(list of groups) -> list of
            arrays``), e.g. what Beam's RunInference passes a handler that shares its model.
        layout: ``holder.session_layout()``, asked once.

    Example::

        layout = proxy.session_layout()
        local = TextClassifier(layout.artifact, SharedModelSession(proxy, layout), layout.max_seq_len)
        local.classify(["a fine film"])  # tokenized here, run by the process holding the model
    """

    def __init__(self, holder: Any, layout: SessionLayout):
        self._holder = holder
        self.name = f"{layout.name}, shared"
        self.input_names = list(layout.input_names)
        self.packed = layout.packed
        self.token_budget = layout.token_budget
        self.max_group_rows = layout.max_group_rows

    def run_many(self, groups: Iterable[Feeds]) -> list[np.ndarray]:
        # One round trip a batch: the groups are tokenized here first (the holder's device meanwhile
        # runs other processes' groups), then cross together.
        return list(self._holder.run_feeds([dict(g) for g in groups]))

    def close(self) -> None:
        """Nothing here: the process holding the model closes it."""
