"""`denyproxy serve` with its in-memory store pre-loaded from a file (contender 5).

    python bench/denyproxy_mem.py RULES.jsonl --upstream URL --listen H:P --admin-listen H:P ...

The in-memory store can only be fed by Kafka, and the bench should not need a broker to
measure the response path: this runs the real CLI (`proxy.cli.main(["serve", ...])`) with
`proxy.server.make_store` returning a MemoryStore already holding the rules. RULES.jsonl has
one `{"tenant": ..., "type": ..., "values": [normalised, ...]}` object per line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy import cli, server
from rules.model import RuleChange, RuleType
from rules.store import MemoryStore


def load(path: str) -> MemoryStore:
    store = MemoryStore(ready=True)
    changes = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            changes.append(
                RuleChange("add", row["tenant"], RuleType(row["type"]), tuple(row["values"]))
            )
    asyncio.run(store.apply(changes))
    return store


def main() -> int:
    store = load(sys.argv[1])
    server.make_store = lambda settings, *, fed_by_kafka: store
    return cli.main(["serve", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
