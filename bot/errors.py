"""The domain's exception tree.

    WorkerlawError
    ├── KnowledgeUnavailable   the knowledge base failed validation or could not be read
    └── ConversationError      a worker's reply cannot be applied to the conversation state

`knowledge.loader.KnowledgeError` (file and entry named) is wrapped in `KnowledgeUnavailable` at the
boundary that loads the engine, so callers above `bot` need to know only this tree.
"""

from __future__ import annotations


class WorkerlawError(Exception):
    """Base of every error the domain raises on purpose."""


class KnowledgeUnavailable(WorkerlawError):
    """The curated knowledge base is invalid or missing; the message names the file and entry."""


class ConversationError(WorkerlawError):
    """A reply that does not fit the conversation (e.g. a choice when none was offered)."""
