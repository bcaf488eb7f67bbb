"""Named lists (issue #13): operator-managed sets of entries assigned to API keys.

A list's entries are catalogue records of the scope `list:<id>` (rules/scopes.py); the list
itself (name, description, assignments) is changed by `ListChange`s, kept in Redis
(rules/lists/redis.py) or in this process (rules/lists/memory.py).
"""
