"""Checks of what log entries mean, above the authority, coalition and constitution (the log
package itself checks only their form and the tree): ``custodes log verify --check-entries``.

Entry points: :class:`EntryAuditor` (feed it every entry in index order) and
:func:`stored_documents` (the constitution texts it needs, from the database).
"""

from custodes.entry_audit._auditor import EntryAuditor, stored_documents

__all__ = ["EntryAuditor", "stored_documents"]
